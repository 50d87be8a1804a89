// The peer protocol's envelope: every frame on a peer TCP connection is one
// FlatBuffers Envelope (file identifier "GVE1"), verified before use.
//
// An envelope carries exactly one message — the handshake (Hello / Refuse), a
// HyParView message, a Plumtree message, or an anti-entropy message
// (SyncRequest / SyncReply) — plus an address book: the dial address of every
// node the message names (HyParView messages carry bare NodeIds; a node that
// learns of a peer through FORWARDJOIN, SHUFFLE or a NEIGHBOR refusal needs
// its address to connect to it).
//
// Plumtree payloads and SyncReply deltas are opaque bytes here: they are
// encoded deltas (wire/delta_codec.h, "GVD1") or overlay records ("GVO1"),
// each verified by its own decoder when the agent uses it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broadcast/plumtree.h"
#include "common/node_id.h"
#include "common/status.h"
#include "membership/hyparview.h"
#include "statestore/delta.h"

namespace gv::wire {

inline constexpr char kEnvelopeFileIdentifier[] = "GVE1";
inline constexpr std::uint32_t kPeerProtocolVersion = 1;

// First frame each side sends on a new connection. The receiver checks
// cluster and protocol_version and answers a mismatch with Refuse.
struct Hello {
  std::string cluster;
  std::uint32_t protocol_version = kPeerProtocolVersion;
  NodeId node;
  std::string name;
  std::string address;  // "IP:PORT" peers dial to reach this node
  bool operator==(const Hello&) const = default;
};

// Sent instead of (or in answer to) Hello when the connection is refused; the
// sender closes the connection after it. `reason` is for the other side's log.
struct Refuse {
  std::string reason;
  bool operator==(const Refuse&) const = default;
};

// Anti-entropy pull: "this is my applied vector; send what I lack".
struct SyncRequest {
  statestore::VersionVector applied;
  std::uint64_t max_reply_bytes = 0;  // the requester's bound on the reply's deltas
  // How long the requester was cut off from the cluster; beyond the
  // responder's tombstone_gc it must resync by snapshot, never by deltas.
  std::uint64_t away_ms = 0;
  bool operator==(const SyncRequest&) const = default;
};

// Encoded deltas ("GVD1" each) the requester lacks, in (origin, seq) order.
// more: the responder had more to send than max_reply_bytes allowed.
// snapshot_needed: the responder's retained tail does not reach back to what
// the requester lacks (or it was away longer than tombstone_gc); the requester
// should pull a snapshot (SnapshotRequest) instead.
struct SyncReply {
  std::vector<std::string> deltas;
  bool more = false;
  bool snapshot_needed = false;
  bool operator==(const SyncReply&) const = default;
};

// Snapshot transfer, pulled by the requester: `transfer` is its random
// non-zero id, `received` the number of chunks it holds (0 starts a transfer:
// the responder captures its state then), `window` how many chunks the
// responder may have in flight beyond `received`.
struct SnapshotRequest {
  std::uint64_t transfer = 0;
  std::uint64_t received = 0;
  std::uint32_t window = 0;
  bool operator==(const SnapshotRequest&) const = default;
};

// Chunk `index` of the snapshot stream (docs/snapshot_format.md), opaque here.
// A non-empty `error` ends the transfer: the responder cannot serve it.
struct SnapshotChunk {
  std::uint64_t transfer = 0;
  std::uint64_t index = 0;
  std::string data;
  bool last = false;
  std::string error;
  bool operator==(const SnapshotChunk&) const = default;
};

// The service locator's direct state exchange with a neighbour, opaque here.
struct LocatorState {
  std::string data;
  bool operator==(const LocatorState&) const = default;
};

using PeerMessage = std::variant<Hello, Refuse, membership::Message, broadcast::Message, SyncRequest, SyncReply,
                                 SnapshotRequest, SnapshotChunk, LocatorState>;

struct AddressBookEntry {
  NodeId node;
  std::string address;  // "IP:PORT"
  bool operator==(const AddressBookEntry&) const = default;
};

struct Envelope {
  PeerMessage message;
  std::vector<AddressBookEntry> addresses;
  bool operator==(const Envelope&) const = default;
};

// Limits DecodeEnvelope enforces (beyond the frame size the transport already
// bounds). Anything over a limit is refused, never truncated.
struct EnvelopeLimits {
  std::size_t max_frame_bytes = 16u << 20;
  std::size_t max_string_bytes = 256;        // cluster, name, address, reason
  std::size_t max_node_list = 256;           // ids in one HyParView message
  std::size_t max_address_book = 256;
  std::size_t max_ihave_entries = 4096;      // IHAVE / GRAFT entries
  std::size_t max_payload_bytes = 4u << 20;  // one Plumtree payload or one sync delta
  std::size_t max_sync_deltas = 65536;
  std::size_t max_vector_entries = 65536;    // SyncRequest.applied
};

// Deterministic: equal envelopes encode to equal bytes.
std::string EncodeEnvelope(const Envelope& envelope);

// Verifies the buffer (FlatBuffers Verifier with explicit depth/table limits,
// the file identifier, then every limit and rule above: non-zero node ids,
// a vector sorted by node with counters >= 1, exactly one message). Returns
// Corruption for a malformed buffer and InvalidArgument/TooLarge for a
// well-formed one that breaks a rule, each naming what is wrong. Accepts any
// alignment of `frame`.
Result<Envelope> DecodeEnvelope(std::string_view frame, const EnvelopeLimits& limits = {});

// "HELLO", "JOIN", "GOSSIP", "SYNC_REQUEST", ... for metrics labels.
const char* PeerMessageTypeName(const PeerMessage& message);

}  // namespace gv::wire
