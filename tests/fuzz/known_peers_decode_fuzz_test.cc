// The known-peers file decoder fuzz target's check, run under gcc + ASan/UBSan
// over the seed corpus (an empty list, IPv4, IPv6 and mixed lists) and 20,000
// seeded mutations so `make test` exercises it (`make fuzz` explores further
// with libFuzzer).
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/prng.h"
#include "daemon/known_peers.h"
#include "daemon/net_address.h"
#include "fuzz/known_peers_decode_check.h"
#include "tests/fuzz/decoder_mutations.h"
#include "tests/fuzz/mutation_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 20'000;

std::string Check(std::string_view input) {
  return fuzz::CheckKnownPeersDecode(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

// An IPv6 address spelled in full, upper-case, with runs of zero groups: the
// encoder compresses and lower-cases it, so the pool holds every shape of
// canonical spelling ("::", "a::b", "a:0:b:...", mapped IPv4).
std::string RandomIpv6(Prng& prng) {
  if (prng.Chance(0.1)) return "::ffff:10.0.0." + std::to_string(prng.Uniform(256));
  std::string out;
  for (int group = 0; group < 8; ++group) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "%X", prng.Chance(0.5) ? 0u : static_cast<unsigned>(prng.Uniform(65536)));
    out += (group ? ":" : "") + std::string(hex);
  }
  return out;
}

// A valid file with 0..kMaxKnownPeers random addresses, as the encoder
// writes it. A quarter are full, so one more line is the limit; some ports
// are one digit, so a single bit flip ('1' to '0') makes port 0.
std::string RandomEncoding(Prng& prng) {
  std::vector<net::SocketAddress> peers;
  const std::size_t count = prng.Chance(0.25) ? daemon::kMaxKnownPeers : prng.Index(daemon::kMaxKnownPeers + 1);
  for (std::size_t i = count; i > 0; --i) {
    const std::string port = std::to_string(prng.Chance(0.2) ? 1 + prng.Uniform(9) : 1 + prng.Uniform(65535));
    const std::string text = prng.Chance(0.5) ? "10.0." + std::to_string(prng.Uniform(4)) + "." +
                                                    std::to_string(prng.Uniform(256)) + ":" + port
                                              : "[" + RandomIpv6(prng) + "]:" + port;
    auto address = net::ParseSocketAddress(text);
    REQUIRE_MESSAGE(address.ok(), address.status().ToString());
    peers.push_back(*address);
  }
  return daemon::EncodeKnownPeers(peers);
}

}  // namespace

TEST_CASE("known_peers_decode_fuzz: the seed corpus holds valid files, as the encoder writes them") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  bool some_empty = false, some_ipv4 = false, some_ipv6 = false;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    auto decoded = daemon::DecodeKnownPeers(corpus[i]);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(daemon::EncodeKnownPeers(*decoded) == corpus[i]);
    some_empty |= decoded->empty();
    for (const net::SocketAddress& peer : *decoded) {
      some_ipv4 |= peer.storage.ss_family == AF_INET;
      some_ipv6 |= peer.storage.ss_family == AF_INET6;
    }
    CHECK(Check(corpus[i]) == "");
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
  // The seeds reach every part of the decoder.
  CHECK(some_empty);
  CHECK(some_ipv4);
  CHECK(some_ipv6);
}

TEST_CASE("known_peers_decode_fuzz: refusals and random valid files pass the check") {
  // Refusals with a message pass the check: the property is about accepted texts.
  CHECK(Check("") == "");
  CHECK(Check("grapevine-peers 1\n10.0.0.1:0\n") == "");
  CHECK(Check("grapevine-peers 1\n[0:0::1]:80\n") == "");
  CHECK(Check("grapevine-peers 1\n[::1]:80\n[::1]:80\n") == "");
  CHECK(Check(std::string("grapevine-peers 1\n10.0.0.1:7400\0\n", 33)) == "");
  Prng prng(7);
  for (int i = 0; i < 200; ++i) {
    const std::string text = RandomEncoding(prng);
    INFO("text: " << text);
    CHECK(Check(text) == "");
  }
}

TEST_CASE("known_peers_decode_fuzz: seeded mutations of valid files hold the round-trip property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2026);
  for (int i = 0; i < 32; ++i) pool.push_back(RandomEncoding(seeder));
  fuzztest::CheckDecoderMutations(
      pool, kMutations, [](std::string_view input) { return daemon::DecodeKnownPeers(input).ok(); },
      fuzz::CheckKnownPeersDecode);
}
