// The HTTP/address parsing fuzz target's check, run under gcc + ASan/UBSan
// over the seed corpus and seeded mutations so `make test` exercises it
// (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/http_parse_check.h"
#include "tests/fuzz/mutation_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 100'000;

std::string Check(std::string_view input, fuzz::HttpParseOutcome* outcome = nullptr) {
  return fuzz::CheckHttpParse(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), outcome);
}

// Short texts from the characters the parsers care about, a third of them
// well-formed addresses (mutations rarely build one from scratch).
std::string RandomText(Prng& prng) {
  if (prng.Chance(1.0 / 3)) {
    const std::string port = std::to_string(prng.Uniform(65536));
    if (prng.Chance(0.5)) {
      std::string v4;
      for (int i = 0; i < 4; ++i) v4 += (i ? "." : "") + std::to_string(prng.Uniform(256));
      return v4 + ":" + port;
    }
    static constexpr const char* kV6[] = {"::1", "fe80::1:2", "2001:db8::ff00:42:8329", "::ffff:10.0.0.1", "::"};
    return "[" + std::string(kV6[prng.Index(std::size(kV6))]) + "]:" + port;
  }
  static constexpr char kChars[] = "0123456789abcfxyzABF%=&:.[]/+-_~ smhu\x00\xff";
  constexpr std::string_view kAlphabet(kChars, sizeof(kChars) - 1);  // the NUL inside counts
  std::string text(prng.Index(24), '\0');
  for (char& c : text) c = kAlphabet[prng.Index(kAlphabet.size())];
  return text;
}

}  // namespace

TEST_CASE("http_parse_fuzz: outcomes of known texts") {
  fuzz::HttpParseOutcome outcome;
  CHECK(Check("127.0.0.1:7401", &outcome) == "");
  CHECK(outcome.address);
  CHECK(outcome.decoded);
  CHECK_FALSE(outcome.integer);
  CHECK(Check("[::ffff:1.2.3.4]:0", &outcome) == "");
  CHECK(outcome.address);
  CHECK(Check("250ms", &outcome) == "");
  CHECK(outcome.duration);
  CHECK_FALSE(outcome.integer);
  CHECK(Check("0042", &outcome) == "");
  CHECK(outcome.integer);
  CHECK(outcome.duration);
  CHECK(Check("prefix=a&b&c=x%20y", &outcome) == "");  // 'p' & 31: at most 17 parameters
  CHECK(outcome.query);
  CHECK(Check("%zz", &outcome) == "");
  CHECK_FALSE(outcome.decoded);
  CHECK_FALSE(outcome.query);
  CHECK(Check(std::string("nul\0byte", 8), &outcome) == "");
  CHECK(Check("", &outcome) == "");
  CHECK(outcome.query);
  CHECK_FALSE(outcome.address);
}

TEST_CASE("http_parse_fuzz: the seed corpus passes the entry point") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    CHECK(Check(corpus[i]) == "");
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
}

TEST_CASE("http_parse_fuzz: seeded mutations hold the parsing properties") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2029);
  for (int i = 0; i < 32; ++i) pool.push_back(RandomText(seeder));
  std::size_t decoded = 0, query = 0, duration = 0, integer = 0, address = 0;
  fuzztest::MutationRun run;
  run.mutations = kMutations;
  run.max_input_bytes = 512;
  const fuzztest::MutationReport report = fuzztest::RunMutations(pool, run, [&](std::string_view input) {
    fuzz::HttpParseOutcome outcome;
    std::string failure = Check(input, &outcome);
    decoded += outcome.decoded;
    query += outcome.query;
    duration += outcome.duration;
    integer += outcome.integer;
    address += outcome.address;
    return failure;
  });
  for (const auto& failure : report.first_failures) {
    FAIL_CHECK("mutation seed " << failure.seed << " (index " << failure.index << "): " << failure.failure);
  }
  CHECK(report.failed == 0);
  MESSAGE("accepted of " << kMutations << ": decode " << decoded << ", query " << query << ", duration " << duration
                         << ", integer " << integer << ", address " << address);
  // Each parser's accepting path must be reached, or its properties go untested.
  CHECK(decoded > kMutations / 10);
  CHECK(query > kMutations / 10);
  CHECK(duration > kMutations / 200);
  CHECK(integer > kMutations / 200);
  CHECK(address > kMutations / 200);
}
