// Member and service records and the locator table (wire/member_record.h,
// wire/service_record.h): round trips, one canonical encoding, and the
// decoders' refusals (identifier, truncation, canonical order, the record
// rules, limits).
#include <flatbuffers/flatbuffers.h>

#include <doctest/doctest.h>

#include <string>

#include "wire/locator_generated.h"
#include "wire/member_record.h"
#include "wire/service_record.h"

using namespace gv;
using namespace gv::wire;

namespace {

MemberRecord SampleMember(std::uint64_t node = 7) {
  MemberRecord r;
  r.node = NodeId(node);
  r.name = "db-" + std::to_string(node);
  r.address = "10.1.2.3:7400";
  r.http = "127.0.0.1:7401";
  r.dns = "127.0.0.1:7402";
  r.tags = {{"rack", "r1"}, {"role", "db"}};
  r.incarnation = 1700000000123;
  r.epoch = 1700000000000;
  r.status = MemberStatus::kSuspect;
  r.reporter = NodeId(node + 1000);
  r.status_since_wall_ms = 1700000000500;
  return r;
}

ServiceRecord SampleService(std::string id = "web-1") {
  ServiceRecord r;
  r.owner = NodeId(7);
  r.owner_epoch = 1700000000000;
  r.id = std::move(id);
  r.name = "web";
  r.address = "fd00::1";
  r.port = 8080;
  r.tags = {"primary", "v2"};
  r.meta = {{"version", "2.1"}, {"zone", "b"}};
  r.ttl_ms = 10000;
  r.status = ServiceStatus::kCritical;
  r.version = 4;
  r.status_since_wall_ms = 1700000000900;
  return r;
}

// A member record built by hand, to write what the encoder never would.
std::string RawMember(const std::vector<std::pair<std::string, std::string>>& tags, std::uint8_t status = 0,
                      std::uint64_t reporter = 7) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::KeyValue>> kv;
  for (const auto& [k, v] : tags) kv.push_back(fb::CreateKeyValue(b, b.CreateString(k), b.CreateString(v)));
  auto root = fb::CreateMemberRecord(b, 7, b.CreateString("n7"), 0, 0, 0, b.CreateVector(kv), 10, 10,
                                     static_cast<fb::MemberStatus>(status), reporter, 0);
  b.Finish(root, kMemberRecordFileIdentifier);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

}  // namespace

TEST_CASE("member record: round trip, deterministic bytes") {
  const MemberRecord r = SampleMember();
  const std::string bytes = EncodeMemberRecord(r);
  auto decoded = DecodeMemberRecord(bytes);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == r);
  CHECK(EncodeMemberRecord(*decoded) == bytes);
  // At any alignment.
  std::string shifted = " " + bytes;
  auto again = DecodeMemberRecord(std::string_view(shifted).substr(1));
  REQUIRE(again.ok());
  CHECK(*again == r);
}

TEST_CASE("member record: refusals") {
  const std::string bytes = EncodeMemberRecord(SampleMember());
  CHECK(DecodeMemberRecord("").status().code() == StatusCode::kCorruption);
  CHECK(DecodeMemberRecord(bytes.substr(0, bytes.size() / 2)).status().code() == StatusCode::kCorruption);
  CHECK(DecodeMemberRecord(EncodeServiceRecord(SampleService())).status().code() == StatusCode::kCorruption);
  MemberRecordLimits small;
  small.max_bytes = 64;
  CHECK(DecodeMemberRecord(bytes, small).status().code() == StatusCode::kTooLarge);
  // Canonical tags only: sorted, unique.
  CHECK(DecodeMemberRecord(RawMember({{"a", "1"}, {"b", "2"}})).ok());
  CHECK(DecodeMemberRecord(RawMember({{"b", "1"}, {"a", "2"}})).status().code() == StatusCode::kInvalidArgument);
  CHECK(DecodeMemberRecord(RawMember({{"a", "1"}, {"a", "2"}})).status().code() == StatusCode::kInvalidArgument);
  // A status this version does not know; alive asserted by someone else.
  CHECK(DecodeMemberRecord(RawMember({}, 4)).status().code() == StatusCode::kInvalidArgument);
  CHECK(DecodeMemberRecord(RawMember({}, 0, 8)).status().code() == StatusCode::kInvalidArgument);
  // Tags over 4 KiB.
  MemberRecord big = SampleMember();
  big.tags["big"] = std::string(4096, 'x');
  CHECK(DecodeMemberRecord(EncodeMemberRecord(big)).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("service record: round trip and refusals") {
  const ServiceRecord r = SampleService();
  const std::string bytes = EncodeServiceRecord(r);
  auto decoded = DecodeServiceRecord(bytes);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == r);
  CHECK(EncodeServiceRecord(*decoded) == bytes);
  CHECK(DecodeServiceRecord(bytes.substr(0, bytes.size() - 3)).status().code() == StatusCode::kCorruption);
  CHECK(DecodeServiceRecord(EncodeMemberRecord(SampleMember())).status().code() == StatusCode::kCorruption);
  ServiceRecord bad = r;
  bad.name = "Web";
  CHECK(DecodeServiceRecord(EncodeServiceRecord(bad)).status().code() == StatusCode::kInvalidArgument);
  bad = r;
  bad.version = 0;
  CHECK(DecodeServiceRecord(EncodeServiceRecord(bad)).status().code() == StatusCode::kInvalidArgument);
  bad = r;
  for (int i = 0; i < 65; ++i) bad.tags.push_back("t");
  CHECK(DecodeServiceRecord(EncodeServiceRecord(bad)).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("locator table: round trip, split within max_bytes, every record verified") {
  LocatorTable table;
  table.reply_wanted = true;
  for (std::uint64_t n = 1; n <= 50; ++n) table.members.push_back(SampleMember(n));
  for (int i = 0; i < 80; ++i) table.services.push_back(SampleService("s" + std::to_string(i)));
  std::vector<std::string> one = EncodeLocatorTable(table);
  REQUIRE(one.size() == 1);
  auto decoded = DecodeLocatorTable(one[0]);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == table);

  LocatorTableLimits small;
  small.max_bytes = 4096;
  std::vector<std::string> parts = EncodeLocatorTable(table, small);
  CHECK(parts.size() > 5);
  LocatorTable joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    CHECK(parts[i].size() <= small.max_bytes);
    auto part = DecodeLocatorTable(parts[i], small);
    REQUIRE_MESSAGE(part.ok(), part.status().ToString());
    CHECK(part->reply_wanted == (i == 0));
    joined.members.insert(joined.members.end(), part->members.begin(), part->members.end());
    joined.services.insert(joined.services.end(), part->services.begin(), part->services.end());
  }
  joined.reply_wanted = true;
  CHECK(joined == table);

  // Over the member bound: refused as a whole.
  LocatorTableLimits few;
  few.max_members = 10;
  CHECK(DecodeLocatorTable(one[0], few).status().code() == StatusCode::kTooLarge);
  CHECK(DecodeLocatorTable(one[0].substr(0, one[0].size() - 10)).status().code() == StatusCode::kCorruption);
  // An empty table is valid.
  auto empty = DecodeLocatorTable(EncodeLocatorTable(LocatorTable{}).at(0));
  REQUIRE(empty.ok());
  CHECK(empty->members.empty());
}

TEST_CASE("locator table: one invalid record refuses the table") {
  flatbuffers::FlatBufferBuilder b;
  const std::string good = EncodeMemberRecord(SampleMember());
  const std::string bad = RawMember({}, 0, 8);  // alive asserted by another node
  std::vector<flatbuffers::Offset<fb::EncodedRecord>> members;
  for (const std::string* m : {&good, &bad}) {
    members.push_back(fb::CreateEncodedRecord(
        b, b.CreateVector(reinterpret_cast<const std::uint8_t*>(m->data()), m->size())));
  }
  auto root = fb::CreateLocatorTable(b, b.CreateVector(members), 0, false);
  b.Finish(root, kLocatorTableFileIdentifier);
  const std::string bytes(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  auto decoded = DecodeLocatorTable(bytes);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().message().find("members[1]") != std::string::npos);
}
