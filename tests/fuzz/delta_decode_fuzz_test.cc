// The delta decoder fuzz target's check, run under gcc + ASan/UBSan over the
// seed corpus and 20,000 seeded mutations so `make test` exercises it
// (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/delta_decode_check.h"
#include "statestore/delta.h"
#include "tests/fuzz/decoder_mutations.h"
#include "tests/fuzz/mutation_runner.h"
#include "wire/delta_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 20'000;

std::string RandomEncoding(Prng& prng) {
  statestore::Delta delta;
  delta.origin = NodeId(1 + prng.Uniform(50));
  delta.seq = 1 + prng.Uniform(100);
  delta.hlc = statestore::Hlc{prng.Uniform(1ull << 45), static_cast<std::uint16_t>(prng.Uniform(16))};
  const std::size_t ops = 1 + prng.Index(4);
  for (std::size_t i = 0; i < ops; ++i) {
    statestore::Op op;
    op.kind = prng.Chance(0.3) ? statestore::OpKind::kDelete : statestore::OpKind::kPut;
    op.key = "cfg/" + std::to_string(i) + "/" + std::to_string(prng.Uniform(1000));
    if (op.kind == statestore::OpKind::kPut) op.value = std::string(prng.Index(64), static_cast<char>('a' + i));
    op.flags = prng.Uniform(4);
    for (std::size_t e = prng.Index(4); e > 0; --e) op.vv[NodeId(1 + prng.Uniform(60))] = 1 + prng.Uniform(9);
    op.vv[delta.origin] = delta.seq;
    delta.ops.push_back(std::move(op));
  }
  return wire::EncodeDelta(delta);
}

}  // namespace

TEST_CASE("delta_decode_fuzz: the seed corpus decodes and passes the entry point") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    auto decoded = wire::DecodeDelta(corpus[i]);
    CHECK_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(gv::fuzz::CheckDeltaDecode(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == "");
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
}

TEST_CASE("delta_decode_fuzz: seeded mutations of valid deltas hold the round-trip property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2026);
  for (int i = 0; i < 32; ++i) pool.push_back(RandomEncoding(seeder));
  fuzztest::CheckDecoderMutations(
      pool, kMutations, [](std::string_view input) { return wire::DecodeDelta(input).ok(); }, gv::fuzz::CheckDeltaDecode);
}
