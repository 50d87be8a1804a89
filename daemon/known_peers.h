// DATA/peers: the peer addresses an agent last knew, so that an agent
// restarted with no reachable --join seed (typically the first agent of a
// cluster, started without --join) finds its cluster again instead of
// starting an overlay of its own. The same job as Serf's snapshot file and
// Consul's rejoin from its data directory. docs/agent.md has the format and
// the rules for using it.
//
// The file is a hint, never acknowledged data: it is rewritten atomically
// (temp file, fsync, rename, directory fsync) when the set changes, and a
// damaged file is reported and ignored, never trusted in part.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "daemon/net_address.h"
#include "fs/file_system.h"

namespace gv::daemon {

// The first line of the file; a different first line is refused (a later
// format gets a new version number).
inline constexpr std::string_view kKnownPeersHeader = "grapevine-peers 1";
// At most this many addresses are written and accepted. HyParView's active
// (5) and passive (30) views fit.
inline constexpr std::size_t kMaxKnownPeers = 32;
// A file larger than this is refused unread: 32 addresses of at most 48
// bytes ("[IPv6]:port" and a newline) plus the header fit with room to spare.
inline constexpr std::size_t kMaxKnownPeersFileBytes = 4096;
// The file's name inside the data directory.
inline constexpr std::string_view kKnownPeersFileName = "peers";

// The file's text: the header line, then one canonical "IP:PORT" (or
// "[IPv6]:PORT") per line, each ending in '\n'. Only the first kMaxKnownPeers
// addresses are written; duplicates are written once; an address with port 0
// (which cannot be dialed, and which DecodeKnownPeers refuses) is not written.
std::string EncodeKnownPeers(const std::vector<net::SocketAddress>& peers);

// Parses the file's text. Refused (Corruption, saying which line and why):
// more than kMaxKnownPeersFileBytes, a missing or different header, a line
// that is not a literal address with a port in 1..65535, a repeated address,
// more than kMaxKnownPeers addresses, or a last line without its newline (a
// torn write). An empty list is valid.
Result<std::vector<net::SocketAddress>> DecodeKnownPeers(std::string_view text);

// Reads DATA/peers. NotFound when there is none (a new data directory).
Result<std::vector<net::SocketAddress>> LoadKnownPeers(fs::FileSystem& fs, const std::string& dir);

// Replaces DATA/peers with `peers` (temp file, fsync, rename, directory fsync).
Status SaveKnownPeers(fs::FileSystem& fs, const std::string& dir, const std::vector<net::SocketAddress>& peers);

}  // namespace gv::daemon
