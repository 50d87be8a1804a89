// The overlay record decoder fuzz target's check, run under gcc + ASan/UBSan
// over the seed corpus (a few valid records) and 20,000 seeded mutations so
// `make test` exercises it (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/overlay_record_decode_check.h"
#include "tests/fuzz/decoder_mutations.h"
#include "tests/fuzz/mutation_runner.h"
#include "wire/overlay_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 20'000;

std::vector<NodeId> RandomView(Prng& prng) {
  std::vector<NodeId> view(prng.Index(7));
  for (NodeId& node : view) node = NodeId(1 + prng.Uniform(1000));
  return view;
}

// A valid record with random fields, some of them empty.
std::string RandomEncoding(Prng& prng) {
  wire::OverlayRecord record;
  record.node = NodeId(1 + prng.Uniform(1000));
  record.name = std::string(prng.Index(20), 'n');
  record.address = prng.Chance(0.8) ? "10.0.0." + std::to_string(prng.Uniform(256)) + ":7400" : "";
  record.http = prng.Chance(0.5) ? "127.0.0.1:7401" : "";
  record.version = prng.NextU64();
  record.left = prng.Chance(0.2);
  record.active = RandomView(prng);
  record.passive = RandomView(prng);
  record.eager = RandomView(prng);
  record.lazy = RandomView(prng);
  for (std::size_t i = prng.Index(6); i > 0; --i) record.applied[NodeId(1 + prng.Uniform(60))] = 1 + prng.Uniform(99);
  record.key_count = prng.Uniform(100'000);
  return wire::EncodeOverlayRecord(record);
}

}  // namespace

TEST_CASE("overlay_record_decode_fuzz: the seed corpus holds valid records, as the encoder writes them") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  bool some_left = false, some_applied = false, some_views = false;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    auto decoded = wire::DecodeOverlayRecord(corpus[i]);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(wire::EncodeOverlayRecord(*decoded) == corpus[i]);
    some_left |= decoded->left;
    some_applied |= !decoded->applied.empty();
    some_views |= !decoded->active.empty() && !decoded->passive.empty() && !decoded->eager.empty() &&
                  !decoded->lazy.empty();
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(corpus[i].data());
    CHECK(gv::fuzz::CheckOverlayRecordDecode(bytes, corpus[i].size()) == "");
    CHECK(LLVMFuzzerTestOneInput(bytes, corpus[i].size()) == 0);
  }
  // The seeds reach every part of the decoder.
  CHECK(some_left);
  CHECK(some_applied);
  CHECK(some_views);
}

TEST_CASE("overlay_record_decode_fuzz: seeded mutations of valid records hold the round-trip property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2026);
  for (int i = 0; i < 32; ++i) pool.push_back(RandomEncoding(seeder));
  fuzztest::CheckDecoderMutations(
      pool, kMutations, [](std::string_view input) { return wire::DecodeOverlayRecord(input).ok(); }, gv::fuzz::CheckOverlayRecordDecode);
}
