#include "daemon/known_peers.h"

#include <set>

namespace gv::daemon {

namespace {

std::string Canonical(const net::SocketAddress& address) { return net::FormatSocketAddress(address.storage); }

}  // namespace

std::string EncodeKnownPeers(const std::vector<net::SocketAddress>& peers) {
  std::string out(kKnownPeersHeader);
  out += '\n';
  std::set<std::string> written;
  for (const net::SocketAddress& peer : peers) {
    if (written.size() == kMaxKnownPeers) break;
    // DecodeKnownPeers refuses port 0, and with it the whole file: such an
    // address (a listener's "any port") is left out rather than written.
    if (net::PortOf(peer.storage) == 0) continue;
    std::string line = Canonical(peer);
    if (!written.insert(line).second) continue;
    out += line;
    out += '\n';
  }
  return out;
}

Result<std::vector<net::SocketAddress>> DecodeKnownPeers(std::string_view text) {
  if (text.size() > kMaxKnownPeersFileBytes) {
    return Status::Corruption("the known-peers file has " + std::to_string(text.size()) + " bytes, more than " +
                              std::to_string(kMaxKnownPeersFileBytes));
  }
  // Every line, the last one included, ends in '\n': a file cut short by a
  // crash mid-write (possible only without the rename) is refused whole.
  if (text.empty() || text.back() != '\n') {
    return Status::Corruption("the known-peers file does not end with a newline (cut short?)");
  }
  std::vector<net::SocketAddress> peers;
  std::set<std::string> seen;
  std::size_t line_number = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);  // found: the text ends with '\n'
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_number;
    const std::string where = "known-peers line " + std::to_string(line_number) + ": ";
    if (line_number == 1) {
      if (line != kKnownPeersHeader) {
        return Status::Corruption(where + "expected the header '" + std::string(kKnownPeersHeader) + "'");
      }
      continue;
    }
    if (peers.size() == kMaxKnownPeers) {
      return Status::Corruption(where + "more than " + std::to_string(kMaxKnownPeers) + " addresses");
    }
    auto address = net::ParseSocketAddress(line);
    if (!address.ok()) return Status::Corruption(where + address.status().message());
    if (address->port == 0) return Status::Corruption(where + "port 0 cannot be dialed");
    // Only the form EncodeKnownPeers writes: one spelling per address, so a
    // repeated address cannot hide behind another spelling.
    std::string canonical = Canonical(*address);
    if (canonical != line) return Status::Corruption(where + "not in canonical form (" + canonical + ")");
    if (!seen.insert(std::move(canonical)).second) return Status::Corruption(where + "repeats an address");
    peers.push_back(std::move(*address));
  }
  return peers;  // line 1 was the header: the text is not empty and ends in '\n'
}

Result<std::vector<net::SocketAddress>> LoadKnownPeers(fs::FileSystem& fs, const std::string& dir) {
  const std::string path = fs::JoinPath(dir, kKnownPeersFileName);
  auto exists = fs.Exists(path);
  if (!exists.ok()) return exists.status();
  if (!*exists) return Status::NotFound(path + " does not exist");
  auto text = fs::ReadFileToString(fs, path, kMaxKnownPeersFileBytes);
  if (!text.ok()) {
    // An IO error stays one (the disk, not the file, is at fault); a file too
    // large to read is a damaged one.
    if (text.status().IsIOError()) return Status::IOError(path + ": " + text.status().message());
    return Status::Corruption(path + ": " + text.status().message());
  }
  auto peers = DecodeKnownPeers(*text);
  if (!peers.ok()) return Status::Corruption(path + ": " + peers.status().message());
  return peers;
}

Status SaveKnownPeers(fs::FileSystem& fs, const std::string& dir, const std::vector<net::SocketAddress>& peers) {
  return fs::WriteFileDurably(fs, fs::JoinPath(dir, kKnownPeersFileName), EncodeKnownPeers(peers));
}

}  // namespace gv::daemon
