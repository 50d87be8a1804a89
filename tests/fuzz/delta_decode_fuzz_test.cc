// The delta decoder fuzz target's check, run under gcc + ASan/UBSan over the
// seed corpus and 20,000 seeded mutations so `make test` exercises it
// (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/delta_decode_check.h"
#include "statestore/delta.h"
#include "wire/delta_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr int kMutations = 20'000;

std::vector<std::string> LoadCorpus() {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(GV_FUZZ_CORPUS_DIR)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());  // deterministic order for seeded runs
  std::vector<std::string> corpus;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return corpus;
}

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

// One random structural edit, biased toward the fields a verifier guards
// (offsets and lengths are 32-bit little-endian words).
void Mutate(Prng& prng, std::string& bytes, const std::vector<std::string>& pool) {
  static constexpr std::uint32_t kInteresting[] = {0, 1, 2, 4, 7, 8, 16, 0x7f, 0x80, 0xff, 0x7fff, 0xffff,
                                                   0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};
  switch (prng.Uniform(bytes.empty() ? 2 : 8)) {
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
    case 6: case 7: {  // overwrite an aligned 32-bit word: offsets, lengths, vtable entries
      if (bytes.size() < 4) break;
      const std::size_t at = 4 * prng.Index(bytes.size() / 4);
      std::uint32_t word = prng.Chance(0.5) ? kInteresting[prng.Index(std::size(kInteresting))]
                                            : static_cast<std::uint32_t>(prng.Uniform(bytes.size() + 16));
      std::memcpy(&bytes[at], &word, 4);
      break;
    }
  }
}

}  // namespace

TEST_CASE("delta_decode_fuzz: the seed corpus decodes and passes the entry point") {
  const std::vector<std::string> corpus = LoadCorpus();
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
  std::vector<std::string> pool = LoadCorpus();
  Prng seeder(2026);
  for (int i = 0; i < 32; ++i) pool.push_back(RandomEncoding(seeder));
  std::size_t accepted = 0, refused = 0;
  for (int iteration = 0; iteration < kMutations; ++iteration) {
    Prng prng(0x5eed0000u + static_cast<std::uint64_t>(iteration));
    std::string input = pool[prng.Index(pool.size())];
    for (std::size_t edits = 1 + prng.Index(4); edits > 0; --edits) Mutate(prng, input, pool);
    const std::string failure =
        gv::fuzz::CheckDeltaDecode(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    if (!failure.empty()) {
      FAIL_CHECK("mutation seed " << (0x5eed0000u + static_cast<std::uint64_t>(iteration)) << ": " << failure);
    }
    (wire::DecodeDelta(input).ok() ? accepted : refused)++;
  }
  MESSAGE("accepted " << accepted << ", refused " << refused << " of " << kMutations);
  // Both paths must be exercised, or the mutations test nothing.
  CHECK(accepted > kMutations / 100);
  CHECK(refused > kMutations / 2);
}
