// Delta codec: round trips, determinism, and a decoder that answers every bad
// buffer (truncated, random, bit-flipped, oversize, semantically invalid) with
// a Status and never crashes (ASan/UBSan watch the reads).
#include "wire/delta_codec.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/prng.h"
#include "wire/grapevine_generated.h"

using namespace gv;
using namespace gv::statestore;
using gv::wire::DecodeDelta;
using gv::wire::EncodeDelta;

namespace {

std::string RandomBytes(Prng& prng, std::size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(prng.Uniform(256));
  return out;
}

// A valid delta with random shape: several ops, binary values, wide vectors.
Delta RandomDelta(Prng& prng) {
  Delta delta;
  delta.origin = NodeId(1 + prng.Uniform(1000));
  delta.seq = 1 + prng.Uniform(1'000'000);
  delta.hlc = Hlc{prng.Uniform(Hlc::kMaxWallMs + 1), static_cast<std::uint16_t>(prng.Uniform(65536))};
  const std::size_t ops = 1 + prng.Index(6);
  for (std::size_t i = 0; i < ops; ++i) {
    Op op;
    op.kind = prng.Chance(0.3) ? OpKind::kDelete : OpKind::kPut;
    op.key = "k" + std::to_string(i) + "/" + RandomBytes(prng, prng.Index(20));
    for (char& c : op.key) {
      if (c == '\0') c = 'z';
    }
    if (op.kind == OpKind::kPut) op.value = RandomBytes(prng, prng.Index(200));
    op.flags = prng.Chance(0.5) ? 0 : prng.NextU64();
    const std::size_t entries = prng.Index(8);
    for (std::size_t e = 0; e < entries; ++e) op.vv[NodeId(1 + prng.Uniform(2000))] = 1 + prng.Uniform(1000);
    op.vv[delta.origin] = delta.seq;
    delta.ops.push_back(std::move(op));
  }
  REQUIRE(ValidateDelta(delta).ok());
  return delta;
}

Delta SimpleDelta() {
  Delta delta;
  delta.origin = NodeId(7);
  delta.seq = 3;
  delta.hlc = Hlc{1'700'000'000'000, 4};
  Op put;
  put.key = "service/web";
  put.value = std::string("10.0.0.1\0:80", 12);
  put.flags = 5;
  put.vv = {{NodeId(2), 9}, {NodeId(7), 3}};
  Op del;
  del.kind = OpKind::kDelete;
  del.key = "service/old";
  del.vv = {{NodeId(7), 3}};
  delta.ops = {put, del};
  return delta;
}

// Builds a FlatBuffer by hand, bypassing the encoder's guarantees.
template <typename Fill>
std::string Handmade(Fill fill) {
  flatbuffers::FlatBufferBuilder builder;
  auto root = fill(builder);
  builder.Finish(root, wire::kDeltaFileIdentifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

flatbuffers::Offset<wire::fb::Op> HandOp(flatbuffers::FlatBufferBuilder& b, const std::string& key,
                                         std::vector<wire::fb::VvEntry> vv,
                                         wire::fb::OpKind kind = wire::fb::OpKind_Put, std::size_t value_bytes = 0) {
  auto k = b.CreateString(key);
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> value;
  if (value_bytes > 0) value = b.CreateVector(std::vector<std::uint8_t>(value_bytes, 'v'));
  auto v = b.CreateVectorOfStructs(vv);
  return wire::fb::CreateOp(b, kind, k, value, 0, v);
}

}  // namespace

TEST_CASE("codec: round trip of a hand-written delta, identifier in place") {
  const Delta delta = SimpleDelta();
  const std::string bytes = EncodeDelta(delta);
  CHECK(bytes.substr(4, 4) == "GVD1");
  auto decoded = DecodeDelta(bytes);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == delta);
  CHECK(decoded->ops[0].value.size() == 12);  // embedded NUL kept
  CHECK(EncodeDelta(*decoded) == bytes);       // deterministic
}

TEST_CASE("codec: random deltas round-trip, from any alignment") {
  for (std::uint64_t seed = 1; seed <= 500; ++seed) {
    INFO("seed=" << seed);
    Prng prng(seed);
    const Delta delta = RandomDelta(prng);
    const std::string bytes = EncodeDelta(delta);
    CHECK(bytes.size() <= EncodedSizeBound(delta));
    // Misaligned copies (a record inside a WAL segment, a frame in a socket buffer).
    const std::size_t shift = prng.Index(8);
    std::string shifted(shift, 'x');
    shifted += bytes;
    auto decoded = DecodeDelta(std::string_view(shifted).substr(shift));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == delta);
    CHECK(EncodeDelta(*decoded) == bytes);
  }
}

TEST_CASE("codec: a maximal delta stays under the encoded size cap") {
  Delta delta;
  delta.origin = NodeId(1);
  delta.seq = 1;
  Op op;
  op.key = std::string(kMaxKeyBytes, 'k');
  op.value = std::string(kMaxValueBytesCap, 'v');
  for (std::uint64_t n = 1; n <= 1000; ++n) op.vv[NodeId(n)] = n;
  op.vv[NodeId(1)] = 1;
  delta.ops.push_back(op);
  REQUIRE(ValidateDelta(delta).ok());
  const std::string bytes = EncodeDelta(delta);
  CHECK(bytes.size() <= EncodedSizeBound(delta));
  auto decoded = DecodeDelta(bytes);
  REQUIRE(decoded.ok());
  CHECK(*decoded == delta);
}

TEST_CASE("codec: truncations are refused, except of trailing alignment padding") {
  // FlatBuffers builds back to front: the buffer can end in up to 7 bytes of
  // alignment padding (the first object written is the last in memory). A cut
  // inside that padding leaves a complete buffer that must decode to the same
  // delta; any deeper cut must be refused. (WAL records and frames carry their
  // own length, so the codec never has to guess where a buffer ends.)
  Prng prng(11);
  std::size_t refused = 0;
  for (int round = 0; round < 20; ++round) {
    const Delta delta = RandomDelta(prng);
    const std::string bytes = EncodeDelta(delta);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      INFO("round=" << round << " cut=" << cut << " of " << bytes.size());
      auto decoded = DecodeDelta(std::string_view(bytes.data(), cut));
      if (cut + 8 <= bytes.size()) {
        CHECK_FALSE(decoded.ok());
      } else if (decoded.ok()) {
        CHECK(*decoded == delta);
        CHECK(bytes.substr(cut).find_first_not_of('\0') == std::string::npos);  // only padding was cut
      }
      refused += decoded.ok() ? 0 : 1;
    }
  }
  CHECK(refused > 0);
}

TEST_CASE("codec: random bytes and bit flips never crash; any accepted buffer is valid") {
  std::size_t accepted_flips = 0, refused_flips = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    INFO("seed=" << seed);
    Prng prng(seed);
    // Pure noise, sometimes with the right identifier.
    std::string noise = RandomBytes(prng, prng.Index(512));
    if (noise.size() >= 8 && prng.Chance(0.5)) std::memcpy(&noise[4], "GVD1", 4);
    auto from_noise = DecodeDelta(noise);
    if (from_noise.ok()) CHECK(ValidateDelta(*from_noise).ok());
    // Bit flips in a valid encoding.
    const Delta original = RandomDelta(prng);
    const std::string bytes = EncodeDelta(original);
    for (int flip = 0; flip < 20; ++flip) {
      std::string damaged = bytes;
      const std::size_t bits = 1 + prng.Index(3);
      for (std::size_t b = 0; b < bits; ++b) {
        damaged[prng.Index(damaged.size())] ^= static_cast<char>(1u << prng.Index(8));
      }
      auto decoded = DecodeDelta(damaged);
      if (decoded.ok()) {
        // Flips in payload bytes (values, flags, hlc) decode to another valid delta.
        ++accepted_flips;
        CHECK(ValidateDelta(*decoded).ok());
        CHECK(*DecodeDelta(EncodeDelta(*decoded)) == *decoded);
      } else {
        ++refused_flips;
        CHECK_FALSE(decoded.status().message().empty());
      }
    }
  }
  CHECK(accepted_flips > 0);
  CHECK(refused_flips > 0);
}

TEST_CASE("codec: oversize and malformed buffers name the problem") {
  auto too_big = DecodeDelta(std::string(kMaxEncodedDeltaBytes + 1, '\0'));
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.status().code() == StatusCode::kTooLarge);
  CHECK(DecodeDelta("").status().IsCorruption());
  CHECK(DecodeDelta(std::string(8, '\0')).status().IsCorruption());

  std::string wrong_id = EncodeDelta(SimpleDelta());
  wrong_id[7] = '2';
  auto refused = DecodeDelta(wrong_id);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("identifier") != std::string::npos);
}

TEST_CASE("codec: well-formed buffers that break the rules are refused") {
  using wire::fb::VvEntry;
  struct Case {
    const char* name;
    std::string bytes;
    StatusCode code;
  };
  std::vector<Case> cases;
  cases.push_back({"zero origin", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(0, 1)});
                     return wire::fb::CreateDelta(b, 0, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"seq zero", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 0, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"no ops", Handmade([](auto& b) {
                     return wire::fb::CreateDelta(b, 1, 1, 0,
                                                  b.CreateVector(std::vector<flatbuffers::Offset<wire::fb::Op>>{}));
                   }),
                   StatusCode::kInvalidArgument});
  // Tables assembled field by field: the generated builders assert on missing required fields.
  cases.push_back({"ops missing (required field)", Handmade([](auto& b) {
                     const auto start = b.StartTable();
                     b.template AddElement<std::uint64_t>(wire::fb::Delta::VT_ORIGIN, 1, 0);
                     b.template AddElement<std::uint64_t>(wire::fb::Delta::VT_SEQ, 1, 0);
                     return flatbuffers::Offset<wire::fb::Delta>(b.EndTable(start));
                   }),
                   StatusCode::kCorruption});
  cases.push_back({"op key missing (required field)", Handmade([](auto& b) {
                     auto vv = b.CreateVectorOfStructs(std::vector<VvEntry>{VvEntry(1, 1)});
                     const auto start = b.StartTable();
                     b.AddOffset(wire::fb::Op::VT_VV, vv);
                     auto op = flatbuffers::Offset<wire::fb::Op>(b.EndTable(start));
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kCorruption});
  cases.push_back({"empty key", Handmade([](auto& b) {
                     auto op = HandOp(b, "", {VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"key with NUL", Handmade([](auto& b) {
                     auto op = HandOp(b, std::string("a\0b", 3), {VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"key too long", Handmade([](auto& b) {
                     auto op = HandOp(b, std::string(kMaxKeyBytes + 1, 'k'), {VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kTooLarge});
  cases.push_back({"value over the cap", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(1, 1)}, wire::fb::OpKind_Put, kMaxValueBytesCap + 1);
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kTooLarge});
  cases.push_back({"delete with a value", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(1, 1)}, wire::fb::OpKind_Delete, 3);
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"unknown op kind", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(1, 1)}, static_cast<wire::fb::OpKind>(9));
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"vv unsorted", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(5, 1), VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"vv duplicate node", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(1, 1), VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"vv lacks {origin: seq}", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(2, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"vv zero counter", Handmade([](auto& b) {
                     auto op = HandOp(b, "k", {VvEntry(1, 1), VvEntry(3, 0)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{op}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"same key twice", Handmade([](auto& b) {
                     auto one = HandOp(b, "k", {VvEntry(1, 1)});
                     auto two = HandOp(b, "k", {VvEntry(1, 1)});
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(std::vector{one, two}));
                   }),
                   StatusCode::kInvalidArgument});
  cases.push_back({"too many ops", Handmade([](auto& b) {
                     std::vector<flatbuffers::Offset<wire::fb::Op>> ops;
                     for (std::size_t i = 0; i <= kMaxOpsPerDeltaCap; ++i) {
                       ops.push_back(HandOp(b, "k" + std::to_string(i), {VvEntry(1, 1)}));
                     }
                     return wire::fb::CreateDelta(b, 1, 1, 0, b.CreateVector(ops));
                   }),
                   StatusCode::kCorruption});  // the verifier's table limit fires first
  for (const Case& c : cases) {
    INFO(c.name);
    auto decoded = DecodeDelta(c.bytes);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == c.code);
    CHECK(decoded.status().message().rfind("delta decode: ", 0) == 0);
  }
}

TEST_CASE("codec: a version vector placed off its 8-byte alignment is refused, not read") {
  // The builder never misaligns, so craft it: copy the vv vector to the end of
  // a valid encoding at 4 mod 8 (entries) and repoint the Op's vv offset there.
  // The FlatBuffers verifier accepts this (it checks 4-byte alignment only).
  Delta delta;
  delta.origin = NodeId(1);
  delta.seq = 1;
  Op op;
  op.key = "k";
  op.vv = {{NodeId(1), 1}};
  delta.ops.push_back(op);
  std::string bytes = EncodeDelta(delta);
  auto* data = reinterpret_cast<std::uint8_t*>(bytes.data());
  const auto* root = flatbuffers::GetRoot<wire::fb::Delta>(data);
  const auto* vv = root->ops()->Get(0)->vv();
  const std::size_t vector_at = reinterpret_cast<const std::uint8_t*>(vv) - data;
  REQUIRE(vector_at % 8 == 4);  // length word at 4 mod 8, so entries at 0 mod 8
  // Append a copy of the vector at an offset where its entries are misaligned,
  // and point the Op's vv field at the copy.
  // Place the length word at 0 mod 8 so the entries land at 4 mod 8.
  while (bytes.size() % 8 != 0) bytes.push_back('\0');
  const std::size_t copy_at = bytes.size();
  bytes.append(bytes.substr(vector_at, 4 + 16));
  data = reinterpret_cast<std::uint8_t*>(bytes.data());
  root = flatbuffers::GetRoot<wire::fb::Delta>(data);
  const auto* table = reinterpret_cast<const flatbuffers::Table*>(root->ops()->Get(0));
  const std::uint8_t* field = table->GetAddressOf(wire::fb::Op::VT_VV);
  REQUIRE(field != nullptr);
  const std::size_t field_at = field - data;
  const std::uint32_t relative = static_cast<std::uint32_t>(copy_at - field_at);
  std::memcpy(bytes.data() + field_at, &relative, 4);
  auto decoded = DecodeDelta(bytes);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().IsCorruption());
}
