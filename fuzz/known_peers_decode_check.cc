#include "fuzz/known_peers_decode_check.h"

#include <sys/socket.h>

#include <set>
#include <string_view>
#include <vector>

#include "daemon/known_peers.h"
#include "daemon/net_address.h"

namespace gv::fuzz {

namespace {

// net::SocketAddress has no ==: two lists are the same when their canonical
// spellings are, in order (the spelling is a function of family, address and
// port, all a socket call uses).
std::vector<std::string> Canonical(const std::vector<net::SocketAddress>& peers) {
  std::vector<std::string> out;
  out.reserve(peers.size());
  for (const net::SocketAddress& peer : peers) out.push_back(net::FormatSocketAddress(peer.storage));
  return out;
}

}  // namespace

std::string CheckKnownPeersDecode(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto decoded = daemon::DecodeKnownPeers(input);
  if (!decoded.ok()) {
    if (!decoded.status().IsCorruption()) return "refused with a status other than Corruption";
    if (decoded.status().message().empty()) return "refused without a message";
    return "";
  }
  if (input.size() > daemon::kMaxKnownPeersFileBytes) return "accepted a text over kMaxKnownPeersFileBytes";
  if (decoded->size() > daemon::kMaxKnownPeers) return "accepted more than kMaxKnownPeers addresses";
  std::set<std::string> seen;
  for (const net::SocketAddress& peer : *decoded) {
    const sa_family_t family = peer.storage.ss_family;
    if (family != AF_INET && family != AF_INET6) return "accepted an address that is neither IPv4 nor IPv6";
    if (peer.port < 1 || peer.port > 65535) return "accepted a port outside 1..65535";
    if (net::PortOf(peer.storage) != peer.port) return "the sockaddr's port differs from the parsed port";
    if (!seen.insert(net::FormatSocketAddress(peer.storage)).second) return "accepted a repeated address";
  }
  const std::string encoded = daemon::EncodeKnownPeers(*decoded);
  if (encoded != input) return "EncodeKnownPeers(decoded) differs from the accepted input (the format is canonical)";
  const auto again = daemon::DecodeKnownPeers(encoded);
  if (!again.ok()) return "re-encoded peers do not decode: " + again.status().ToString();
  if (Canonical(*again) != Canonical(*decoded)) return "decode(encode(peers)) differs from the peers";
  return "";
}

}  // namespace gv::fuzz
