#include "tests/fuzz/mutation_runner.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace gv::fuzztest {
namespace {

constexpr std::uint32_t kInteresting[] = {0,      1,      2,          4,          7,          8,
                                          16,     0x7f,   0x80,       0xff,       0x100,      0x7fff,
                                          0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};

void PutWord(std::string& bytes, std::size_t at, std::uint32_t word, bool big_endian) {
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t shift = 8 * (big_endian ? 3 - i : i);
    bytes[at + i] = static_cast<char>((word >> shift) & 0xff);
  }
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

}  // namespace

std::vector<std::string> LoadCorpus(const std::string& dir, std::size_t max_file_bytes) {
  std::vector<std::filesystem::path> paths;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  if (error) std::fprintf(stderr, "mutation_runner: cannot list %s: %s\n", dir.c_str(), error.message().c_str());
  std::sort(paths.begin(), paths.end());  // directory order is unspecified
  std::vector<std::string> corpus;
  for (const auto& path : paths) {
    if (std::filesystem::file_size(path, error) > max_file_bytes || error) {
      std::fprintf(stderr, "mutation_runner: skipping %s (unreadable or above %zu bytes)\n", path.c_str(),
                   max_file_bytes);
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return corpus;
}

void Mutate(Prng& prng, std::string& bytes, const std::vector<std::string>& pool) {
  switch (prng.Uniform(bytes.empty() ? 2 : 10)) {
    case 0: {  // insert random bytes
      const std::size_t at = prng.Index(bytes.size() + 1);
      std::string insert(1 + prng.Index(8), '\0');
      for (char& c : insert) c = static_cast<char>(prng.Uniform(256));
      bytes.insert(at, insert);
      break;
    }
    case 1: {  // splice: a prefix of this, the tail of another
      const std::string& other = pool[prng.Index(pool.size())];
      const std::size_t keep = prng.Index(bytes.size() + 1);
      const std::size_t from = prng.Index(other.size() + 1);
      bytes = bytes.substr(0, keep) + other.substr(from);
      break;
    }
    case 2:  // flip a bit
      bytes[prng.Index(bytes.size())] ^= static_cast<char>(1u << prng.Index(8));
      break;
    case 3:  // set a byte
      bytes[prng.Index(bytes.size())] = static_cast<char>(prng.Uniform(256));
      break;
    case 4: {  // erase a range
      const std::size_t at = prng.Index(bytes.size());
      bytes.erase(at, 1 + prng.Index(std::min<std::size_t>(16, bytes.size() - at)));
      break;
    }
    case 5:  // truncate
      bytes.resize(prng.Index(bytes.size()));
      break;
    case 6: {  // duplicate a range (repeated records and frames)
      const std::size_t from = prng.Index(bytes.size());
      const std::string copy = bytes.substr(from, 1 + prng.Index(std::min<std::size_t>(64, bytes.size() - from)));
      bytes.insert(prng.Index(bytes.size() + 1), copy);
      break;
    }
    case 7: case 8: {  // overwrite an aligned little-endian word: offsets, lengths, vtable entries
      if (bytes.size() < 4) break;
      const std::size_t at = 4 * prng.Index(bytes.size() / 4);
      const std::uint32_t word = prng.Chance(0.5) ? kInteresting[prng.Index(std::size(kInteresting))]
                                                  : static_cast<std::uint32_t>(prng.Uniform(bytes.size() + 16));
      PutWord(bytes, at, word, false);
      break;
    }
    case 9: {  // overwrite an unaligned word in either byte order: length prefixes
      if (bytes.size() < 4) break;
      const std::size_t at = prng.Index(bytes.size() - 3);
      const std::uint32_t word = prng.Chance(0.5) ? kInteresting[prng.Index(std::size(kInteresting))]
                                                  : static_cast<std::uint32_t>(prng.Uniform(bytes.size() + 16));
      PutWord(bytes, at, word, prng.Chance(0.5));
      break;
    }
  }
}

std::string MutatedInput(const std::vector<std::string>& pool, const MutationRun& run, std::size_t index) {
  Prng prng(run.first_seed + index);
  std::string input = pool[prng.Index(pool.size())];
  for (std::size_t edits = 1 + prng.Index(std::max<std::size_t>(run.max_edits, 1)); edits > 0; --edits) {
    Mutate(prng, input, pool);
    if (input.size() > run.max_input_bytes) input.resize(run.max_input_bytes);
  }
  return input;
}

MutationReport RunMutations(const std::vector<std::string>& pool, const MutationRun& run, const CheckFn& check) {
  MutationReport report;
  if (pool.empty()) {
    report.failed = 1;
    report.first_failures.push_back({run.first_seed, 0, "", "the mutation pool is empty: nothing to mutate"});
    std::fprintf(stderr, "mutation_runner: %s\n", report.first_failures.back().failure.c_str());
    return report;
  }
  for (std::size_t index = 0; index < run.mutations; ++index) {
    std::string input = MutatedInput(pool, run, index);
    std::string failure = check(input);
    if (failure.empty()) continue;
    if (++report.failed > MutationReport::kKeptFailures) continue;
    std::fprintf(stderr, "mutation_runner: seed %llu (mutation %zu, first_seed %llu) failed: %s\n  input (%zu bytes): %s\n",
                 static_cast<unsigned long long>(run.first_seed + index), index,
                 static_cast<unsigned long long>(run.first_seed), failure.c_str(), input.size(), Hex(input).c_str());
    report.first_failures.push_back({run.first_seed + index, index, std::move(input), std::move(failure)});
  }
  if (report.failed > MutationReport::kKeptFailures) {
    std::fprintf(stderr, "mutation_runner: %zu mutations failed in all (only the first %zu shown)\n", report.failed,
                 MutationReport::kKeptFailures);
  }
  return report;
}

}  // namespace gv::fuzztest
