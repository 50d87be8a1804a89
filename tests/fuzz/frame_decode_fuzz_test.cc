// The peer-frame decoder fuzz target's check, run under gcc + ASan/UBSan over
// the seed corpus and seeded mutations so `make test` exercises it (`make
// fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "daemon/transport/frame.h"
#include "fuzz/frame_decode_check.h"
#include "tests/fuzz/mutation_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 100'000;

std::string Check(std::string_view input, fuzz::FrameDecodeOutcome* outcome = nullptr) {
  return fuzz::CheckFrameDecode(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), outcome);
}

// A stream of valid frames (the last one possibly cut short) under a limit
// that admits them.
std::string RandomFrames(Prng& prng) {
  std::string stream;
  std::size_t largest = 1;
  for (std::size_t n = prng.Index(6); n > 0; --n) {
    std::string payload(1 + prng.Index(80), '\0');
    for (char& c : payload) c = static_cast<char>(prng.Uniform(256));
    largest = std::max(largest, payload.size());
    transport::AppendFrame(payload, stream);
  }
  if (prng.Chance(0.3)) stream.resize(prng.Index(stream.size() + 1));
  const std::size_t limit = largest + prng.Index(64);
  return fuzz::EncodeFrameFuzzInput(limit, static_cast<std::uint8_t>(prng.Uniform(256)), 1 + prng.Index(32), stream);
}

}  // namespace

TEST_CASE("frame_decode_fuzz: the input layout encodes and parses back") {
  const std::string input = fuzz::EncodeFrameFuzzInput(300, 7, 9, "stream");
  const fuzz::FrameFuzzInput parsed = fuzz::ParseFrameFuzzInput(input);
  CHECK(parsed.max_frame_bytes == 300);
  CHECK(parsed.split_seed == 7);
  CHECK(parsed.max_piece_bytes == 9);
  CHECK(parsed.stream == "stream");
  CHECK(fuzz::EncodeFrameFuzzInput(0, 0, 1, "").empty());
  CHECK(fuzz::EncodeFrameFuzzInput(65537, 0, 1, "").empty());
  CHECK(fuzz::ParseFrameFuzzInput("").stream.empty());
}

TEST_CASE("frame_decode_fuzz: outcomes of known streams") {
  std::string two;
  transport::AppendFrame("abc", two);
  transport::AppendFrame("de", two);
  fuzz::FrameDecodeOutcome outcome;
  CHECK(Check(fuzz::EncodeFrameFuzzInput(3, 1, 2, two), &outcome) == "");
  CHECK(outcome.frames == 2);
  CHECK_FALSE(outcome.failed);
  // The limit is 2: the first frame (3 bytes) is refused, nothing is yielded.
  CHECK(Check(fuzz::EncodeFrameFuzzInput(2, 1, 2, two), &outcome) == "");
  CHECK(outcome.frames == 0);
  CHECK(outcome.failed);
  // A zero length is refused after the frames before it.
  CHECK(Check(fuzz::EncodeFrameFuzzInput(3, 1, 2, two + std::string(4, '\0')), &outcome) == "");
  CHECK(outcome.frames == 2);
  CHECK(outcome.failed);
}

TEST_CASE("frame_decode_fuzz: the seed corpus passes the entry point") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    fuzz::FrameDecodeOutcome outcome;
    CHECK(Check(corpus[i], &outcome) == "");
    CHECK(outcome.frames > 0);
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
}

TEST_CASE("frame_decode_fuzz: seeded mutations hold the whole-vs-pieces property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2028);
  for (int i = 0; i < 32; ++i) pool.push_back(RandomFrames(seeder));
  std::size_t failed = 0, clean = 0, with_frames = 0;
  fuzztest::MutationRun run;
  run.mutations = kMutations;
  const fuzztest::MutationReport report = fuzztest::RunMutations(pool, run, [&](std::string_view input) {
    fuzz::FrameDecodeOutcome outcome;
    std::string failure = Check(input, &outcome);
    (outcome.failed ? failed : clean)++;
    with_frames += outcome.frames > 0;
    return failure;
  });
  for (const auto& failure : report.first_failures) {
    FAIL_CHECK("mutation seed " << failure.seed << " (index " << failure.index << "): " << failure.failure);
  }
  CHECK(report.failed == 0);
  MESSAGE("clean " << clean << " (" << with_frames << " with frames), refused " << failed << " of " << kMutations);
  CHECK(clean > kMutations / 10);
  CHECK(with_frames > kMutations / 10);
  CHECK(failed > kMutations / 10);
}
