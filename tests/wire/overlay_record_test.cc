// Overlay record codec ("GVO1"): records round-trip exactly, encoding is
// deterministic, and the decoder refuses every broken limit and rule with a
// Status naming the field — never crashing (ASan/UBSan watch the reads) and
// never turning a damaged buffer into a different record.
#include "wire/overlay_record.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "wire/delta_codec.h"
#include "wire/envelope.h"
#include "wire/grapevine_generated.h"

using namespace gv;
using namespace gv::wire;

namespace {

// Every field away from its default, ids at both ends of the range, so a
// field the codec forgot or truncated would show as a difference.
OverlayRecord Sample() {
  OverlayRecord record;
  record.node = NodeId(0xfedcba9876543210ULL);
  record.name = "node-a.eu-west";
  record.address = "192.168.1.2:7400";
  record.http = "127.0.0.1:7401";
  record.version = 1'763'725'000'123ULL;
  record.left = true;
  record.active = {NodeId(3), NodeId(0xffffffffffffffffULL), NodeId(1)};
  record.passive = {NodeId(10), NodeId(11), NodeId(12), NodeId(13), NodeId(0x8000000000000000ULL)};
  record.eager = {NodeId(1), NodeId(3)};
  record.lazy = {NodeId(0xffffffffffffffffULL)};
  record.applied = {{NodeId(1), 5}, {NodeId(3), 1}, {NodeId(0xffffffffffffffffULL), 0xffffffffffffffffULL}};
  record.key_count = 123'456'789;
  return record;
}

// Only the node id: every string, list and number at its empty default.
OverlayRecord Minimal() {
  OverlayRecord record;
  record.node = NodeId(1);
  return record;
}

void ExpectRefused(const Result<OverlayRecord>& result, StatusCode code, const std::string& what) {
  REQUIRE_FALSE(result.ok());
  INFO(result.status().ToString());
  CHECK(result.status().code() == code);
  CHECK(result.status().message().find(what) != std::string::npos);
}

// A record built with the generated builder, bypassing the encoder's guarantees.
std::string HandmadeApplied(const std::vector<fb::VvEntry>& entries, const char* identifier = "GVO1") {
  flatbuffers::FlatBufferBuilder builder;
  auto applied = builder.CreateVectorOfStructs(entries);
  auto root = fb::CreateOverlayRecord(builder, /*node=*/9, 0, 0, 0, /*version=*/4, false, 0, 0, 0, 0, applied, 2);
  builder.Finish(root, identifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

// A record laid out byte by byte with node = 1 and one vector field
// (`field_index` in the schema's field order) of one element of
// `element_bytes` bytes (ulong 7, or VvEntry {7, 1}). The builder always
// aligns vectors; here the elements start 4 bytes off 8-byte alignment when
// `misaligned`, with the length word still 4-aligned, which the FlatBuffers
// verifier accepts.
std::string HandLaidVector(int field_index, std::size_t element_bytes, bool misaligned) {
  auto align_up = [](std::size_t at, std::size_t to) { return (at + to - 1) / to * to; };
  const std::size_t vtable = 8;
  const std::size_t vtable_bytes = 4 + 2 * static_cast<std::size_t>(field_index + 1);
  std::size_t table = align_up(vtable + vtable_bytes, 4);
  if ((table + 12) % 8 != 0) table += 4;  // the node field (table + 12) is 8-aligned
  const std::size_t table_bytes = 20;
  std::size_t length_word = align_up(table + table_bytes, 8);
  if (!misaligned) length_word += 4;
  const std::size_t total = length_word + 4 + element_bytes;
  std::vector<std::uint64_t> storage(total / 8 + 1, 0);  // 8-aligned, zeroed
  auto* bytes = reinterpret_cast<std::uint8_t*>(storage.data());
  auto put16 = [&](std::size_t at, std::uint16_t v) { std::memcpy(bytes + at, &v, 2); };
  auto put32 = [&](std::size_t at, std::uint32_t v) { std::memcpy(bytes + at, &v, 4); };
  auto put64 = [&](std::size_t at, std::uint64_t v) { std::memcpy(bytes + at, &v, 8); };
  put32(0, static_cast<std::uint32_t>(table));  // root offset
  std::memcpy(bytes + 4, "GVO1", 4);
  put16(vtable, static_cast<std::uint16_t>(vtable_bytes));
  put16(vtable + 2, static_cast<std::uint16_t>(table_bytes));
  put16(vtable + 4, 12);                                                  // node at table + 12
  put16(vtable + 4 + 2 * static_cast<std::size_t>(field_index), 4);       // the vector's offset at table + 4
  put32(table, static_cast<std::uint32_t>(table - vtable));               // soffset to the vtable
  put32(table + 4, static_cast<std::uint32_t>(length_word - (table + 4)));
  put64(table + 12, 1);
  put32(length_word, 1);
  put64(length_word + 4, 7);
  if (element_bytes == 16) put64(length_word + 12, 1);
  return std::string(reinterpret_cast<const char*>(bytes), total);
}

}  // namespace

TEST_CASE("a record with every field set round-trips exactly") {
  const OverlayRecord record = Sample();
  const std::string bytes = EncodeOverlayRecord(record);
  CHECK(std::memcmp(bytes.data() + 4, kOverlayRecordFileIdentifier, 4) == 0);
  auto decoded = DecodeOverlayRecord(bytes);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == record);
  // View order is kept as sent (views are not sorted by the codec).
  CHECK(decoded->active == std::vector<NodeId>{NodeId(3), NodeId(0xffffffffffffffffULL), NodeId(1)});
}

TEST_CASE("empty strings, lists and zero numbers round-trip") {
  for (bool left : {false, true}) {
    OverlayRecord record = Minimal();
    record.left = left;
    auto decoded = DecodeOverlayRecord(EncodeOverlayRecord(record));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == record);
  }
  // The builder does not 8-align an empty vector's (absent) elements: whatever
  // padding the string lengths cause, empty views and an empty applied vector
  // must decode (a fresh node that has applied nothing publishes one).
  for (std::size_t name_bytes = 0; name_bytes < 16; ++name_bytes) {
    INFO("name of " << name_bytes << " bytes");
    OverlayRecord record = Minimal();
    record.name = std::string(name_bytes, 'n');
    auto decoded = DecodeOverlayRecord(EncodeOverlayRecord(record));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == record);
    record.active = {NodeId(2)};  // one non-empty list among empty ones
    decoded = DecodeOverlayRecord(EncodeOverlayRecord(record));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == record);
  }
  // A record with no optional field present at all (not even empty ones).
  flatbuffers::FlatBufferBuilder builder;
  builder.Finish(fb::CreateOverlayRecord(builder, 5), kOverlayRecordFileIdentifier);
  auto bare = DecodeOverlayRecord(
      std::string_view(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize()));
  REQUIRE_MESSAGE(bare.ok(), bare.status().ToString());
  OverlayRecord expected;
  expected.node = NodeId(5);
  CHECK(*bare == expected);
}

TEST_CASE("encoding is deterministic") {
  const std::string first = EncodeOverlayRecord(Sample());
  const OverlayRecord copy = Sample();
  CHECK(EncodeOverlayRecord(copy) == first);
  auto decoded = DecodeOverlayRecord(first);
  REQUIRE(decoded.ok());
  CHECK(EncodeOverlayRecord(*decoded) == first);
  // Each field reaches the bytes: changing any one of them changes the encoding.
  std::vector<OverlayRecord> variants(12, Sample());
  variants[0].node = NodeId(2);
  variants[1].name = "node-b";
  variants[2].address = "10.0.0.1:7400";
  variants[3].http = "127.0.0.1:8500";
  variants[4].version += 1;
  variants[5].left = false;
  variants[6].active.pop_back();
  variants[7].passive[0] = NodeId(99);
  variants[8].eager.clear();
  variants[9].lazy.push_back(NodeId(4));
  variants[10].applied[NodeId(1)] = 6;
  variants[11].key_count = 0;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    INFO("variant " << i);
    CHECK(EncodeOverlayRecord(variants[i]) != first);
    auto round = DecodeOverlayRecord(EncodeOverlayRecord(variants[i]));
    REQUIRE_MESSAGE(round.ok(), round.status().ToString());
    CHECK(*round == variants[i]);
  }
}

TEST_CASE("every limit is accepted at its bound and refused one past it, naming the field") {
  OverlayRecordLimits limits;
  limits.max_string_bytes = 8;
  limits.max_view_entries = 3;
  limits.max_vector_entries = 2;
  const std::string s8(8, 'x'), s9(9, 'x');
  const std::vector<NodeId> n3{NodeId(1), NodeId(2), NodeId(3)};
  const std::vector<NodeId> n4{NodeId(1), NodeId(2), NodeId(3), NodeId(4)};

  auto accepted = [&](const OverlayRecord& record) {
    auto decoded = DecodeOverlayRecord(EncodeOverlayRecord(record), limits);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == record);
  };
  auto refused = [&](const OverlayRecord& record, const std::string& field, const std::string& limit) {
    INFO(field);
    auto decoded = DecodeOverlayRecord(EncodeOverlayRecord(record), limits);
    ExpectRefused(decoded, StatusCode::kTooLarge, field);
    CHECK(decoded.status().message().find(limit) != std::string::npos);
  };

  SUBCASE("max_string_bytes") {
    OverlayRecord at_bound = Minimal();
    at_bound.name = at_bound.address = at_bound.http = s8;
    accepted(at_bound);
    OverlayRecord name = Minimal(), address = Minimal(), http = Minimal();
    name.name = s9;
    address.address = s9;
    http.http = s9;
    refused(name, "name is 9 bytes", "max_string_bytes = 8");
    refused(address, "address is 9 bytes", "max_string_bytes = 8");
    refused(http, "http is 9 bytes", "max_string_bytes = 8");
  }
  SUBCASE("max_view_entries, per view") {
    OverlayRecord at_bound = Minimal();
    at_bound.active = at_bound.passive = at_bound.eager = at_bound.lazy = n3;
    accepted(at_bound);
    std::vector<NodeId> OverlayRecord::*views[] = {&OverlayRecord::active, &OverlayRecord::passive,
                                                    &OverlayRecord::eager, &OverlayRecord::lazy};
    const char* messages[] = {"active is 4 entries", "passive is 4 entries", "eager is 4 entries", "lazy is 4 entries"};
    for (int i = 0; i < 4; ++i) {
      OverlayRecord over = at_bound;
      over.*views[i] = n4;
      refused(over, messages[i], "max_view_entries = 3");
    }
  }
  SUBCASE("max_vector_entries") {
    OverlayRecord at_bound = Minimal();
    at_bound.applied = {{NodeId(1), 1}, {NodeId(2), 2}};
    accepted(at_bound);
    OverlayRecord over = at_bound;
    over.applied[NodeId(3)] = 3;
    refused(over, "applied is 3 entries", "max_vector_entries = 2");
  }
  SUBCASE("max_bytes") {
    const std::string bytes = EncodeOverlayRecord(Sample());
    limits = OverlayRecordLimits{};
    limits.max_bytes = bytes.size();
    CHECK(DecodeOverlayRecord(bytes, limits).ok());
    limits.max_bytes = bytes.size() - 1;
    ExpectRefused(DecodeOverlayRecord(bytes, limits), StatusCode::kTooLarge, "max_bytes");
  }
}

TEST_CASE("the default limits accept a record of full views and long strings") {
  const OverlayRecordLimits defaults;
  OverlayRecord record = Minimal();
  record.name = std::string(defaults.max_string_bytes, 'n');
  record.address = std::string(defaults.max_string_bytes, 'a');
  record.http = std::string(defaults.max_string_bytes, 'h');
  for (std::uint64_t i = 1; i <= defaults.max_view_entries; ++i) {
    record.active.push_back(NodeId(i));
    record.passive.push_back(NodeId(i + 1));
    record.eager.push_back(NodeId(i + 2));
    record.lazy.push_back(NodeId(i + 3));
  }
  // A 10,000-node cluster where every node has written.
  for (std::uint64_t i = 1; i <= 10'000; ++i) record.applied[NodeId(i * 7)] = i;
  auto decoded = DecodeOverlayRecord(EncodeOverlayRecord(record));
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == record);
}

TEST_CASE("node id 0 is refused for the record and in every view, naming the field") {
  OverlayRecord zero_node = Sample();
  zero_node.node = NodeId(0);
  ExpectRefused(DecodeOverlayRecord(EncodeOverlayRecord(zero_node)), StatusCode::kInvalidArgument,
                "node is node id 0");

  OverlayRecord active = Sample(), passive = Sample(), eager = Sample(), lazy = Sample();
  active.active[1] = NodeId(0);
  passive.passive.back() = NodeId(0);
  eager.eager[0] = NodeId(0);
  lazy.lazy = {NodeId(2), NodeId(0)};
  ExpectRefused(DecodeOverlayRecord(EncodeOverlayRecord(active)), StatusCode::kInvalidArgument,
                "active[1] is node id 0");
  ExpectRefused(DecodeOverlayRecord(EncodeOverlayRecord(passive)), StatusCode::kInvalidArgument,
                "passive[4] is node id 0");
  ExpectRefused(DecodeOverlayRecord(EncodeOverlayRecord(eager)), StatusCode::kInvalidArgument, "eager[0] is node id 0");
  ExpectRefused(DecodeOverlayRecord(EncodeOverlayRecord(lazy)), StatusCode::kInvalidArgument, "lazy[1] is node id 0");

  OverlayRecord applied = Sample();
  applied.applied[NodeId(0)] = 3;  // sorts first
  ExpectRefused(DecodeOverlayRecord(EncodeOverlayRecord(applied)), StatusCode::kInvalidArgument,
                "applied[0] is node id 0");
}

TEST_CASE("the applied vector must be strictly sorted by node with counters >= 1") {
  auto ok = DecodeOverlayRecord(HandmadeApplied({{1, 1}, {5, 9}}));
  REQUIRE_MESSAGE(ok.ok(), ok.status().ToString());
  CHECK(ok->applied == statestore::VersionVector{{NodeId(1), 1}, {NodeId(5), 9}});
  CHECK(ok->node == NodeId(9));
  CHECK(ok->version == 4);
  CHECK(ok->key_count == 2);

  ExpectRefused(DecodeOverlayRecord(HandmadeApplied({{5, 1}, {1, 1}})), StatusCode::kInvalidArgument,
                "applied is not strictly sorted by node");
  ExpectRefused(DecodeOverlayRecord(HandmadeApplied({{5, 1}, {5, 2}})), StatusCode::kInvalidArgument,
                "applied is not strictly sorted by node");
  ExpectRefused(DecodeOverlayRecord(HandmadeApplied({{1, 1}, {5, 0}})), StatusCode::kInvalidArgument,
                "applied[1] has counter 0");
  ExpectRefused(DecodeOverlayRecord(HandmadeApplied({{0, 1}, {5, 1}})), StatusCode::kInvalidArgument,
                "applied[0] is node id 0");
}

TEST_CASE("a wrong file identifier is refused") {
  statestore::Delta delta;
  delta.origin = NodeId(1);
  delta.seq = 1;
  statestore::Op op;
  op.key = "k";
  op.value = "v";
  op.vv = {{NodeId(1), 1}};
  delta.ops.push_back(op);
  ExpectRefused(DecodeOverlayRecord(EncodeDelta(delta)), StatusCode::kCorruption, "file identifier is not GVO1");

  const std::string envelope = EncodeEnvelope(Envelope{Refuse{"not a record"}, {}});
  ExpectRefused(DecodeOverlayRecord(envelope), StatusCode::kCorruption, "file identifier is not GVO1");

  // A valid record tagged with another identifier.
  ExpectRefused(DecodeOverlayRecord(HandmadeApplied({{1, 1}}, "GVO2")), StatusCode::kCorruption,
                "file identifier is not GVO1");
  // and a record is neither a delta nor an envelope
  const std::string record = EncodeOverlayRecord(Sample());
  CHECK_FALSE(DecodeDelta(record).ok());
  CHECK_FALSE(DecodeEnvelope(record).ok());
}

TEST_CASE("too short and out-of-bounds buffers are refused") {
  ExpectRefused(DecodeOverlayRecord(""), StatusCode::kCorruption, "too short");
  ExpectRefused(DecodeOverlayRecord("\x08\0\0\0GVO"), StatusCode::kCorruption, "too short");
  std::string bytes = EncodeOverlayRecord(Sample());
  bytes[0] = '\xff';
  bytes[1] = '\xff';
  ExpectRefused(DecodeOverlayRecord(bytes), StatusCode::kCorruption, "verification failed");
}

TEST_CASE("truncation at every byte never decodes into a different record") {
  std::size_t refused = 0;
  std::size_t checked = 0;
  for (const OverlayRecord& record : {Sample(), Minimal()}) {
    const std::string bytes = EncodeOverlayRecord(record);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      // A fresh heap copy of exactly n bytes, so ASan sees any read past the end.
      std::vector<char> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      auto decoded = DecodeOverlayRecord(std::string_view(prefix.data(), prefix.size()));
      ++checked;
      if (!decoded.ok()) {
        ++refused;
        continue;
      }
      CHECK(*decoded == record);
    }
  }
  CHECK(checked > 200);
  // The root offset points near the end: almost every prefix must be refused.
  CHECK(refused > checked * 9 / 10);
}

TEST_CASE("misaligned input is accepted") {
  for (const OverlayRecord& record : {Sample(), Minimal()}) {
    const std::string bytes = EncodeOverlayRecord(record);
    std::vector<std::uint64_t> storage(bytes.size() / 8 + 2);
    for (std::size_t offset = 0; offset < 8; ++offset) {
      INFO("offset " << offset);
      char* at = reinterpret_cast<char*>(storage.data()) + offset;
      std::memcpy(at, bytes.data(), bytes.size());
      auto decoded = DecodeOverlayRecord(std::string_view(at, bytes.size()));
      REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
      CHECK(*decoded == record);
    }
  }
}

TEST_CASE("8-byte vector elements off 8-byte alignment are refused, not read in place") {
  // The verifier checks only the 4-byte length word, so this takes the decoder's own check.
  const struct {
    int field_index;
    std::size_t element_bytes;
    const char* field;
  } cases[] = {{6, 8, "active"}, {7, 8, "passive"}, {8, 8, "eager"}, {9, 8, "lazy"}, {10, 16, "applied"}};
  for (const auto& c : cases) {
    INFO(c.field);
    // The same layout with the elements aligned decodes: the hand layout is valid.
    auto aligned = DecodeOverlayRecord(HandLaidVector(c.field_index, c.element_bytes, false));
    REQUIRE_MESSAGE(aligned.ok(), aligned.status().ToString());
    CHECK(aligned->node == NodeId(1));
    const std::vector<NodeId> seven{NodeId(7)};
    const std::vector<NodeId>* views[] = {&aligned->active, &aligned->passive, &aligned->eager, &aligned->lazy};
    if (c.element_bytes == 8) {
      CHECK(*views[c.field_index - 6] == seven);
    } else {
      CHECK(aligned->applied == statestore::VersionVector{{NodeId(7), 1}});
    }
    ExpectRefused(DecodeOverlayRecord(HandLaidVector(c.field_index, c.element_bytes, true)), StatusCode::kCorruption,
                  std::string(c.field) + " is misaligned");
  }
}

TEST_CASE("HasFileIdentifier reads the identifier at bytes 4..8") {
  const std::string record = EncodeOverlayRecord(Sample());
  CHECK(HasFileIdentifier(record, kOverlayRecordFileIdentifier));
  CHECK_FALSE(HasFileIdentifier(record, kDeltaFileIdentifier));
  CHECK_FALSE(HasFileIdentifier(record, kEnvelopeFileIdentifier));
  statestore::Delta delta;
  delta.origin = NodeId(1);
  delta.seq = 1;
  const std::string encoded_delta = EncodeDelta(delta);
  CHECK(HasFileIdentifier(encoded_delta, kDeltaFileIdentifier));
  CHECK_FALSE(HasFileIdentifier(encoded_delta, kOverlayRecordFileIdentifier));
  // Shorter than root offset + identifier: never a match, and never read past the end.
  for (std::size_t n = 0; n < 8; ++n) {
    std::vector<char> prefix(record.begin(), record.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_FALSE(HasFileIdentifier(std::string_view(prefix.data(), prefix.size()), kOverlayRecordFileIdentifier));
  }
  CHECK(HasFileIdentifier(std::string_view(record.data(), 8), kOverlayRecordFileIdentifier));
}
