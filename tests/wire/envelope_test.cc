// Peer envelope codec: every message kind round-trips exactly, encoding is
// deterministic, and the decoder refuses every broken limit and rule with a
// Status naming it — never crashing (ASan/UBSan watch the reads) and never
// turning a damaged frame into a different message.
#include "wire/envelope.h"

#include <doctest/doctest.h>

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/prng.h"
#include "wire/delta_codec.h"
#include "wire/grapevine_generated.h"

using namespace gv;
using namespace gv::wire;
namespace ms = gv::membership;
namespace bc = gv::broadcast;

namespace {

std::string Bytes(Prng& prng, std::size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(prng.Uniform(256));
  return out;
}

std::vector<AddressBookEntry> Book() {
  return {{NodeId(0x1111222233334444ULL), "10.0.0.1:7400"}, {NodeId(5), "[::1]:7400"}, {NodeId(9), "host:1"}};
}

// One envelope of every message kind, with every field away from its default
// (so a field the codec forgot to carry would show as a difference).
std::vector<Envelope> EveryKind() {
  Prng prng(42);
  std::vector<Envelope> out;
  auto add = [&](PeerMessage m) { out.push_back(Envelope{std::move(m), Book()}); };
  add(Hello{"prod-eu", 7, NodeId(0xfedcba9876543210ULL), "node-a", "192.168.1.2:7400"});
  add(Refuse{"cluster mismatch: expected \"prod\", got \"dev\""});
  add(ms::Message(ms::Join{0x8000000000000001ULL}));
  add(ms::Message(ms::ForwardJoin{NodeId(77), 6}));
  add(ms::Message(ms::ForwardJoinReply{123456789}));
  add(ms::Message(ms::Neighbor{ms::Priority::kHigh, 0xffffffffffffffffULL}));
  add(ms::Message(ms::Neighbor{ms::Priority::kHigh, 5, Millis(30000)}));  // a reconnect
  add(ms::Message(ms::NeighborReply{42, true, {NodeId(3), NodeId(1), NodeId(0xffffffffffffffffULL)}}));
  add(ms::Message(ms::Disconnect{99}));
  add(ms::Message(ms::Shuffle{NodeId(8), 3, {NodeId(8), NodeId(2), NodeId(4), NodeId(6)}}));
  add(ms::Message(ms::ShuffleReply{{NodeId(10), NodeId(11)}}));
  add(ms::Message(ms::KeepAlive{}));
  add(bc::Message(bc::Gossip{bc::MessageId{NodeId(12), 345}, 4, Bytes(prng, 300), true}));
  add(bc::Message(bc::IHave{{{bc::MessageId{NodeId(1), 2}, 3}, {bc::MessageId{NodeId(0xabcdef), 0}, 0xffffffffu}}}));
  add(bc::Message(bc::Graft{{{bc::MessageId{NodeId(5), 6}, 7}}, NodeId(13)}));
  add(bc::Message(bc::Prune{NodeId(14)}));
  add(SyncRequest{{{NodeId(1), 5}, {NodeId(2), 1}, {NodeId(0xffffffffffffffffULL), 0xffffffffffffffffULL}},
                  1u << 20, 86400001});
  add(SyncReply{{Bytes(prng, 40), std::string("\0\0\0", 3), Bytes(prng, 1)}, true, true});
  add(SnapshotRequest{0x1234567890abcdefULL, 17, 8});
  add(SnapshotChunk{0x1234567890abcdefULL, 16, Bytes(prng, 500), true, "too many transfers"});
  add(LocatorState{Bytes(prng, 70)});
  return out;
}

// The same kinds with their lists and optional fields empty.
std::vector<Envelope> EmptyVariants() {
  return {
      Envelope{Hello{"", 0, NodeId(1), "", ""}, {}},
      Envelope{Refuse{""}, {}},
      Envelope{ms::Message(ms::Neighbor{ms::Priority::kLow, 1}), {}},
      Envelope{ms::Message(ms::NeighborReply{1, false, {}}), {}},
      Envelope{ms::Message(ms::Shuffle{NodeId(1), 0, {}}), {}},
      Envelope{ms::Message(ms::ShuffleReply{}), {}},
      Envelope{bc::Message(bc::Gossip{bc::MessageId{NodeId(1), 0}, 0, "", false}), {}},
      Envelope{bc::Message(bc::IHave{}), {}},
      Envelope{bc::Message(bc::Graft{{}, std::nullopt}), {}},
      Envelope{bc::Message(bc::Prune{std::nullopt}), {}},
      Envelope{SyncRequest{{}, 0}, {}},
      Envelope{SyncReply{{}, false}, {}},
      Envelope{SyncReply{{""}, false}, {}},
      Envelope{SnapshotRequest{1, 0, 0}, {}},
      Envelope{SnapshotChunk{1, 0, "", false, ""}, {}},
      Envelope{LocatorState{""}, {}},
  };
}

// Expects a refusal whose message names `what`.
void ExpectRefused(const Result<Envelope>& result, StatusCode code, const std::string& what) {
  REQUIRE_FALSE(result.ok());
  INFO(result.status().ToString());
  CHECK(result.status().code() == code);
  CHECK(result.status().message().find(what) != std::string::npos);
}

// Builds an envelope by hand, bypassing the encoder's guarantees.
template <typename Fill>
std::string Handmade(Fill fill, const char* identifier = kEnvelopeFileIdentifier) {
  flatbuffers::FlatBufferBuilder builder;
  auto root = fill(builder);
  builder.Finish(root, identifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

std::string HandmadeVector(const std::vector<fb::VvEntry>& entries) {
  return Handmade([&](flatbuffers::FlatBufferBuilder& b) {
    auto applied = b.CreateVectorOfStructs(entries);
    return fb::CreateEnvelope(b, fb::PeerBody_SyncRequest, fb::CreateSyncRequest(b, applied, 10).Union());
  });
}

}  // namespace

TEST_CASE("every message kind round-trips exactly, with its address book") {
  const std::vector<Envelope> kinds = EveryKind();
  std::set<std::string> names;
  for (const Envelope& envelope : kinds) {
    const std::string name = PeerMessageTypeName(envelope.message);
    INFO(name);
    names.insert(name);
    const std::string frame = EncodeEnvelope(envelope);
    CHECK(std::memcmp(frame.data() + 4, kEnvelopeFileIdentifier, 4) == 0);
    auto decoded = DecodeEnvelope(frame);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == envelope);
    CHECK(std::string(PeerMessageTypeName(decoded->message)) == name);
  }
  // Every alternative of PeerMessage and of the two protocol variants is covered.
  CHECK(names.size() == 2 + std::variant_size_v<ms::Message> + std::variant_size_v<bc::Message> + 5);
  CHECK(names == std::set<std::string>{"HELLO", "REFUSE", "JOIN", "FORWARDJOIN", "FORWARDJOINREPLY", "NEIGHBOR",
                                       "NEIGHBORREPLY", "DISCONNECT", "SHUFFLE", "SHUFFLEREPLY", "KEEPALIVE",
                                       "GOSSIP", "IHAVE", "GRAFT", "PRUNE", "SYNC_REQUEST", "SYNC_REPLY",
                                       "SNAPSHOT_REQUEST", "SNAPSHOT_CHUNK", "LOCATOR_STATE"});
}

TEST_CASE("empty lists, empty strings and absent origins round-trip") {
  for (const Envelope& envelope : EmptyVariants()) {
    INFO(PeerMessageTypeName(envelope.message));
    auto decoded = DecodeEnvelope(EncodeEnvelope(envelope));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == envelope);
  }
  // Present and absent origins stay distinct.
  Envelope with_origin{bc::Message(bc::Prune{NodeId(3)}), {}};
  Envelope shared_tree{bc::Message(bc::Prune{std::nullopt}), {}};
  CHECK(EncodeEnvelope(with_origin) != EncodeEnvelope(shared_tree));
  CHECK(DecodeEnvelope(EncodeEnvelope(shared_tree))->message == shared_tree.message);
}

TEST_CASE("encoding is deterministic and canonical") {
  for (const Envelope& envelope : EveryKind()) {
    INFO(PeerMessageTypeName(envelope.message));
    const std::string first = EncodeEnvelope(envelope);
    const Envelope copy = envelope;
    CHECK(EncodeEnvelope(copy) == first);
    // decode then encode gives back the very same bytes
    auto decoded = DecodeEnvelope(first);
    REQUIRE(decoded.ok());
    CHECK(EncodeEnvelope(*decoded) == first);
  }
  // Different values give different bytes.
  Envelope a{ms::Message(ms::Join{1}), {}};
  Envelope b{ms::Message(ms::Join{2}), {}};
  CHECK(EncodeEnvelope(a) != EncodeEnvelope(b));
}

TEST_CASE("every limit is enforced at its bound and refused past it, naming the limit") {
  EnvelopeLimits limits;
  limits.max_string_bytes = 8;
  limits.max_node_list = 3;
  limits.max_address_book = 2;
  limits.max_ihave_entries = 2;
  limits.max_payload_bytes = 16;
  limits.max_sync_deltas = 2;
  limits.max_vector_entries = 2;

  auto accepted = [&](const Envelope& envelope) {
    auto decoded = DecodeEnvelope(EncodeEnvelope(envelope), limits);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == envelope);
  };
  auto refused = [&](const Envelope& envelope, const std::string& limit, const std::string& field) {
    auto decoded = DecodeEnvelope(EncodeEnvelope(envelope), limits);
    ExpectRefused(decoded, StatusCode::kTooLarge, limit);
    CHECK(decoded.status().message().find(field) != std::string::npos);
  };
  const std::string s8(8, 'x'), s9(9, 'x');
  const std::vector<NodeId> n3{NodeId(1), NodeId(2), NodeId(3)};
  const std::vector<NodeId> n4{NodeId(1), NodeId(2), NodeId(3), NodeId(4)};
  const std::vector<bc::IHaveEntry> e2{{bc::MessageId{NodeId(1), 1}, 0}, {bc::MessageId{NodeId(2), 1}, 0}};
  std::vector<bc::IHaveEntry> e3 = e2;
  e3.push_back({bc::MessageId{NodeId(3), 1}, 0});

  SUBCASE("max_string_bytes") {
    accepted(Envelope{Hello{s8, 1, NodeId(1), s8, s8}, {{NodeId(2), s8}}});
    accepted(Envelope{Refuse{s8}, {}});
    refused(Envelope{Hello{s9, 1, NodeId(1), "", ""}, {}}, "max_string_bytes", "Hello.cluster");
    refused(Envelope{Hello{"", 1, NodeId(1), s9, ""}, {}}, "max_string_bytes", "Hello.name");
    refused(Envelope{Hello{"", 1, NodeId(1), "", s9}, {}}, "max_string_bytes", "Hello.address");
    refused(Envelope{Refuse{s9}, {}}, "max_string_bytes", "Refuse.reason");
    refused(Envelope{ms::Message(ms::KeepAlive{}), {{NodeId(2), s9}}}, "max_string_bytes", "address book[0].address");
  }
  SUBCASE("max_node_list") {
    accepted(Envelope{ms::Message(ms::Shuffle{NodeId(1), 2, n3}), {}});
    refused(Envelope{ms::Message(ms::Shuffle{NodeId(1), 2, n4}), {}}, "max_node_list", "Shuffle.nodes");
    refused(Envelope{ms::Message(ms::ShuffleReply{n4}), {}}, "max_node_list", "ShuffleReply.nodes");
    refused(Envelope{ms::Message(ms::NeighborReply{1, false, n4}), {}}, "max_node_list", "NeighborReply.candidates");
  }
  SUBCASE("max_address_book") {
    accepted(Envelope{ms::Message(ms::KeepAlive{}), {{NodeId(1), "a:1"}, {NodeId(2), "b:1"}}});
    refused(Envelope{ms::Message(ms::KeepAlive{}), {{NodeId(1), "a:1"}, {NodeId(2), "b:1"}, {NodeId(3), "c:1"}}},
            "max_address_book", "address book");
  }
  SUBCASE("max_ihave_entries") {
    accepted(Envelope{bc::Message(bc::IHave{e2}), {}});
    accepted(Envelope{bc::Message(bc::Graft{e2, NodeId(4)}), {}});
    refused(Envelope{bc::Message(bc::IHave{e3}), {}}, "max_ihave_entries", "IHave.entries");
    refused(Envelope{bc::Message(bc::Graft{e3, std::nullopt}), {}}, "max_ihave_entries", "Graft.entries");
  }
  SUBCASE("max_payload_bytes") {
    accepted(Envelope{bc::Message(bc::Gossip{bc::MessageId{NodeId(1), 1}, 0, std::string(16, 'p'), false}), {}});
    accepted(Envelope{SyncReply{{std::string(16, 'd')}, false}, {}});
    refused(Envelope{bc::Message(bc::Gossip{bc::MessageId{NodeId(1), 1}, 0, std::string(17, 'p'), false}), {}},
            "max_payload_bytes", "Gossip.payload");
    refused(Envelope{SyncReply{{"ok", std::string(17, 'd')}, false}, {}}, "max_payload_bytes", "SyncReply.deltas[1]");
  }
  SUBCASE("max_sync_deltas") {
    accepted(Envelope{SyncReply{{"a", "b"}, true}, {}});
    refused(Envelope{SyncReply{{"a", "b", "c"}, true}, {}}, "max_sync_deltas", "SyncReply.deltas");
  }
  SUBCASE("max_vector_entries") {
    accepted(Envelope{SyncRequest{{{NodeId(1), 1}, {NodeId(2), 2}}, 5}, {}});
    refused(Envelope{SyncRequest{{{NodeId(1), 1}, {NodeId(2), 2}, {NodeId(3), 3}}, 5}, {}}, "max_vector_entries",
            "SyncRequest.applied");
  }
  SUBCASE("max_frame_bytes") {
    const std::string frame = EncodeEnvelope(Envelope{ms::Message(ms::KeepAlive{}), {}});
    limits.max_frame_bytes = frame.size();
    CHECK(DecodeEnvelope(frame, limits).ok());
    limits.max_frame_bytes = frame.size() - 1;
    ExpectRefused(DecodeEnvelope(frame, limits), StatusCode::kTooLarge, "max_frame_bytes");
  }
}

TEST_CASE("the default limits accept the largest messages the protocols send") {
  // HyParView's defaults: a shuffle carries 1 + ka + kp = 8 ids, a refusal kp = 4.
  EnvelopeLimits defaults;
  std::vector<NodeId> ids;
  for (std::uint64_t i = 1; i <= defaults.max_node_list; ++i) ids.push_back(NodeId(i));
  Envelope shuffle{ms::Message(ms::Shuffle{NodeId(1), 6, ids}), {}};
  for (std::uint64_t i = 1; i <= defaults.max_address_book; ++i) {
    shuffle.addresses.push_back({NodeId(i), "10.0.0." + std::to_string(i % 256) + ":7400"});
  }
  auto decoded = DecodeEnvelope(EncodeEnvelope(shuffle));
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == shuffle);
  // A sync reply of 3 full-size deltas fits the 16 MiB frame budget.
  Envelope reply{SyncReply{std::vector<std::string>(3, std::string(defaults.max_payload_bytes, 'd')), true}, {}};
  decoded = DecodeEnvelope(EncodeEnvelope(reply));
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(*decoded == reply);
}

TEST_CASE("zero node ids and zero connection ids are refused, naming the field") {
  const struct {
    Envelope envelope;
    const char* field;
  } cases[] = {
      {Envelope{Hello{"c", 1, NodeId(0), "n", "a:1"}, {}}, "Hello.node"},
      {Envelope{ms::Message(ms::Join{0}), {}}, "Join.connection"},
      {Envelope{ms::Message(ms::ForwardJoin{NodeId(0), 3}), {}}, "ForwardJoin.new_node"},
      {Envelope{ms::Message(ms::ForwardJoinReply{0}), {}}, "ForwardJoinReply.connection"},
      {Envelope{ms::Message(ms::Neighbor{ms::Priority::kLow, 0}), {}}, "Neighbor.connection"},
      {Envelope{ms::Message(ms::NeighborReply{0, true, {}}), {}}, "NeighborReply.connection"},
      {Envelope{ms::Message(ms::NeighborReply{1, false, {NodeId(2), NodeId(0)}}), {}}, "NeighborReply.candidates[1]"},
      {Envelope{ms::Message(ms::Disconnect{0}), {}}, "Disconnect.connection"},
      {Envelope{ms::Message(ms::Shuffle{NodeId(0), 1, {}}), {}}, "Shuffle.origin"},
      {Envelope{ms::Message(ms::Shuffle{NodeId(1), 1, {NodeId(0)}}), {}}, "Shuffle.nodes[0]"},
      {Envelope{ms::Message(ms::ShuffleReply{{NodeId(3), NodeId(4), NodeId(0)}}), {}}, "ShuffleReply.nodes[2]"},
      {Envelope{bc::Message(bc::Gossip{bc::MessageId{NodeId(0), 1}, 0, "p", false}), {}}, "Gossip.origin"},
      {Envelope{bc::Message(bc::IHave{{{bc::MessageId{NodeId(0), 1}, 0}}}), {}}, "IHave.entries[0].origin"},
      {Envelope{bc::Message(bc::Graft{{{bc::MessageId{NodeId(0), 1}, 0}}, std::nullopt}), {}},
       "Graft.entries[0].origin"},
      {Envelope{bc::Message(bc::Graft{{}, NodeId(0)}), {}}, "Graft.origin"},
      {Envelope{bc::Message(bc::Prune{NodeId(0)}), {}}, "Prune.origin"},
      {Envelope{SyncRequest{{{NodeId(0), 1}}, 1}, {}}, "SyncRequest.applied[0]"},
      {Envelope{ms::Message(ms::KeepAlive{}), {{NodeId(0), "a:1"}}}, "address book[0].node"},
  };
  for (const auto& c : cases) {
    INFO(c.field);
    auto decoded = DecodeEnvelope(EncodeEnvelope(c.envelope));
    ExpectRefused(decoded, StatusCode::kInvalidArgument, c.field);
    const bool names_zero = decoded.status().message().find("node id 0") != std::string::npos ||
                            decoded.status().message().find("connection id 0") != std::string::npos;
    CHECK(names_zero);
  }
}

TEST_CASE("a reconnect's age over a year is refused, naming the field") {
  // Encoded as Milliseconds: one millisecond over the bound.
  const Duration year = Seconds(365LL * 24 * 3600);
  auto at_bound = DecodeEnvelope(EncodeEnvelope(Envelope{ms::Message(ms::Neighbor{ms::Priority::kHigh, 5, year}), {}}));
  REQUIRE_MESSAGE(at_bound.ok(), at_bound.status().ToString());
  auto over = DecodeEnvelope(
      EncodeEnvelope(Envelope{ms::Message(ms::Neighbor{ms::Priority::kHigh, 5, year + Millis(1)}), {}}));
  ExpectRefused(over, StatusCode::kInvalidArgument, "Neighbor.lost_for_ms");
}

TEST_CASE("version vectors must be strictly sorted by node with counters >= 1") {
  auto ok = DecodeEnvelope(HandmadeVector({{1, 1}, {5, 9}}));
  REQUIRE_MESSAGE(ok.ok(), ok.status().ToString());
  CHECK(std::get<SyncRequest>(ok->message) == SyncRequest{{{NodeId(1), 1}, {NodeId(5), 9}}, 10});

  ExpectRefused(DecodeEnvelope(HandmadeVector({{5, 1}, {1, 1}})), StatusCode::kInvalidArgument,
                "SyncRequest.applied is not strictly sorted");
  ExpectRefused(DecodeEnvelope(HandmadeVector({{5, 1}, {5, 2}})), StatusCode::kInvalidArgument,
                "SyncRequest.applied is not strictly sorted");
  ExpectRefused(DecodeEnvelope(HandmadeVector({{1, 1}, {5, 0}})), StatusCode::kInvalidArgument,
                "SyncRequest.applied[1] has counter 0");
}

TEST_CASE("malformed structure and broken rules are refused") {
  SUBCASE("no message") {
    const std::string frame = Handmade([](flatbuffers::FlatBufferBuilder& b) { return fb::CreateEnvelope(b); });
    ExpectRefused(DecodeEnvelope(frame), StatusCode::kInvalidArgument, "no message");
  }
  SUBCASE("a known message type without its table") {
    const std::string frame = Handmade(
        [](flatbuffers::FlatBufferBuilder& b) { return fb::CreateEnvelope(b, fb::PeerBody_Gossip, 0); });
    ExpectRefused(DecodeEnvelope(frame), StatusCode::kInvalidArgument, "Gossip message has no body");
  }
  SUBCASE("a message type from a future version") {
    const std::string frame = Handmade([](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateEnvelope(b, static_cast<fb::PeerBody>(200), fb::CreateKeepAlive(b).Union());
    });
    ExpectRefused(DecodeEnvelope(frame), StatusCode::kInvalidArgument, "unknown message type 200");
  }
  SUBCASE("an unknown neighbor priority") {
    const std::string frame = Handmade([](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateEnvelope(b, fb::PeerBody_Neighbor,
                                fb::CreateNeighbor(b, static_cast<fb::NeighborPriority>(7), 5).Union());
    });
    ExpectRefused(DecodeEnvelope(frame), StatusCode::kInvalidArgument, "Neighbor.priority has unknown value 7");
  }
  SUBCASE("an origin without has_origin") {
    const std::string graft = Handmade([](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateEnvelope(b, fb::PeerBody_Graft, fb::CreateGraft(b, 0, false, 9).Union());
    });
    ExpectRefused(DecodeEnvelope(graft), StatusCode::kInvalidArgument, "Graft.origin is set but has_origin is false");
    const std::string prune = Handmade([](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateEnvelope(b, fb::PeerBody_Prune, fb::CreatePrune(b, false, 9).Union());
    });
    ExpectRefused(DecodeEnvelope(prune), StatusCode::kInvalidArgument, "Prune.origin is set but has_origin is false");
  }
  SUBCASE("NUL bytes in identifiers") {
    ExpectRefused(DecodeEnvelope(EncodeEnvelope(Envelope{Hello{"c", 1, NodeId(1), std::string("a\0b", 3), ""}, {}})),
                  StatusCode::kInvalidArgument, "Hello.name contains a NUL byte");
    ExpectRefused(DecodeEnvelope(EncodeEnvelope(
                      Envelope{ms::Message(ms::KeepAlive{}), {{NodeId(1), std::string("1.2.3.4\0:1", 10)}}})),
                  StatusCode::kInvalidArgument, "address book[0].address contains a NUL byte");
    // A refusal reason is free text for a log line: any bytes go.
    const Envelope refuse{Refuse{std::string("x\0y", 3)}, {}};
    CHECK(DecodeEnvelope(EncodeEnvelope(refuse))->message == refuse.message);
  }
  SUBCASE("address book: empty address, two addresses for one node") {
    ExpectRefused(DecodeEnvelope(EncodeEnvelope(Envelope{ms::Message(ms::KeepAlive{}), {{NodeId(1), ""}}})),
                  StatusCode::kInvalidArgument, "address book[0].address is empty");
    ExpectRefused(DecodeEnvelope(EncodeEnvelope(Envelope{ms::Message(ms::KeepAlive{}),
                                                         {{NodeId(7), "a:1"}, {NodeId(2), "b:1"}, {NodeId(7), "c:1"}}})),
                  StatusCode::kInvalidArgument, "gives node 0000000000000007 two addresses ('a:1' and 'c:1')");
    // The same entry twice (a SHUFFLE names its origin twice) is kept as sent.
    const Envelope repeated{ms::Message(ms::Shuffle{NodeId(7), 2, {NodeId(7), NodeId(2)}}),
                            {{NodeId(7), "a:1"}, {NodeId(7), "a:1"}, {NodeId(2), "b:1"}}};
    auto decoded = DecodeEnvelope(EncodeEnvelope(repeated));
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    CHECK(*decoded == repeated);
  }
  SUBCASE("too short") {
    ExpectRefused(DecodeEnvelope(""), StatusCode::kCorruption, "too short");
    ExpectRefused(DecodeEnvelope("GVE1GVE"), StatusCode::kCorruption, "too short");
  }
  SUBCASE("a root offset out of bounds") {
    std::string frame = EncodeEnvelope(EveryKind()[0]);
    frame[0] = '\xff';
    frame[1] = '\xff';
    ExpectRefused(DecodeEnvelope(frame), StatusCode::kCorruption, "verification failed");
  }
}

TEST_CASE("a wrong file identifier is refused") {
  // A delta is a valid FlatBuffer of the same schema, but not an envelope.
  statestore::Delta delta;
  delta.origin = NodeId(1);
  delta.seq = 1;
  statestore::Op op;
  op.key = "k";
  op.value = "v";
  op.vv = {{NodeId(1), 1}};
  delta.ops.push_back(op);
  ExpectRefused(DecodeEnvelope(EncodeDelta(delta)), StatusCode::kCorruption, "file identifier is not GVE1");

  // The same envelope tagged with another identifier.
  const std::string wrong = Handmade(
      [](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateEnvelope(b, fb::PeerBody_KeepAlive, fb::CreateKeepAlive(b).Union());
      },
      "GVE2");
  ExpectRefused(DecodeEnvelope(wrong), StatusCode::kCorruption, "file identifier is not GVE1");
  // and an envelope is not a delta either
  CHECK_FALSE(DecodeDelta(EncodeEnvelope(EveryKind()[0])).ok());
}

TEST_CASE("truncation at every byte never decodes into a different envelope") {
  std::vector<Envelope> all = EveryKind();
  for (const Envelope& e : EmptyVariants()) all.push_back(e);
  std::size_t refused = 0;
  std::size_t checked = 0;
  for (const Envelope& envelope : all) {
    INFO(PeerMessageTypeName(envelope.message));
    const std::string frame = EncodeEnvelope(envelope);
    for (std::size_t n = 0; n < frame.size(); ++n) {
      // A fresh heap copy of exactly n bytes, so ASan sees any read past the end.
      std::vector<char> prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
      auto decoded = DecodeEnvelope(std::string_view(prefix.data(), prefix.size()));
      ++checked;
      if (!decoded.ok()) {
        ++refused;
        continue;
      }
      CHECK(*decoded == envelope);
    }
  }
  CHECK(checked > 1000);
  // The root offset points near the end: almost every prefix must be refused.
  CHECK(refused > checked * 9 / 10);
}

TEST_CASE("random corruption is refused or decodes to a valid envelope that re-encodes canonically") {
  Prng prng(7);
  const std::vector<Envelope> all = EveryKind();
  std::size_t accepted = 0;
  for (int round = 0; round < 4000; ++round) {
    const Envelope& original = all[prng.Index(all.size())];
    std::string frame = EncodeEnvelope(original);
    const int flips = 1 + static_cast<int>(prng.Index(4));
    for (int f = 0; f < flips; ++f) frame[prng.Index(frame.size())] = static_cast<char>(prng.Uniform(256));
    std::vector<char> copy(frame.begin(), frame.end());
    auto decoded = DecodeEnvelope(std::string_view(copy.data(), copy.size()));
    if (!decoded.ok()) continue;
    ++accepted;
    // Whatever got through obeys every rule: it survives its own round trip.
    auto again = DecodeEnvelope(EncodeEnvelope(*decoded));
    REQUIRE_MESSAGE(again.ok(), again.status().ToString());
    CHECK(*again == *decoded);
  }
  // Flips in payload bytes and ids keep the frame valid, so some must pass.
  CHECK(accepted > 0);
}

TEST_CASE("misaligned input is accepted") {
  for (const Envelope& envelope : EveryKind()) {
    INFO(PeerMessageTypeName(envelope.message));
    const std::string frame = EncodeEnvelope(envelope);
    // 8-aligned storage, then every start offset 0..7 within it.
    std::vector<std::uint64_t> storage(frame.size() / 8 + 2);
    for (std::size_t offset = 0; offset < 8; ++offset) {
      char* at = reinterpret_cast<char*>(storage.data()) + offset;
      std::memcpy(at, frame.data(), frame.size());
      auto decoded = DecodeEnvelope(std::string_view(at, frame.size()));
      REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
      CHECK(*decoded == envelope);
    }
  }
}
