// The DNS request fuzz target's check, run under gcc + ASan/UBSan over the
// seed corpus (real dig queries) and seeded mutations so `make test`
// exercises it (`make fuzz` explores further with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/dns_request_check.h"
#include "tests/fuzz/mutation_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;
using daemon::dns::Outcome;

namespace {

constexpr std::size_t kMutations = 100'000;
constexpr std::size_t kGenerated = 20'000;

std::string Check(std::string_view input, fuzz::DnsRequestOutcome* outcome = nullptr) {
  return fuzz::CheckDnsRequest(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), outcome);
}

// A query for one of the names the fuzz lookup knows (or nearly), with
// random type, flags, case and an optional OPT record: mutations rarely
// build a well-formed name from scratch.
std::string RandomQuery(Prng& prng) {
  static constexpr const char* kNames[] = {"web.service.grapevine", "big.service.grapevine", "bad.service.grapevine",
                                           "_web._tcp.service.grapevine", "n1.node.grapevine", "n6.node.grapevine",
                                           "a.b.kv.grapevine", "big.kv.grapevine", "huge.kv.grapevine",
                                           "empty.kv.grapevine", "grapevine", "kv.grapevine", "x.y.z", "nosuch.service.grapevine"};
  static constexpr std::uint16_t kTypes[] = {1, 28, 33, 16, 255, 6, 2, 252, 41, 0, 65};
  std::string wire;
  const auto u16 = [&wire](std::uint64_t v) {
    wire += static_cast<char>((v >> 8) & 0xFF);
    wire += static_cast<char>(v & 0xFF);
  };
  const bool opt = prng.Chance(0.5);
  u16(prng.Uniform(65536));
  u16(prng.Chance(0.9) ? 0x0100 : prng.Uniform(65536));
  u16(1);
  u16(0);
  u16(0);
  u16(opt ? 1 : 0);
  std::string name = kNames[prng.Index(std::size(kNames))];
  for (char& c : name) {
    if (prng.Chance(0.2) && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    wire += static_cast<char>(dot - start);
    wire += name.substr(start, dot - start);
    start = dot + 1;
  }
  wire += '\0';
  u16(kTypes[prng.Index(std::size(kTypes))]);
  u16(1);
  if (opt) {
    wire += '\0';
    u16(41);
    u16(prng.Chance(0.5) ? 512 + prng.Uniform(4000) : prng.Uniform(65536));
    u16(prng.Chance(0.9) ? 0 : prng.Uniform(4));  // extended rcode, version
    u16(prng.Chance(0.5) ? 0x8000 : 0);          // DO
    u16(0);
  }
  return wire;
}

}  // namespace

TEST_CASE("dns_request_fuzz: outcomes of known datagrams") {
  fuzz::DnsRequestOutcome outcome;
  CHECK(Check("", &outcome) == "");
  CHECK(outcome.outcome == Outcome::kDropped);
  CHECK(Check(std::string("\x12\x34\x01\x00\x00\x01", 6), &outcome) == "");
  CHECK(outcome.outcome == Outcome::kDropped);
  // web.service.grapevine. A, no OPT.
  const std::string web = std::string("\xAB\xCD\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                          std::string("\x03web\x07service\x09grapevine\x00\x00\x01\x00\x01", 27);
  CHECK(Check(web, &outcome) == "");
  CHECK(outcome.outcome == Outcome::kAnswered);
  CHECK(outcome.answer_records == 2);
  // big.service.grapevine. A without OPT: 400 addresses do not fit 512 bytes.
  std::string big = web;
  big.replace(13, 3, "big");
  CHECK(Check(big, &outcome) == "");
  CHECK(outcome.outcome == Outcome::kTruncated);
  CHECK(outcome.answer_bytes <= 512);
  // The same as a response (QR=1): dropped.
  std::string response = web;
  response[2] = static_cast<char>(0x81);
  CHECK(Check(response, &outcome) == "");
  CHECK(outcome.outcome == Outcome::kDropped);
}

TEST_CASE("dns_request_fuzz: the seed corpus passes the entry point") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 8);
  std::size_t answered = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    fuzz::DnsRequestOutcome outcome;
    CHECK(Check(corpus[i], &outcome) == "");
    answered += outcome.outcome != Outcome::kDropped;
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(corpus[i].data()), corpus[i].size()) == 0);
  }
  CHECK(answered == corpus.size());  // every seed is a real query
}

TEST_CASE("dns_request_fuzz: seeded mutations and generated queries hold the answer properties") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(6053);
  for (int i = 0; i < 64; ++i) pool.push_back(RandomQuery(seeder));
  std::map<Outcome, std::size_t> outcomes;
  fuzztest::MutationRun run;
  run.mutations = kMutations;
  run.max_edits = 2;  // most edits already break a datagram's structure
  run.max_input_bytes = 5000;
  const fuzztest::MutationReport report = fuzztest::RunMutations(pool, run, [&](std::string_view input) {
    fuzz::DnsRequestOutcome outcome;
    std::string failure = Check(input, &outcome);
    ++outcomes[outcome.outcome];
    return failure;
  });
  for (const auto& failure : report.first_failures) {
    FAIL_CHECK("mutation seed " << failure.seed << " (index " << failure.index << "): " << failure.failure);
  }
  CHECK(report.failed == 0);
  // Well-formed queries over the names, types and EDNS sizes the lookup
  // knows reach the answering paths the mutations rarely keep intact.
  Prng generator(6054);
  for (std::size_t i = 0; i < kGenerated; ++i) {
    const std::string query = RandomQuery(generator);
    fuzz::DnsRequestOutcome outcome;
    const std::string failure = Check(query, &outcome);
    ++outcomes[outcome.outcome];
    if (!failure.empty()) FAIL_CHECK("generated query " << i << ": " << failure);
  }
  std::string summary;
  for (const auto& [outcome, count] : outcomes) summary += std::string(daemon::dns::OutcomeName(outcome)) + " " + std::to_string(count) + ", ";
  MESSAGE("outcomes of " << kMutations << " mutations and " << kGenerated << " generated queries: " << summary);
  // Each path must be reached, or its properties go untested.
  const std::size_t total = kMutations + kGenerated;
  CHECK(outcomes[Outcome::kDropped] > total / 10);
  CHECK(outcomes[Outcome::kAnswered] > total / 50);
  CHECK(outcomes[Outcome::kNxDomain] > total / 100);
  CHECK(outcomes[Outcome::kTruncated] > total / 400);
  CHECK(outcomes[Outcome::kNoData] > total / 200);
  CHECK(outcomes[Outcome::kNotImplemented] > total / 1000);
  CHECK(outcomes[Outcome::kRefused] > total / 1000);
}
