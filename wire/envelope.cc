#include "wire/envelope.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "common/overloaded.h"
#include "wire/aligned_bytes.h"
#include "wire/grapevine_generated.h"

namespace gv::wire {

namespace ms = gv::membership;
namespace bc = gv::broadcast;
namespace sst = gv::statestore;

// ---- encoding ---------------------------------------------------------------
//
// Determinism: the builder's output depends only on the sequence of calls, and
// every call below depends only on the envelope's value (vectors are written
// in their order, the version vector in its map order). Empty lists and
// strings are omitted rather than written empty, so each value has exactly
// one encoding; the decoder reads an absent list as empty.

namespace {

using Builder = flatbuffers::FlatBufferBuilder;
using BodyOffset = flatbuffers::Offset<void>;

flatbuffers::Offset<flatbuffers::String> OptionalString(Builder& b, const std::string& s) {
  if (s.empty()) return 0;
  return b.CreateString(s.data(), s.size());
}

flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> OptionalBytes(Builder& b, const std::string& s) {
  if (s.empty()) return 0;
  return b.CreateVector(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

flatbuffers::Offset<flatbuffers::Vector<std::uint64_t>> OptionalNodes(Builder& b, const std::vector<NodeId>& nodes) {
  if (nodes.empty()) return 0;
  std::vector<std::uint64_t> raw;
  raw.reserve(nodes.size());
  for (NodeId node : nodes) raw.push_back(node.value);
  return b.CreateVector(raw);
}

flatbuffers::Offset<flatbuffers::Vector<const fb::IHaveEntry*>> OptionalEntries(
    Builder& b, const std::vector<bc::IHaveEntry>& entries) {
  if (entries.empty()) return 0;
  std::vector<fb::IHaveEntry> raw;
  raw.reserve(entries.size());
  for (const bc::IHaveEntry& e : entries) raw.emplace_back(e.id.origin.value, e.id.seq, e.round);
  return b.CreateVectorOfStructs(raw);
}

std::pair<fb::PeerBody, BodyOffset> EncodeMembership(Builder& b, const ms::Message& message) {
  return std::visit(
      Overloaded{
          [&](const ms::Join& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_Join, fb::CreateJoin(b, m.connection).Union()};
          },
          [&](const ms::ForwardJoin& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_ForwardJoin, fb::CreateForwardJoin(b, m.new_node.value, m.ttl).Union()};
          },
          [&](const ms::ForwardJoinReply& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_ForwardJoinReply, fb::CreateForwardJoinReply(b, m.connection).Union()};
          },
          [&](const ms::Neighbor& m) -> std::pair<fb::PeerBody, BodyOffset> {
            const auto priority =
                m.priority == ms::Priority::kHigh ? fb::NeighborPriority_High : fb::NeighborPriority_Low;
            const auto lost_for_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, ToMillis(m.lost_for)));
            return {fb::PeerBody_Neighbor, fb::CreateNeighbor(b, priority, m.connection, lost_for_ms).Union()};
          },
          [&](const ms::NeighborReply& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto candidates = OptionalNodes(b, m.candidates);
            return {fb::PeerBody_NeighborReply,
                    fb::CreateNeighborReply(b, m.connection, m.accepted, candidates).Union()};
          },
          [&](const ms::Disconnect& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_Disconnect, fb::CreateDisconnect(b, m.connection).Union()};
          },
          [&](const ms::Shuffle& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto nodes = OptionalNodes(b, m.nodes);
            return {fb::PeerBody_Shuffle, fb::CreateShuffle(b, m.origin.value, m.ttl, nodes).Union()};
          },
          [&](const ms::ShuffleReply& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto nodes = OptionalNodes(b, m.nodes);
            return {fb::PeerBody_ShuffleReply, fb::CreateShuffleReply(b, nodes).Union()};
          },
          [&](const ms::KeepAlive&) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_KeepAlive, fb::CreateKeepAlive(b).Union()};
          },
      },
      message);
}

std::pair<fb::PeerBody, BodyOffset> EncodeBroadcast(Builder& b, const bc::Message& message) {
  return std::visit(
      Overloaded{
          [&](const bc::Gossip& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto payload = OptionalBytes(b, m.payload);
            return {fb::PeerBody_Gossip,
                    fb::CreateGossip(b, m.id.origin.value, m.id.seq, m.round, payload, m.origin_tree).Union()};
          },
          [&](const bc::IHave& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto entries = OptionalEntries(b, m.entries);
            return {fb::PeerBody_IHave, fb::CreateIHave(b, entries).Union()};
          },
          [&](const bc::Graft& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto entries = OptionalEntries(b, m.entries);
            return {fb::PeerBody_Graft, fb::CreateGraft(b, entries, m.origin.has_value(),
                                                        m.origin.has_value() ? m.origin->value : 0)
                                            .Union()};
          },
          [&](const bc::Prune& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_Prune,
                    fb::CreatePrune(b, m.origin.has_value(), m.origin.has_value() ? m.origin->value : 0).Union()};
          },
      },
      message);
}

std::pair<fb::PeerBody, BodyOffset> EncodeBody(Builder& b, const PeerMessage& message) {
  return std::visit(
      Overloaded{
          [&](const Hello& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto cluster = OptionalString(b, m.cluster);
            auto name = OptionalString(b, m.name);
            auto address = OptionalString(b, m.address);
            return {fb::PeerBody_Hello,
                    fb::CreateHello(b, cluster, m.protocol_version, m.node.value, name, address).Union()};
          },
          [&](const Refuse& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto reason = OptionalString(b, m.reason);
            return {fb::PeerBody_Refuse, fb::CreateRefuse(b, reason).Union()};
          },
          [&](const ms::Message& m) { return EncodeMembership(b, m); },
          [&](const bc::Message& m) { return EncodeBroadcast(b, m); },
          [&](const SyncRequest& m) -> std::pair<fb::PeerBody, BodyOffset> {
            flatbuffers::Offset<flatbuffers::Vector<const fb::VvEntry*>> applied;
            if (!m.applied.empty()) {
              std::vector<fb::VvEntry> raw;
              raw.reserve(m.applied.size());
              for (const auto& [node, counter] : m.applied) raw.emplace_back(node.value, counter);
              applied = b.CreateVectorOfStructs(raw);
            }
            return {fb::PeerBody_SyncRequest, fb::CreateSyncRequest(b, applied, m.max_reply_bytes, m.away_ms).Union()};
          },
          [&](const SyncReply& m) -> std::pair<fb::PeerBody, BodyOffset> {
            flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Bytes>>> deltas;
            if (!m.deltas.empty()) {
              std::vector<flatbuffers::Offset<fb::Bytes>> raw;
              raw.reserve(m.deltas.size());
              for (const std::string& delta : m.deltas) raw.push_back(fb::CreateBytes(b, OptionalBytes(b, delta)));
              deltas = b.CreateVector(raw);
            }
            return {fb::PeerBody_SyncReply, fb::CreateSyncReply(b, deltas, m.more, m.snapshot_needed).Union()};
          },
          [&](const SnapshotRequest& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_SnapshotRequest,
                    fb::CreateSnapshotRequest(b, m.transfer, m.received, m.window).Union()};
          },
          [&](const SnapshotChunk& m) -> std::pair<fb::PeerBody, BodyOffset> {
            auto data = OptionalBytes(b, m.data);
            auto error = OptionalString(b, m.error);
            return {fb::PeerBody_SnapshotChunk,
                    fb::CreateSnapshotChunk(b, m.transfer, m.index, data, m.last, error).Union()};
          },
          [&](const LocatorState& m) -> std::pair<fb::PeerBody, BodyOffset> {
            return {fb::PeerBody_LocatorState, fb::CreateLocatorState(b, OptionalBytes(b, m.data)).Union()};
          },
      },
      message);
}

}  // namespace

std::string EncodeEnvelope(const Envelope& envelope) {
  Builder builder(1024);
  const auto [type, body] = EncodeBody(builder, envelope.message);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::AddressBookEntry>>> addresses;
  if (!envelope.addresses.empty()) {
    std::vector<flatbuffers::Offset<fb::AddressBookEntry>> raw;
    raw.reserve(envelope.addresses.size());
    for (const AddressBookEntry& entry : envelope.addresses) {
      raw.push_back(fb::CreateAddressBookEntry(builder, entry.node.value, OptionalString(builder, entry.address)));
    }
    addresses = builder.CreateVector(raw);
  }
  builder.Finish(fb::CreateEnvelope(builder, type, body, addresses), kEnvelopeFileIdentifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

// ---- decoding ---------------------------------------------------------------
//
// Order: size limit, alignment copy, file identifier, FlatBuffers verifier
// (every offset and length in bounds, tables within depth/count limits), then
// the rules the verifier cannot know — limits, non-zero ids, canonical
// vectors, alignment of 8-byte vector elements — before anything is copied
// out. Every error names the message kind and the field.

namespace {

// Envelope -> body table -> SyncReply's Bytes (or an address book entry):
// three nested tables; anything deeper is malformed.
constexpr flatbuffers::uoffset_t kMaxDepth = 4;
// A reconnect's age is bounded by reconnect_timeout; a year is far beyond
// any sane one and keeps the conversion to microseconds from overflowing.
constexpr std::uint64_t kMaxLostForMs = 365ull * 24 * 3600 * 1000;

Status Malformed(const std::string& what) { return Status::Corruption("envelope decode: " + what); }
Status Invalid(const std::string& what) { return Status::InvalidArgument("envelope decode: " + what); }
Status OverLimit(const std::string& what, std::size_t count, const char* unit, const char* limit_name,
                 std::size_t limit) {
  return Status::TooLarge("envelope decode: " + what + " has " + std::to_string(count) + " " + unit + ", over " +
                          limit_name + " (" + std::to_string(limit) + ")");
}

class Decoder {
 public:
  explicit Decoder(const EnvelopeLimits& limits) : limits_(limits) {}

  // A string field. `plain`: an identifier-like field (cluster, name,
  // address) that must not contain NUL bytes, since it reaches logs, the
  // address parser and the HTTP API as text.
  Result<std::string> String(const flatbuffers::String* s, const std::string& what, bool plain) const {
    if (s == nullptr) return std::string();
    if (s->size() > limits_.max_string_bytes) {
      return OverLimit(what, s->size(), "bytes", "max_string_bytes", limits_.max_string_bytes);
    }
    std::string out(s->data(), s->size());
    if (plain && out.find('\0') != std::string::npos) return Invalid(what + " contains a NUL byte");
    return out;
  }

  Result<std::string> Payload(const flatbuffers::Vector<std::uint8_t>* v, const std::string& what) const {
    if (v == nullptr) return std::string();
    if (v->size() > limits_.max_payload_bytes) {
      return OverLimit(what, v->size(), "bytes", "max_payload_bytes", limits_.max_payload_bytes);
    }
    return std::string(reinterpret_cast<const char*>(v->data()), v->size());
  }

  static Result<NodeId> Node(std::uint64_t raw, const std::string& what) {
    if (raw == 0) return Invalid(what + " is node id 0");
    return NodeId(raw);
  }

  static Result<ms::ConnectionId> Connection(std::uint64_t raw, const std::string& what) {
    // Connection ids are random and never 0 (HyParView::NewConnectionId).
    if (raw == 0) return Invalid(what + " is connection id 0");
    return raw;
  }

  Result<std::vector<NodeId>> Nodes(const flatbuffers::Vector<std::uint64_t>* v, const std::string& what) const {
    std::vector<NodeId> out;
    if (v == nullptr) return out;
    GV_RETURN_IF_ERROR(Aligned(v->Data(), alignof(std::uint64_t), what));
    if (v->size() > limits_.max_node_list) {
      return OverLimit(what, v->size(), "node ids", "max_node_list", limits_.max_node_list);
    }
    out.reserve(v->size());
    for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) {
      auto node = Node(v->Get(i), what + "[" + std::to_string(i) + "]");
      if (!node.ok()) return node.status();
      out.push_back(*node);
    }
    return out;
  }

  Result<std::vector<bc::IHaveEntry>> Entries(const flatbuffers::Vector<const fb::IHaveEntry*>* v,
                                              const std::string& what) const {
    std::vector<bc::IHaveEntry> out;
    if (v == nullptr) return out;
    GV_RETURN_IF_ERROR(Aligned(v->Data(), alignof(fb::IHaveEntry), what));
    if (v->size() > limits_.max_ihave_entries) {
      return OverLimit(what, v->size(), "entries", "max_ihave_entries", limits_.max_ihave_entries);
    }
    out.reserve(v->size());
    for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) {
      const fb::IHaveEntry* in = v->Get(i);
      auto origin = Node(in->origin(), what + "[" + std::to_string(i) + "].origin");
      if (!origin.ok()) return origin.status();
      out.push_back(bc::IHaveEntry{bc::MessageId{*origin, in->seq()}, in->round()});
    }
    return out;
  }

  // has_origin/origin -> optional<NodeId>, with exactly one encoding per value.
  static Result<std::optional<NodeId>> OptionalOrigin(bool has_origin, std::uint64_t origin, const std::string& what) {
    if (!has_origin) {
      if (origin != 0) return Invalid(what + ".origin is set but has_origin is false");
      return std::optional<NodeId>();
    }
    auto node = Node(origin, what + ".origin");
    if (!node.ok()) return node.status();
    return std::optional<NodeId>(*node);
  }

  Result<sst::VersionVector> Vector(const flatbuffers::Vector<const fb::VvEntry*>* v, const std::string& what) const {
    sst::VersionVector out;
    if (v == nullptr) return out;
    GV_RETURN_IF_ERROR(Aligned(v->Data(), alignof(fb::VvEntry), what));
    if (v->size() > limits_.max_vector_entries) {
      return OverLimit(what, v->size(), "entries", "max_vector_entries", limits_.max_vector_entries);
    }
    std::uint64_t previous_node = 0;
    out.reserve(v->size());
    for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) {
      const fb::VvEntry* entry = v->Get(i);
      const std::string at = what + "[" + std::to_string(i) + "]";
      if (entry->node() == 0) return Invalid(at + " is node id 0");
      // Canonical form: strictly increasing nodes, so no duplicates and one encoding.
      if (i > 0 && entry->node() <= previous_node) return Invalid(what + " is not strictly sorted by node");
      if (entry->counter() == 0) return Invalid(at + " has counter 0 (counters start at 1)");
      previous_node = entry->node();
      out.emplace_hint(out.end(), NodeId(entry->node()), entry->counter());
    }
    return out;
  }

  Result<PeerMessage> Body(const fb::Envelope* root) const {
    const void* body = root->body();
    const fb::PeerBody type = root->body_type();
    if (type == fb::PeerBody_NONE) return Invalid("envelope carries no message");
    if (type > fb::PeerBody_MAX) {
      return Invalid("unknown message type " + std::to_string(static_cast<unsigned>(type)));
    }
    // The verifier accepts a known tag whose table is absent.
    if (body == nullptr) return Invalid(std::string(fb::EnumNamePeerBody(type)) + " message has no body");
    switch (type) {
      case fb::PeerBody_Hello: return DecodeHello(static_cast<const fb::Hello*>(body));
      case fb::PeerBody_Refuse: {
        auto reason = String(static_cast<const fb::Refuse*>(body)->reason(), "Refuse.reason", false);
        if (!reason.ok()) return reason.status();
        return PeerMessage(Refuse{std::move(*reason)});
      }
      case fb::PeerBody_Join: {
        auto connection = Connection(static_cast<const fb::Join*>(body)->connection(), "Join.connection");
        if (!connection.ok()) return connection.status();
        return PeerMessage(ms::Message(ms::Join{*connection}));
      }
      case fb::PeerBody_ForwardJoin: {
        const auto* in = static_cast<const fb::ForwardJoin*>(body);
        auto node = Node(in->new_node(), "ForwardJoin.new_node");
        if (!node.ok()) return node.status();
        return PeerMessage(ms::Message(ms::ForwardJoin{*node, in->ttl()}));
      }
      case fb::PeerBody_ForwardJoinReply: {
        auto connection =
            Connection(static_cast<const fb::ForwardJoinReply*>(body)->connection(), "ForwardJoinReply.connection");
        if (!connection.ok()) return connection.status();
        return PeerMessage(ms::Message(ms::ForwardJoinReply{*connection}));
      }
      case fb::PeerBody_Neighbor: {
        const auto* in = static_cast<const fb::Neighbor*>(body);
        ms::Priority priority;
        switch (in->priority()) {
          case fb::NeighborPriority_Low: priority = ms::Priority::kLow; break;
          case fb::NeighborPriority_High: priority = ms::Priority::kHigh; break;
          default:
            return Invalid("Neighbor.priority has unknown value " +
                           std::to_string(static_cast<unsigned>(in->priority())));
        }
        auto connection = Connection(in->connection(), "Neighbor.connection");
        if (!connection.ok()) return connection.status();
        if (in->lost_for_ms() > kMaxLostForMs) {
          return Invalid("Neighbor.lost_for_ms " + std::to_string(in->lost_for_ms()) + " is over " +
                         std::to_string(kMaxLostForMs) + " (a year)");
        }
        return PeerMessage(ms::Message(ms::Neighbor{priority, *connection, Millis(static_cast<std::int64_t>(in->lost_for_ms()))}));
      }
      case fb::PeerBody_NeighborReply: {
        const auto* in = static_cast<const fb::NeighborReply*>(body);
        auto connection = Connection(in->connection(), "NeighborReply.connection");
        if (!connection.ok()) return connection.status();
        auto candidates = Nodes(in->candidates(), "NeighborReply.candidates");
        if (!candidates.ok()) return candidates.status();
        return PeerMessage(ms::Message(ms::NeighborReply{*connection, in->accepted(), std::move(*candidates)}));
      }
      case fb::PeerBody_Disconnect: {
        auto connection = Connection(static_cast<const fb::Disconnect*>(body)->connection(), "Disconnect.connection");
        if (!connection.ok()) return connection.status();
        return PeerMessage(ms::Message(ms::Disconnect{*connection}));
      }
      case fb::PeerBody_Shuffle: {
        const auto* in = static_cast<const fb::Shuffle*>(body);
        auto origin = Node(in->origin(), "Shuffle.origin");
        if (!origin.ok()) return origin.status();
        auto nodes = Nodes(in->nodes(), "Shuffle.nodes");
        if (!nodes.ok()) return nodes.status();
        return PeerMessage(ms::Message(ms::Shuffle{*origin, in->ttl(), std::move(*nodes)}));
      }
      case fb::PeerBody_ShuffleReply: {
        auto nodes = Nodes(static_cast<const fb::ShuffleReply*>(body)->nodes(), "ShuffleReply.nodes");
        if (!nodes.ok()) return nodes.status();
        return PeerMessage(ms::Message(ms::ShuffleReply{std::move(*nodes)}));
      }
      case fb::PeerBody_KeepAlive: return PeerMessage(ms::Message(ms::KeepAlive{}));
      case fb::PeerBody_Gossip: {
        const auto* in = static_cast<const fb::Gossip*>(body);
        auto origin = Node(in->origin(), "Gossip.origin");
        if (!origin.ok()) return origin.status();
        auto payload = Payload(in->payload(), "Gossip.payload");
        if (!payload.ok()) return payload.status();
        return PeerMessage(bc::Message(
            bc::Gossip{bc::MessageId{*origin, in->seq()}, in->round(), std::move(*payload), in->origin_tree()}));
      }
      case fb::PeerBody_IHave: {
        auto entries = Entries(static_cast<const fb::IHave*>(body)->entries(), "IHave.entries");
        if (!entries.ok()) return entries.status();
        return PeerMessage(bc::Message(bc::IHave{std::move(*entries)}));
      }
      case fb::PeerBody_Graft: {
        const auto* in = static_cast<const fb::Graft*>(body);
        auto entries = Entries(in->entries(), "Graft.entries");
        if (!entries.ok()) return entries.status();
        auto origin = OptionalOrigin(in->has_origin(), in->origin(), "Graft");
        if (!origin.ok()) return origin.status();
        return PeerMessage(bc::Message(bc::Graft{std::move(*entries), *origin}));
      }
      case fb::PeerBody_Prune: {
        const auto* in = static_cast<const fb::Prune*>(body);
        auto origin = OptionalOrigin(in->has_origin(), in->origin(), "Prune");
        if (!origin.ok()) return origin.status();
        return PeerMessage(bc::Message(bc::Prune{*origin}));
      }
      case fb::PeerBody_SyncRequest: {
        const auto* in = static_cast<const fb::SyncRequest*>(body);
        auto applied = Vector(in->applied(), "SyncRequest.applied");
        if (!applied.ok()) return applied.status();
        return PeerMessage(SyncRequest{std::move(*applied), in->max_reply_bytes(), in->away_ms()});
      }
      case fb::PeerBody_SyncReply: return DecodeSyncReply(static_cast<const fb::SyncReply*>(body));
      case fb::PeerBody_SnapshotRequest: {
        const auto* in = static_cast<const fb::SnapshotRequest*>(body);
        if (in->transfer() == 0) return Invalid("SnapshotRequest.transfer is 0");
        return PeerMessage(SnapshotRequest{in->transfer(), in->received(), in->window()});
      }
      case fb::PeerBody_SnapshotChunk: {
        const auto* in = static_cast<const fb::SnapshotChunk*>(body);
        if (in->transfer() == 0) return Invalid("SnapshotChunk.transfer is 0");
        auto data = Payload(in->data(), "SnapshotChunk.data");
        if (!data.ok()) return data.status();
        auto error = String(in->error(), "SnapshotChunk.error", true);
        if (!error.ok()) return error.status();
        return PeerMessage(SnapshotChunk{in->transfer(), in->index(), std::move(*data), in->last(), std::move(*error)});
      }
      case fb::PeerBody_LocatorState: {
        const auto* in = static_cast<const fb::LocatorState*>(body);
        auto data = Payload(in->data(), "LocatorState.data");
        if (!data.ok()) return data.status();
        return PeerMessage(LocatorState{std::move(*data)});
      }
      case fb::PeerBody_NONE: break;
    }
    return Invalid("unknown message type " + std::to_string(static_cast<unsigned>(type)));
  }

  Result<std::vector<AddressBookEntry>> Addresses(const fb::Envelope* root) const {
    std::vector<AddressBookEntry> out;
    const auto* book = root->addresses();
    if (book == nullptr) return out;
    if (book->size() > limits_.max_address_book) {
      return OverLimit("address book", book->size(), "entries", "max_address_book", limits_.max_address_book);
    }
    out.reserve(book->size());
    for (flatbuffers::uoffset_t i = 0; i < book->size(); ++i) {
      const fb::AddressBookEntry* in = book->Get(i);
      const std::string at = "address book[" + std::to_string(i) + "]";
      auto node = Node(in->node(), at + ".node");
      if (!node.ok()) return node.status();
      auto address = String(in->address(), at + ".address", true);
      if (!address.ok()) return address.status();
      if (address->empty()) return Invalid(at + ".address is empty");
      out.push_back(AddressBookEntry{*node, std::move(*address)});
    }
    // One address per node: two different addresses for one node would leave
    // the receiver to guess which one to dial. A repeated identical entry is
    // harmless (a message may name a node twice, as a SHUFFLE names its origin)
    // and is kept as sent, so re-encoding gives the same bytes.
    std::vector<const AddressBookEntry*> sorted;
    sorted.reserve(out.size());
    for (const AddressBookEntry& entry : out) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(), [](const AddressBookEntry* a, const AddressBookEntry* b) {
      return a->node != b->node ? a->node < b->node : a->address < b->address;
    });
    for (std::size_t i = 1; i < sorted.size(); ++i) {
      if (sorted[i]->node == sorted[i - 1]->node && sorted[i]->address != sorted[i - 1]->address) {
        return Invalid("address book gives node " + sorted[i]->node.ToString() + " two addresses ('" +
                       sorted[i - 1]->address + "' and '" + sorted[i]->address + "')");
      }
    }
    return out;
  }

 private:
  static Status Aligned(const void* data, std::size_t alignment, const std::string& what) {
    // The verifier checks a vector's length word alignment (4) only; 8-byte
    // elements must be aligned too before they are read in place.
    if (reinterpret_cast<std::uintptr_t>(data) % alignment != 0) return Malformed(what + " is misaligned");
    return Status::Ok();
  }

  Result<PeerMessage> DecodeHello(const fb::Hello* in) const {
    Hello hello;
    auto cluster = String(in->cluster(), "Hello.cluster", true);
    if (!cluster.ok()) return cluster.status();
    hello.cluster = std::move(*cluster);
    hello.protocol_version = in->protocol_version();
    auto node = Node(in->node(), "Hello.node");
    if (!node.ok()) return node.status();
    hello.node = *node;
    auto name = String(in->name(), "Hello.name", true);
    if (!name.ok()) return name.status();
    hello.name = std::move(*name);
    auto address = String(in->address(), "Hello.address", true);
    if (!address.ok()) return address.status();
    hello.address = std::move(*address);
    return PeerMessage(std::move(hello));
  }

  Result<PeerMessage> DecodeSyncReply(const fb::SyncReply* in) const {
    SyncReply reply;
    reply.more = in->more();
    reply.snapshot_needed = in->snapshot_needed();
    if (const auto* deltas = in->deltas(); deltas != nullptr) {
      if (deltas->size() > limits_.max_sync_deltas) {
        return OverLimit("SyncReply.deltas", deltas->size(), "deltas", "max_sync_deltas", limits_.max_sync_deltas);
      }
      reply.deltas.reserve(deltas->size());
      for (flatbuffers::uoffset_t i = 0; i < deltas->size(); ++i) {
        auto delta = Payload(deltas->Get(i)->data(), "SyncReply.deltas[" + std::to_string(i) + "]");
        if (!delta.ok()) return delta.status();
        reply.deltas.push_back(std::move(*delta));
      }
    }
    return PeerMessage(std::move(reply));
  }

  const EnvelopeLimits& limits_;
};

// The verifier's table budget: the envelope, its body, one table per address
// book entry and per sync delta, each capped by the limits (which the decoder
// then enforces with a precise message); the clamp keeps it in uoffset_t.
flatbuffers::uoffset_t MaxTables(const EnvelopeLimits& limits) {
  constexpr std::size_t kCeiling = 1u << 30;
  const std::size_t tables =
      2 + std::min(limits.max_address_book, kCeiling) + std::min(limits.max_sync_deltas, kCeiling);
  return static_cast<flatbuffers::uoffset_t>(std::min(tables, kCeiling));
}

}  // namespace

Result<Envelope> DecodeEnvelope(std::string_view frame, const EnvelopeLimits& limits) {
  if (frame.size() > limits.max_frame_bytes) {
    return Status::TooLarge("envelope decode: frame is " + std::to_string(frame.size()) +
                            " bytes, over max_frame_bytes (" + std::to_string(limits.max_frame_bytes) + ")");
  }
  if (frame.size() < 2 * sizeof(flatbuffers::uoffset_t)) {
    return Malformed("frame of " + std::to_string(frame.size()) + " bytes is too short");
  }
  const AlignedBytes aligned(frame);  // FlatBuffers reads scalars in place
  const std::uint8_t* data = aligned.data();
  if (!flatbuffers::BufferHasIdentifier(data, kEnvelopeFileIdentifier)) {
    return Malformed(std::string("not an envelope (file identifier is not ") + kEnvelopeFileIdentifier + ")");
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = kMaxDepth;
  options.max_tables = MaxTables(limits);
  options.check_alignment = true;
  options.check_nested_flatbuffers = true;
  flatbuffers::Verifier verifier(data, frame.size(), options);
  if (!verifier.VerifyBuffer<fb::Envelope>(kEnvelopeFileIdentifier)) {
    return Malformed("FlatBuffers verification failed (truncated or corrupt buffer)");
  }
  const fb::Envelope* root = flatbuffers::GetRoot<fb::Envelope>(data);
  Decoder decoder(limits);
  auto message = decoder.Body(root);
  if (!message.ok()) return message.status();
  auto addresses = decoder.Addresses(root);
  if (!addresses.ok()) return addresses.status();
  return Envelope{std::move(*message), std::move(*addresses)};
}

const char* PeerMessageTypeName(const PeerMessage& message) {
  return std::visit(Overloaded{
                        [](const Hello&) { return "HELLO"; },
                        [](const Refuse&) { return "REFUSE"; },
                        [](const ms::Message& m) { return ms::MessageTypeName(m); },
                        [](const bc::Message& m) -> const char* {
                          static const char* const kNames[] = {"GOSSIP", "IHAVE", "GRAFT", "PRUNE"};
                          static_assert(std::size(kNames) == std::variant_size_v<bc::Message>);
                          return kNames[m.index()];
                        },
                        [](const SyncRequest&) { return "SYNC_REQUEST"; },
                        [](const SyncReply&) { return "SYNC_REPLY"; },
                        [](const SnapshotRequest&) { return "SNAPSHOT_REQUEST"; },
                        [](const SnapshotChunk&) { return "SNAPSHOT_CHUNK"; },
                        [](const LocatorState&) { return "LOCATOR_STATE"; },
                    },
                    message);
}

}  // namespace gv::wire
