// The seeded mutation engine every fuzz target's regression test shares: it
// loads a seed corpus, applies seeded structural mutations (common/prng.h, so
// a seed reproduces the same input on every compiler), and runs a target's
// check on each result. `make test` thereby exercises each fuzz property under
// gcc + ASan/UBSan without libFuzzer; `make fuzz` explores further.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/prng.h"

namespace gv::fuzztest {

// Every regular file of `dir`, in sorted path order (deterministic seeded runs).
// Files larger than max_file_bytes are skipped with a warning on stderr.
std::vector<std::string> LoadCorpus(const std::string& dir, std::size_t max_file_bytes = 1 << 20);

// Applies one random structural edit to `bytes`: insert random bytes, splice
// with another input of `pool`, flip a bit, set a byte, erase or duplicate a
// range, truncate, or overwrite a 32-bit word (aligned little-endian, for
// FlatBuffers offsets and WAL fields; or anywhere, either byte order, for
// big-endian length prefixes) with a boundary value or a small length.
// `pool` must not be empty.
void Mutate(Prng& prng, std::string& bytes, const std::vector<std::string>& pool);

// A check: "" when the property holds for `input`, otherwise what broke.
using CheckFn = std::function<std::string(std::string_view input)>;

struct MutationRun {
  std::uint64_t first_seed = 0x5eed0000u;  // mutation i uses Prng(first_seed + i)
  std::size_t mutations = 20'000;
  std::size_t max_edits = 4;  // each mutation applies 1..max_edits edits to one pool input
  std::size_t max_input_bytes = 1 << 16;  // inputs grown past this are truncated to it
};

struct MutationFailure {
  std::uint64_t seed = 0;
  std::size_t index = 0;
  std::string input;
  std::string failure;
};

// The input mutation `index` of `run` feeds to the check (to replay a failure).
std::string MutatedInput(const std::vector<std::string>& pool, const MutationRun& run, std::size_t index);

struct MutationReport {
  std::size_t failed = 0;                     // mutations whose check failed
  std::vector<MutationFailure> first_failures;  // the first kKeptFailures of them
  static constexpr std::size_t kKeptFailures = 10;
};

// Runs `check` over run.mutations mutated inputs. The first kKeptFailures
// failures are printed to stderr with their seed, mutation index and input
// (hex) and kept in the report; later ones are only counted.
MutationReport RunMutations(const std::vector<std::string>& pool, const MutationRun& run, const CheckFn& check);

}  // namespace gv::fuzztest
