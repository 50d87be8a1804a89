// The snapshot decoder fuzz target's check, run under gcc + ASan/UBSan over
// the seed corpus and seeded mutations of valid streams (resealed, so most
// mutations reach the checks behind the checksums) so `make test` exercises
// it (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/snapshot_decode_check.h"
#include "snapshot/codec.h"
#include "statestore/store.h"
#include "tests/fuzz/decoder_mutations.h"
#include "tests/fuzz/mutation_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 20'000;

// A small store written by two nodes (puts, deletes, an overwrite by the other
// node), encoded with small chunks so a stream has several entry chunks.
std::string RandomEncoding(Prng& prng) {
  statestore::Store a(NodeId(1 + prng.Uniform(5)), statestore::StoreLimits{});
  statestore::Store b(NodeId(10 + prng.Uniform(5)), statestore::StoreLimits{});
  std::uint64_t wall = 1'700'000'000'000 + prng.Uniform(1000);
  for (std::size_t i = 0, n = 1 + prng.Index(12); i < n; ++i) {
    statestore::Store& writer = prng.Chance(0.5) ? a : b;
    statestore::LocalOp op;
    op.key = "cfg/" + std::to_string(prng.Index(8));
    op.kind = prng.Chance(0.25) ? statestore::OpKind::kDelete : statestore::OpKind::kPut;
    if (op.kind == statestore::OpKind::kPut) op.value = std::string(prng.Index(24), static_cast<char>('a' + i));
    op.flags = prng.Uniform(3);
    auto delta = writer.MakeLocalDelta({op}, ++wall);
    REQUIRE(delta.ok());
    a.Apply(*delta, wall);
    b.Apply(*delta, wall);
  }
  return snapshot::EncodeSnapshot(a.Capture(), prng.Uniform(1000), prng.Uniform(1000), 64 + prng.Index(200));
}

}  // namespace

TEST_CASE("snapshot_decode_fuzz: the seed corpus decodes and passes the entry point") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    snapshot::SnapshotDecoder decoder;
    CHECK(decoder.Feed(corpus[i]).ok());
    CHECK(decoder.complete());
    CHECK(gv::fuzz::CheckSnapshotDecode(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) ==
          "");
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
}

TEST_CASE("snapshot_decode_fuzz: resealing keeps a valid stream valid and repairs only checksums") {
  Prng prng(3);
  const std::string stream = RandomEncoding(prng);
  REQUIRE(gv::fuzz::ResealSnapshotStream(stream) == stream);
  std::string damaged = stream;
  damaged[damaged.size() - 3] = static_cast<char>(damaged[damaged.size() - 3] ^ 0x40);  // inside the trailer
  snapshot::SnapshotDecoder refused;
  REQUIRE_FALSE(refused.Feed(damaged).ok());
}

TEST_CASE("snapshot_decode_fuzz: seeded mutations hold the split, alignment and round-trip properties") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2026);
  for (int i = 0; i < 24; ++i) pool.push_back(RandomEncoding(seeder));
  fuzztest::CheckDecoderMutations(
      pool, kMutations,
      [](std::string_view input) {
        snapshot::SnapshotDecoder decoder;
        return decoder.Feed(gv::fuzz::ResealSnapshotStream(input)).ok() && decoder.complete();
      },
      gv::fuzz::CheckSnapshotDecode);
}
