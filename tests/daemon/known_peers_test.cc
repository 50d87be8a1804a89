#include "daemon/known_peers.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "daemon/data_dir.h"
#include "fs/mem_file_system.h"
#include "fs/posix_file_system.h"

using namespace gv;
using namespace gv::daemon;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gv-known-peers-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

net::SocketAddress Addr(const std::string& text) {
  auto address = net::ParseSocketAddress(text);
  REQUIRE_MESSAGE(address.ok(), address.status().ToString());
  return *address;
}

std::vector<net::SocketAddress> Addrs(const std::vector<std::string>& texts) {
  std::vector<net::SocketAddress> out;
  for (const std::string& text : texts) out.push_back(Addr(text));
  return out;
}

// The canonical spelling of each address, in order: what a test compares.
std::vector<std::string> Strings(const std::vector<net::SocketAddress>& peers) {
  std::vector<std::string> out;
  for (const net::SocketAddress& peer : peers) out.push_back(net::FormatSocketAddress(peer.storage));
  return out;
}

// "10.0.<i / 256>.<i % 256>:7400": distinct IPv4 addresses.
std::string Ipv4(int i) { return "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":7400"; }

std::string FileWith(const std::vector<std::string>& lines) {
  std::string text = std::string(kKnownPeersHeader) + "\n";
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// The message of DecodeKnownPeers' refusal of `text`, which must be a Corruption.
std::string Refusal(const std::string& text) {
  auto decoded = DecodeKnownPeers(text);
  REQUIRE_MESSAGE(!decoded.ok(), "accepted: " << text);
  CHECK_MESSAGE(decoded.status().IsCorruption(), decoded.status().ToString());
  return decoded.status().message();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteRaw(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

}  // namespace

TEST_CASE("known peers: IPv4 and IPv6 addresses round-trip through the file's text") {
  const auto peers = Addrs({"10.0.0.1:7400", "[::1]:7401", "192.168.1.20:1", "[2001:db8::42]:65535"});
  const std::string text = EncodeKnownPeers(peers);
  CHECK(text == "grapevine-peers 1\n10.0.0.1:7400\n[::1]:7401\n192.168.1.20:1\n[2001:db8::42]:65535\n");
  auto decoded = DecodeKnownPeers(text);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(Strings(*decoded) == Strings(peers));
  REQUIRE(decoded->size() == 4);
  CHECK((*decoded)[1].storage.ss_family == AF_INET6);
  CHECK((*decoded)[1].port == 7401);
  CHECK(net::PortOf((*decoded)[1].storage) == 7401);
  CHECK((*decoded)[2].storage.ss_family == AF_INET);
  CHECK((*decoded)[3].port == 65535);
}

TEST_CASE("known peers: the encoder writes canonical spellings, each address once, at most kMaxKnownPeers") {
  // Two spellings of one address are one address.
  CHECK(EncodeKnownPeers(Addrs({"[0:0::1]:7401", "[::1]:7401", "[::ABCD]:9"})) ==
        "grapevine-peers 1\n[::1]:7401\n[::abcd]:9\n");
  // Same host, another port: another address.
  CHECK(EncodeKnownPeers(Addrs({"10.0.0.1:7400", "10.0.0.1:7401", "10.0.0.1:7400"})) ==
        "grapevine-peers 1\n10.0.0.1:7400\n10.0.0.1:7401\n");

  // 40 distinct addresses, the first one repeated: a repeat does not use up
  // the limit, and the first kMaxKnownPeers distinct ones are kept in order.
  std::vector<std::string> texts{Ipv4(0)};
  for (int i = 0; i < 40; ++i) texts.push_back(Ipv4(i));
  texts.push_back(Ipv4(1));
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < kMaxKnownPeers; ++i) expected.push_back(Ipv4(static_cast<int>(i)));
  const std::string text = EncodeKnownPeers(Addrs(texts));
  CHECK(text == FileWith(expected));
  auto decoded = DecodeKnownPeers(text);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(decoded->size() == kMaxKnownPeers);
  CHECK(Strings(*decoded) == expected);
}

TEST_CASE("known peers: the encoder leaves out port 0, which the decoder would refuse") {
  const std::string text = EncodeKnownPeers(Addrs({"127.0.0.1:0", "10.0.0.1:7400", "[::1]:0"}));
  CHECK(text == "grapevine-peers 1\n10.0.0.1:7400\n");
  auto decoded = DecodeKnownPeers(text);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(Strings(*decoded) == std::vector<std::string>{"10.0.0.1:7400"});
  // A default address (no family, port 0) is not written either.
  CHECK(EncodeKnownPeers({net::SocketAddress{}}) == "grapevine-peers 1\n");
}

TEST_CASE("known peers: an empty list is the header alone and round-trips") {
  const std::string text = EncodeKnownPeers({});
  CHECK(text == "grapevine-peers 1\n");
  auto decoded = DecodeKnownPeers(text);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(decoded->empty());
}

TEST_CASE("known peers: a text over kMaxKnownPeersFileBytes is refused unread") {
  // Otherwise valid (but for its size): only the size check can refuse it.
  std::string text = FileWith({});
  for (int i = 0; text.size() <= kMaxKnownPeersFileBytes; ++i) text += Ipv4(i) + "\n";
  const std::string message = Refusal(text);
  CHECK_MESSAGE(Contains(message, std::to_string(text.size()) + " bytes, more than 4096"), message);
  // Exactly at the limit the size is not the reason: line 1 is.
  const std::string at_limit = std::string(kMaxKnownPeersFileBytes - 1, 'x') + "\n";
  const std::string limit_message = Refusal(at_limit);
  CHECK_MESSAGE(Contains(limit_message, "known-peers line 1: expected the header"), limit_message);
}

TEST_CASE("known peers: a text whose last line has no newline is refused whole (a torn write)") {
  for (const std::string& text : {std::string("grapevine-peers 1\n10.0.0.1:7400\n10.0.0.2:7400"),
                                  std::string("grapevine-peers 1"), std::string("")}) {
    INFO("text: '" << text << "'");
    const std::string message = Refusal(text);
    CHECK_MESSAGE(Contains(message, "does not end with a newline"), message);
  }
}

TEST_CASE("known peers: a missing or different header is refused at line 1") {
  for (const std::string& text :
       {std::string("grapevine-peers 2\n"), std::string("grapevine-peers 1 \n"), std::string("grapevine-peers 1\r\n"),
        std::string("10.0.0.1:7400\n"), std::string("\n"), std::string("\ngrapevine-peers 1\n10.0.0.1:7400\n")}) {
    INFO("text: '" << text << "'");
    const std::string message = Refusal(text);
    CHECK_MESSAGE(Contains(message, "known-peers line 1: expected the header 'grapevine-peers 1'"), message);
  }
}

TEST_CASE("known peers: a line that is not a literal address with a port is refused, naming the line") {
  for (const std::string& bad :
       {std::string("localhost:7400"), std::string("10.0.0.1"), std::string("10.0.0.1:"), std::string("10.0.0.1:65536"),
        std::string("10.0.0.1:-1"), std::string("::1:7400"), std::string("[::1:7400"), std::string("[::1]7400"),
        std::string("[::g]:7400"), std::string(""), std::string(" 10.0.0.1:7400"), std::string("10.0.0.1:7400\r")}) {
    INFO("line: '" << bad << "'");
    const std::string message = Refusal(FileWith({"10.0.0.1:7399", "[::1]:7400", bad, "10.0.0.2:7400"}));
    CHECK_MESSAGE(Contains(message, "known-peers line 4: "), message);
    CHECK_MESSAGE(Contains(message, "bad address"), message);
  }
}

TEST_CASE("known peers: port 0 is refused, naming the line") {
  for (const std::string& bad : {std::string("10.0.0.1:0"), std::string("[::1]:0")}) {
    const std::string message = Refusal(FileWith({"10.0.0.1:7400", bad}));
    CHECK_MESSAGE(message == "known-peers line 3: port 0 cannot be dialed", message);
  }
}

TEST_CASE("known peers: only the canonical spelling of an address is accepted") {
  // glibc's inet_pton refuses an IPv4 octet with a leading zero outright
  // (no octal reading), so that spelling is a bad address, not merely a
  // non-canonical one.
  for (const std::string& bad : {std::string("127.000.0.1:80"), std::string("127.0.0.01:80")}) {
    INFO("line: '" << bad << "'");
    const std::string message = Refusal(FileWith({bad}));
    CHECK_MESSAGE(Contains(message, "known-peers line 2: bad address '" + bad + "': not an IPv4 address"), message);
  }
  // inet_pton accepts these; they parse to an address whose canonical spelling differs.
  const std::vector<std::pair<std::string, std::string>> spellings{
      {"[0:0::1]:80", "[::1]:80"},
      {"[0:0:0:0:0:0:0:1]:80", "[::1]:80"},
      {"[::0001]:80", "[::1]:80"},
      {"[::ABCD]:80", "[::abcd]:80"},
      {"[2001:DB8::1]:7400", "[2001:db8::1]:7400"},
      {"[::ffff:0a00:0001]:80", "[::ffff:10.0.0.1]:80"},
      {"10.0.0.1:080", "10.0.0.1:80"},
      {"[10.0.0.1]:80", "10.0.0.1:80"},  // brackets around IPv4 parse as IPv4
  };
  for (const auto& [bad, canonical] : spellings) {
    INFO("line: '" << bad << "'");
    const std::string message = Refusal(FileWith({"10.0.0.9:7400", bad}));
    CHECK_MESSAGE(message == "known-peers line 3: not in canonical form (" + canonical + ")", message);
    // The canonical spelling itself is accepted.
    auto decoded = DecodeKnownPeers(FileWith({"10.0.0.9:7400", canonical}));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(Strings(*decoded) == std::vector<std::string>{"10.0.0.9:7400", canonical});
  }
}

TEST_CASE("known peers: a repeated address is refused, naming the line") {
  const std::string message = Refusal(FileWith({"10.0.0.1:7400", "[::1]:7400", "10.0.0.2:7400", "[::1]:7400"}));
  CHECK_MESSAGE(message == "known-peers line 5: repeats an address", message);
  // Same host on another port is another address.
  auto decoded = DecodeKnownPeers(FileWith({"10.0.0.1:7400", "10.0.0.1:7401"}));
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(decoded->size() == 2);
}

TEST_CASE("known peers: more than kMaxKnownPeers addresses are refused, naming the first line too many") {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < kMaxKnownPeers; ++i) lines.push_back(Ipv4(static_cast<int>(i)));
  auto full = DecodeKnownPeers(FileWith(lines));
  REQUIRE_MESSAGE(full.ok(), full.status().ToString());
  CHECK(full->size() == kMaxKnownPeers);
  lines.push_back(Ipv4(static_cast<int>(kMaxKnownPeers)));
  const std::string message = Refusal(FileWith(lines));
  CHECK_MESSAGE(message == "known-peers line 34: more than 32 addresses", message);
}

TEST_CASE("known peers: saved to a real directory and loaded back") {
  TempDir tmp;
  fs::PosixFileSystem posix;
  const auto peers = Addrs({"10.0.0.1:7400", "[::1]:7401", "[fe80::1:2]:7402"});
  REQUIRE(SaveKnownPeers(posix, tmp.path, peers).ok());
  const std::string path = fs::JoinPath(tmp.path, "peers");
  CHECK(ReadRaw(path) == EncodeKnownPeers(peers));
  auto loaded = LoadKnownPeers(posix, tmp.path);
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  CHECK(Strings(*loaded) == Strings(peers));
}

TEST_CASE("known peers: loading from a directory without the file is NotFound") {
  TempDir tmp;
  fs::PosixFileSystem posix;
  auto loaded = LoadKnownPeers(posix, tmp.path);
  REQUIRE_FALSE(loaded.ok());
  CHECK_MESSAGE(loaded.status().IsNotFound(), loaded.status().ToString());
  CHECK(Contains(loaded.status().message(), fs::JoinPath(tmp.path, "peers")));
}

TEST_CASE("known peers: a damaged file is Corruption naming the file and the line") {
  TempDir tmp;
  fs::PosixFileSystem posix;
  const std::string path = fs::JoinPath(tmp.path, "peers");

  WriteRaw(path, "grapevine-peers 1\n10.0.0.1:7400\nnot-an-address\n");
  auto bad_line = LoadKnownPeers(posix, tmp.path);
  REQUIRE_FALSE(bad_line.ok());
  CHECK_MESSAGE(bad_line.status().IsCorruption(), bad_line.status().ToString());
  CHECK_MESSAGE(Contains(bad_line.status().message(), path + ": known-peers line 3: bad address"),
                bad_line.status().ToString());

  WriteRaw(path, "grapevine-peers 1\n10.0.0.1:7400\n10.0.0.2:74");  // torn
  auto torn = LoadKnownPeers(posix, tmp.path);
  REQUIRE_FALSE(torn.ok());
  CHECK_MESSAGE(torn.status().IsCorruption(), torn.status().ToString());
  CHECK_MESSAGE(Contains(torn.status().message(), path + ": the known-peers file does not end with a newline"),
                torn.status().ToString());

  WriteRaw(path, std::string(kMaxKnownPeersFileBytes + 1, '\n'));  // too large to read
  auto large = LoadKnownPeers(posix, tmp.path);
  REQUIRE_FALSE(large.ok());
  CHECK_MESSAGE(large.status().IsCorruption(), large.status().ToString());
  CHECK_MESSAGE(Contains(large.status().message(), "4097 bytes"), large.status().ToString());
}

TEST_CASE("known peers: saving replaces the earlier file and leaves no peers.tmp behind") {
  TempDir tmp;
  fs::PosixFileSystem posix;
  // A longer peers.tmp left by a crash mid-save: the next save must not
  // keep its tail.
  WriteRaw(fs::JoinPath(tmp.path, "peers.tmp"), FileWith({"10.9.9.9:1", "10.9.9.9:2", "10.9.9.9:3", "10.9.9.9:4"}));
  const auto earlier = Addrs({"10.0.0.1:7400", "10.0.0.2:7400", "[::1]:7400"});
  REQUIRE(SaveKnownPeers(posix, tmp.path, earlier).ok());
  CHECK(ReadRaw(fs::JoinPath(tmp.path, "peers")) == EncodeKnownPeers(earlier));
  const auto later = Addrs({"10.0.0.3:7400"});
  REQUIRE(SaveKnownPeers(posix, tmp.path, later).ok());
  CHECK(ReadRaw(fs::JoinPath(tmp.path, "peers")) == "grapevine-peers 1\n10.0.0.3:7400\n");
  auto loaded = LoadKnownPeers(posix, tmp.path);
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  CHECK(Strings(*loaded) == Strings(later));
  auto names = posix.ListDir(tmp.path);
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"peers"});

  REQUIRE(SaveKnownPeers(posix, tmp.path, {}).ok());
  auto emptied = LoadKnownPeers(posix, tmp.path);
  REQUIRE_MESSAGE(emptied.ok(), emptied.status().ToString());
  CHECK(emptied->empty());
}

TEST_CASE("known peers: a crash at any step of a save leaves the old file or the new one, never a damaged one") {
  const auto old_peers = Addrs({"10.0.0.1:7400", "10.0.0.2:7400"});
  const auto new_peers = Addrs({"[::1]:7400", "10.0.0.3:7400", "10.0.0.4:7400"});
  bool completed = false;
  for (std::uint64_t k = 1; k < 20 && !completed; ++k) {
    fs::MemFileSystem mem;
    REQUIRE(CreateDirs(mem, "d").ok());
    REQUIRE(SaveKnownPeers(mem, "d", old_peers).ok());
    mem.CrashAtOperation(mem.operation_count() + k);
    const Status saved = SaveKnownPeers(mem, "d", new_peers);
    completed = saved.ok();
    mem.SimulateCrash(fs::CrashMode::kKeepUnsyncedPrefix, k);
    auto loaded = LoadKnownPeers(mem, "d");
    REQUIRE_MESSAGE(loaded.ok(), "crash at step " << k << ": " << loaded.status().ToString());
    if (saved.ok()) {
      CHECK_MESSAGE(Strings(*loaded) == Strings(new_peers), "crash at step " << k);  // acknowledged
    } else {
      CHECK_MESSAGE((Strings(*loaded) == Strings(old_peers) || Strings(*loaded) == Strings(new_peers)),
                    "crash at step " << k);
    }
  }
  CHECK(completed);  // the steps ran out: every crash point of the save was tried
}
