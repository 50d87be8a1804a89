// The locator record fuzz target's check, run under gcc + ASan/UBSan over the
// seed corpus (a member record, a service record, a locator table) and 20,000
// seeded mutations so `make test` exercises it (`make fuzz` explores further
// with libFuzzer).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fuzz/locator_record_decode_check.h"
#include "tests/fuzz/decoder_mutations.h"
#include "tests/fuzz/mutation_runner.h"
#include "wire/member_record.h"
#include "wire/service_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace gv;

namespace {

constexpr std::size_t kMutations = 20'000;

wire::MemberRecord RandomMember(Prng& prng) {
  wire::MemberRecord r;
  r.node = NodeId(1 + prng.Uniform(1000));
  r.name = "n" + std::to_string(prng.Uniform(100));
  r.address = "10.0.0." + std::to_string(prng.Uniform(256)) + ":7400";
  if (prng.Chance(0.5)) r.http = "127.0.0.1:7401";
  for (std::size_t i = prng.Index(4); i > 0; --i) r.tags["k" + std::to_string(prng.Uniform(10))] = "v";
  r.epoch = 1 + prng.Uniform(1000);
  r.incarnation = r.epoch + prng.Uniform(3);
  r.status = static_cast<wire::MemberStatus>(prng.Uniform(4));
  const bool self_asserted = r.status == wire::MemberStatus::kAlive || r.status == wire::MemberStatus::kLeft;
  r.reporter = self_asserted ? r.node : NodeId(r.node.value + 1);
  r.status_since_wall_ms = prng.NextU64() >> 20;
  return r;
}

wire::ServiceRecord RandomService(Prng& prng) {
  wire::ServiceRecord r;
  r.owner = NodeId(1 + prng.Uniform(1000));
  r.owner_epoch = 1 + prng.Uniform(1000);
  r.id = "svc-" + std::to_string(prng.Uniform(50));
  r.name = prng.Chance(0.5) ? "web" : "db";
  r.address = prng.Chance(0.5) ? "10.0.0.1" : "fd00::2";
  r.port = static_cast<std::uint16_t>(prng.Uniform(65536));
  for (std::size_t i = prng.Index(3); i > 0; --i) r.tags.push_back("t" + std::to_string(i));
  for (std::size_t i = prng.Index(3); i > 0; --i) r.meta["m" + std::to_string(i)] = "x";
  r.ttl_ms = prng.Chance(0.5) ? 10'000 : 0;
  r.status = static_cast<wire::ServiceStatus>(prng.Uniform(3));
  r.version = 1 + prng.Uniform(10);
  r.status_since_wall_ms = prng.NextU64() >> 20;
  return r;
}

std::string RandomEncoding(Prng& prng) {
  switch (prng.Uniform(3)) {
    case 0: return wire::EncodeMemberRecord(RandomMember(prng));
    case 1: return wire::EncodeServiceRecord(RandomService(prng));
    default: {
      wire::LocatorTable table;
      table.reply_wanted = prng.Chance(0.5);
      for (std::size_t i = prng.Index(4); i > 0; --i) table.members.push_back(RandomMember(prng));
      for (std::size_t i = prng.Index(4); i > 0; --i) table.services.push_back(RandomService(prng));
      return wire::EncodeLocatorTable(table).at(0);
    }
  }
}

}  // namespace

TEST_CASE("locator_record_decode_fuzz: the seed corpus holds each kind, as the encoders write them") {
  const std::vector<std::string> corpus = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  REQUIRE(corpus.size() >= 3);
  bool member = false, service = false, table = false;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    INFO("corpus file #" << i);
    if (auto m = wire::DecodeMemberRecord(corpus[i]); m.ok()) {
      member = true;
      CHECK(wire::EncodeMemberRecord(*m) == corpus[i]);
    } else if (auto s = wire::DecodeServiceRecord(corpus[i]); s.ok()) {
      service = true;
      CHECK(wire::EncodeServiceRecord(*s) == corpus[i]);
    } else {
      auto t = wire::DecodeLocatorTable(corpus[i]);
      REQUIRE_MESSAGE(t.ok(), t.status().ToString());
      table = !t->members.empty() && !t->services.empty();
      CHECK(wire::EncodeLocatorTable(*t).at(0) == corpus[i]);
    }
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(corpus[i].data());
    CHECK(gv::fuzz::CheckLocatorRecordDecode(bytes, corpus[i].size()) == "");
    CHECK(LLVMFuzzerTestOneInput(bytes, corpus[i].size()) == 0);
  }
  CHECK(member);
  CHECK(service);
  CHECK(table);
}

TEST_CASE("locator_record_decode_fuzz: seeded mutations of valid records hold the round-trip property") {
  std::vector<std::string> pool = fuzztest::LoadCorpus(GV_FUZZ_CORPUS_DIR);
  Prng seeder(2026);
  for (int i = 0; i < 48; ++i) pool.push_back(RandomEncoding(seeder));
  fuzztest::CheckDecoderMutations(pool, kMutations, gv::fuzz::LocatorRecordDecodes, gv::fuzz::CheckLocatorRecordDecode);
}
