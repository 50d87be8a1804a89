// The peer envelope decoder fuzz target's check, run under gcc + ASan/UBSan
// over the seed corpus (one valid envelope per message kind) and 20,000
// seeded mutations so `make test` exercises it (`make fuzz` explores further
// with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/envelope_decode_check.h"
#include "tests/fuzz/decoder_mutations.h"
#include "tests/fuzz/mutation_runner.h"
#include "wire/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;
namespace ms = gv::membership;
namespace bc = gv::broadcast;

namespace {

constexpr std::size_t kMutations = 20'000;

std::vector<NodeId> RandomNodes(Prng& prng) {
  std::vector<NodeId> nodes(prng.Index(6));
  for (NodeId& node : nodes) node = NodeId(1 + prng.Uniform(1000));
  return nodes;
}

std::vector<bc::IHaveEntry> RandomEntries(Prng& prng) {
  std::vector<bc::IHaveEntry> entries(prng.Index(4));
  for (auto& e : entries) e = {bc::MessageId{NodeId(1 + prng.Uniform(50)), prng.Uniform(100)},
                               static_cast<std::uint32_t>(prng.Uniform(10))};
  return entries;
}

// A valid envelope of a random kind with random fields.
std::string RandomEncoding(Prng& prng) {
  wire::PeerMessage message;
  const auto connection = 1 + prng.Uniform(1u << 30);
  switch (prng.Index(17)) {
    case 0: message = wire::Hello{"c" + std::to_string(prng.Uniform(9)), 1, NodeId(1 + prng.Uniform(99)), "n", "h:1"}; break;
    case 1: message = wire::Refuse{std::string(prng.Index(40), 'r')}; break;
    case 2: message = ms::Message(ms::Join{connection}); break;
    case 3: message = ms::Message(ms::ForwardJoin{NodeId(1 + prng.Uniform(99)), static_cast<std::uint32_t>(prng.Uniform(7))}); break;
    case 4: message = ms::Message(ms::ForwardJoinReply{connection}); break;
    case 5: message = ms::Message(ms::Neighbor{prng.Chance(0.5) ? ms::Priority::kHigh : ms::Priority::kLow, connection}); break;
    case 6: message = ms::Message(ms::NeighborReply{connection, prng.Chance(0.5), RandomNodes(prng)}); break;
    case 7: message = ms::Message(ms::Disconnect{connection}); break;
    case 8: message = ms::Message(ms::Shuffle{NodeId(1 + prng.Uniform(99)), 3, RandomNodes(prng)}); break;
    case 9: message = ms::Message(ms::ShuffleReply{RandomNodes(prng)}); break;
    case 10: message = ms::Message(ms::KeepAlive{}); break;
    case 11:
      message = bc::Message(bc::Gossip{bc::MessageId{NodeId(1 + prng.Uniform(99)), prng.Uniform(1000)},
                                       static_cast<std::uint32_t>(prng.Uniform(9)), std::string(prng.Index(64), 'p'),
                                       prng.Chance(0.5)});
      break;
    case 12: message = bc::Message(bc::IHave{RandomEntries(prng)}); break;
    case 13:
      message = bc::Message(bc::Graft{RandomEntries(prng),
                                      prng.Chance(0.5) ? std::optional<NodeId>(NodeId(1 + prng.Uniform(9))) : std::nullopt});
      break;
    case 14: message = bc::Message(bc::Prune{prng.Chance(0.5) ? std::optional<NodeId>(NodeId(3)) : std::nullopt}); break;
    case 15: {
      statestore::VersionVector applied;
      for (std::size_t i = prng.Index(5); i > 0; --i) applied[NodeId(1 + prng.Uniform(60))] = 1 + prng.Uniform(9);
      message = wire::SyncRequest{applied, prng.Uniform(1u << 20)};
      break;
    }
    default: {
      std::vector<std::string> deltas(prng.Index(4));
      for (auto& d : deltas) d = std::string(prng.Index(30), 'd');
      message = wire::SyncReply{deltas, prng.Chance(0.5)};
      break;
    }
  }
  wire::Envelope envelope{message, {}};
  for (std::size_t i = prng.Index(3); i > 0; --i) {
    envelope.addresses.push_back({NodeId(1000 + envelope.addresses.size()), "10.0.0.1:" + std::to_string(7400 + i)});
  }
  return wire::EncodeEnvelope(envelope);
}

}  // namespace

TEST_CASE("envelope_decode_fuzz: the seed corpus holds every kind, canonically encoded") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  std::set<std::string> kinds;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    auto decoded = wire::DecodeEnvelope(corpus[i]);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    kinds.insert(wire::PeerMessageTypeName(decoded->message));
    CHECK(wire::EncodeEnvelope(*decoded) == corpus[i]);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(corpus[i].data());
    CHECK(gv::fuzz::CheckEnvelopeDecode(bytes, corpus[i].size()) == "");
    CHECK(LLVMFuzzerTestOneInput(bytes, corpus[i].size()) == 0);
  }
  CHECK(kinds.size() == 17);
}

TEST_CASE("envelope_decode_fuzz: seeded mutations of valid envelopes hold the round-trip property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2026);
  for (int i = 0; i < 48; ++i) pool.push_back(RandomEncoding(seeder));
  fuzztest::CheckDecoderMutations(
      pool, kMutations, [](std::string_view input) { return wire::DecodeEnvelope(input).ok(); }, gv::fuzz::CheckEnvelopeDecode);
}
