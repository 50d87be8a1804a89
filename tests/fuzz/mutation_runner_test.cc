// The shared mutation engine: deterministic corpus order and mutations, and
// failures reported with the seed and index that reproduce them.
#include "tests/fuzz/mutation_runner.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace gv;

TEST_CASE("LoadCorpus reads regular files in sorted order") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("gv-mutation-runner-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "subdir");
  for (const char* name : {"b", "c", "a"}) std::ofstream(dir / name, std::ios::binary) << "seed " << name;
  std::ofstream(dir / "binary", std::ios::binary).write("\0\xff\0", 3);
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(dir.string());
  std::filesystem::remove_all(dir);
  REQUIRE(corpus.size() == 4);
  CHECK(corpus[0] == "seed a");
  CHECK(corpus[1] == "seed b");
  CHECK(corpus[2] == std::string("\0\xff\0", 3));
  CHECK(corpus[3] == "seed c");
  CHECK(fuzztest::LoadCorpus((dir / "missing").string()).empty());
}

TEST_CASE("mutations are a function of the seed, varied, and bounded") {
  const std::vector<std::string> pool = {std::string(64, 'x'), "short", ""};
  fuzztest::MutationRun run;
  run.max_input_bytes = 80;
  std::set<std::string> distinct;
  std::size_t longer = 0, shorter = 0, same_length = 0;
  for (std::size_t i = 0; i < 2000; ++i) {
    const std::string input = fuzztest::MutatedInput(pool, run, i);
    REQUIRE(input == fuzztest::MutatedInput(pool, run, i));
    CHECK(input.size() <= run.max_input_bytes);
    distinct.insert(input);
    longer += input.size() > 64;
    shorter += input.size() < 5;
    same_length += input.size() == 64 && input != pool[0];
  }
  CHECK(distinct.size() > 1500);
  CHECK(longer > 100);
  CHECK(shorter > 100);
  CHECK(same_length > 100);  // in-place edits: bit flips, bytes, words
  fuzztest::MutationRun other = run;
  other.first_seed += 1;
  CHECK(fuzztest::MutatedInput(pool, other, 0) == fuzztest::MutatedInput(pool, run, 1));
}

TEST_CASE("RunMutations reports each failure with the seed and index that reproduce it") {
  const std::vector<std::string> pool = {"0123456789abcdef", "seed"};
  fuzztest::MutationRun run;
  run.mutations = 500;
  std::vector<std::size_t> odd;
  for (std::size_t i = 0; i < run.mutations; ++i) {
    if (fuzztest::MutatedInput(pool, run, i).size() % 2 == 1) odd.push_back(i);
  }
  REQUIRE(odd.size() > fuzztest::MutationReport::kKeptFailures);
  const fuzztest::MutationReport report = fuzztest::RunMutations(
      pool, run, [](std::string_view input) { return input.size() % 2 == 1 ? std::string("odd length") : std::string(); });
  CHECK(report.failed == odd.size());
  REQUIRE(report.first_failures.size() == fuzztest::MutationReport::kKeptFailures);
  for (std::size_t k = 0; k < report.first_failures.size(); ++k) {
    const fuzztest::MutationFailure& failure = report.first_failures[k];
    CHECK(failure.index == odd[k]);
    CHECK(failure.seed == run.first_seed + odd[k]);
    CHECK(failure.input == fuzztest::MutatedInput(pool, run, failure.index));
    CHECK(failure.failure == "odd length");
  }
  const fuzztest::MutationReport none = fuzztest::RunMutations(pool, run, [](std::string_view) { return std::string(); });
  CHECK(none.failed == 0);
  CHECK(fuzztest::RunMutations({}, run, [](std::string_view) { return std::string(); }).failed == 1);
}
