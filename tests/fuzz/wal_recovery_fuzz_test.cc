// The WAL recovery fuzz target's check, run under gcc + ASan/UBSan over the
// seed corpus and seeded mutations of valid logs so `make test` exercises it
// (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/wal_recovery_check.h"
#include "tests/fuzz/mutation_runner.h"
#include "wal/format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 30'000;

std::string Check(std::string_view input, fuzz::WalRecoveryOutcome* outcome = nullptr) {
  return fuzz::CheckWalRecovery(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), outcome);
}

}  // namespace

TEST_CASE("wal_recovery_fuzz: the input layout encodes and parses back") {
  Prng prng(11);
  for (int i = 0; i < 200; ++i) {
    const fuzz::WalFuzzLayout layout = fuzz::RandomValidWalLayout(prng, prng.Chance(0.3));
    const std::string input = fuzz::EncodeWalFuzzInput(layout);
    REQUIRE(!input.empty());
    CHECK(fuzz::ParseWalFuzzInput(input) == layout);
  }
  // Every input describes some directory: even the empty one (one empty file).
  const fuzz::WalFuzzLayout empty = fuzz::ParseWalFuzzInput("");
  REQUIRE(empty.files.size() == 1);
  CHECK(empty.files[0].first_lsn == 1);
  CHECK(empty.files[0].bytes.empty());
  // A layout the format cannot express is refused, not mangled.
  fuzz::WalFuzzLayout too_far;
  too_far.files.push_back({300, true, ""});
  CHECK(fuzz::EncodeWalFuzzInput(too_far).empty());
}

TEST_CASE("wal_recovery_fuzz: valid logs recover completely; torn ones lose only the torn record") {
  Prng prng(12);
  for (int i = 0; i < 100; ++i) {
    const bool torn = i % 2 == 1;
    const fuzz::WalFuzzLayout layout = fuzz::RandomValidWalLayout(prng, torn);
    std::uint64_t records = 0;
    for (const auto& file : layout.files) {
      for (std::string_view rest = std::string_view(file.bytes).substr(file.valid_header ? 0 : wal::kSegmentHeaderBytes);;) {
        const wal::ParsedRecord record = wal::ParseRecord(rest);
        if (record.kind != wal::ParsedRecord::Kind::kRecord) break;
        ++records;
        rest.remove_prefix(record.frame_bytes);
      }
    }
    fuzz::WalRecoveryOutcome outcome;
    INFO("layout #" << i << (torn ? " (torn)" : ""));
    CHECK(Check(fuzz::EncodeWalFuzzInput(layout), &outcome) == "");
    CHECK(outcome.opened);
    CHECK(outcome.records == records);
    CHECK(outcome.tail_cut == torn);
  }
}

TEST_CASE("wal_recovery_fuzz: a damaged sealed segment fails the open with a message") {
  Prng prng(13);
  fuzz::WalFuzzLayout layout;
  while (layout.files.size() < 2) layout = fuzz::RandomValidWalLayout(prng, false);
  std::string& sealed = layout.files[0].bytes;
  const std::size_t first_record = layout.files[0].valid_header ? 0 : wal::kSegmentHeaderBytes;
  sealed[first_record + wal::kRecordHeaderBytes - 1] ^= 0x40;  // a bit of the first record's LSN
  fuzz::WalRecoveryOutcome outcome;
  CHECK(Check(fuzz::EncodeWalFuzzInput(layout), &outcome) == "");
  CHECK_FALSE(outcome.opened);
}

TEST_CASE("wal_recovery_fuzz: the seed corpus recovers and passes the entry point") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    fuzz::WalRecoveryOutcome outcome;
    CHECK(Check(corpus[i], &outcome) == "");
    CHECK(outcome.opened);
    CHECK(outcome.records > 0);
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
}

TEST_CASE("wal_recovery_fuzz: seeded mutations of valid logs hold the recovery property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2027);
  for (int i = 0; i < 32; ++i) pool.push_back(fuzz::EncodeWalFuzzInput(fuzz::RandomValidWalLayout(seeder, i % 4 == 0)));
  std::size_t opened = 0, refused = 0, cut = 0, with_records = 0;
  fuzztest::MutationRun run;
  run.mutations = kMutations;
  const fuzztest::MutationReport report = fuzztest::RunMutations(pool, run, [&](std::string_view input) {
    fuzz::WalRecoveryOutcome outcome;
    std::string failure = Check(input, &outcome);
    (outcome.opened ? opened : refused)++;
    cut += outcome.tail_cut;
    with_records += outcome.records > 0;
    return failure;
  });
  for (const auto& failure : report.first_failures) {
    FAIL_CHECK("mutation seed " << failure.seed << " (index " << failure.index << "): " << failure.failure);
  }
  CHECK(report.failed == 0);
  MESSAGE("opened " << opened << " (" << with_records << " with records, " << cut << " tails cut), refused " << refused
                    << " of " << kMutations);
  // Recovery, tail cutting and refusal must all be exercised, or the mutations test little.
  CHECK(opened > kMutations / 5);
  CHECK(with_records > kMutations / 10);
  CHECK(cut > kMutations / 20);
  CHECK(refused > kMutations / 10);
}
