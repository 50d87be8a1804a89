// A deterministic discrete-event network that drives the real HyParView and
// Plumtree cores, one pair per simulated node.
//
// Determinism: one master Prng (seeded from the config) draws everything —
// node PRNG streams are forked from it, link latencies are a hash of the seed
// and the two node ids, loss draws come from it in event order. Events are
// ordered by (time, sequence number), so the same seed reproduces the same
// trace bit for bit (trace_hash() summarises it).
//
// Network model (docs/simulation.md):
//   - every directed link has a fixed latency drawn once from `latency` (a
//     hash of seed and endpoints, no storage); so each link is FIFO, as TCP is;
//   - a crashed node's active peers see its connections close one link
//     latency later (crash_closes_connections);
//   - a message to a crashed node, a node of another partition, or a slow node
//     whose backlog exceeds send_queue_bound is dropped and the SENDER's
//     HyParView gets PeerDown after failure_detection_delay (for a live
//     receiver — slow or partitioned — the receiver also gets PeerDown: the
//     connection is closed at both ends);
//   - `loss` drops broadcast-layer messages silently (membership messages too
//     if loss_applies_to_membership): a lossy gossip transport;
//   - a slow node handles one message per slow_node_service_time.
// The glue: HyParView's NeighborUp/NeighborDown become Plumtree's inputs; both
// protocols' messages travel in one Envelope over the same links.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broadcast/plumtree.h"
#include "common/node_id.h"
#include "common/prng.h"
#include "common/time.h"
#include "membership/hyparview.h"
#include "sim/sim_options.h"

namespace gv::sim {

// Dense node index 0..size-1. NodeId = index + 1 (ids are never 0).
using NodeIndex = std::uint32_t;
inline NodeId IdOfIndex(NodeIndex index) { return NodeId(static_cast<std::uint64_t>(index) + 1); }
inline NodeIndex IndexOfId(NodeId id) { return static_cast<NodeIndex>(id.value - 1); }

// Both layers' messages on one link.
using Envelope = std::variant<membership::Message, broadcast::Message>;

// Counter slots: membership types first, then broadcast types.
constexpr std::size_t kMembershipTypes = std::variant_size_v<membership::Message>;
constexpr std::size_t kBroadcastTypes = std::variant_size_v<broadcast::Message>;
constexpr std::size_t kMessageTypes = kMembershipTypes + kBroadcastTypes;
std::size_t MessageTypeIndex(const Envelope& message);
const char* MessageTypeName(std::size_t type_index);  // "JOIN", ..., "GOSSIP", "IHAVE", "GRAFT", "PRUNE"
constexpr std::size_t kGossipType = kMembershipTypes + 0;  // broadcast::Gossip is alternative 0

enum class LatencyKind : std::uint8_t {
  kConstant,     // always min
  kUniform,      // uniform in [min, max]
  kExponential,  // min + exponential with mean `mean`, capped at max
};
struct LatencyModel {
  LatencyKind kind = LatencyKind::kUniform;
  Duration min = Millis(5);
  Duration max = Millis(50);
  Duration mean = Millis(20);  // kExponential only
};

struct NetworkConfig {
  LatencyModel latency;
  double loss = 0.0;
  bool loss_applies_to_membership = false;
  Duration failure_detection_delay = Millis(200);
  // A crashed process's kernel closes its sockets: each active peer sees the
  // connection end one link latency after the crash (PeerDown) without having
  // to send. false models a host that vanishes: peers only notice when a send
  // fails (the HyParView paper's model; keepalives bound the delay).
  bool crash_closes_connections = true;
  Duration slow_node_service_time = Millis(5);
  std::size_t send_queue_bound = 256;  // messages queued at a slow node before senders give up
};

struct SimConfig {
  std::uint64_t seed = 1;
  std::size_t nodes = 0;
  NetworkConfig network;
  membership::HyParViewConfig hyparview;
  broadcast::PlumtreeConfig plumtree;
  // Seeds each node remembers for re-joining: its contact plus this many more
  // random earlier nodes.
  std::size_t extra_seeds = 2;
  std::ostream* trace = nullptr;  // JSON lines (docs/simulation.md), not owned
};

// The config a scenario starts from: SimOptions' nodes, seed, trace, shuffle
// interval; the defaults for the rest.
SimConfig MakeSimConfig(const SimOptions& options);

// What the message hook sees for every message handed to a live receiver.
struct MessageEvent {
  TimePoint at;
  NodeIndex from;
  NodeIndex to;
  const Envelope& message;
};
// Every Plumtree Deliver (own broadcasts included, hops 0).
struct DeliverEvent {
  TimePoint at;
  NodeIndex node;
  const broadcast::Deliver& deliver;
};

struct SimCounters {
  std::uint64_t events = 0;
  std::uint64_t sent[kMessageTypes] = {};       // handed to the network
  std::uint64_t delivered[kMessageTypes] = {};  // reached a live receiver
  std::uint64_t lost = 0;                       // dropped by `loss`
  std::uint64_t undeliverable = 0;              // to crashed / partitioned / overloaded nodes
  std::uint64_t peer_down_notices = 0;
  std::uint64_t plumtree_deliveries = 0;
};

class Simulator {
 public:
  explicit Simulator(SimConfig config);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  const SimConfig& config() const { return config_; }
  std::size_t size() const { return nodes_.size(); }
  TimePoint now() const { return now_; }
  Prng& rng() { return rng_; }  // the master stream, for scenarios' own draws

  // ---- node lifecycle ----
  // Starts node `index` (a fresh HyParView and Plumtree) and joins through `contacts`.
  void StartNode(NodeIndex index, const std::vector<NodeId>& contacts);
  // Node 0 starts alone (its seeds, for a restart: nodes 1..1+extra_seeds);
  // node i joins through a random earlier node at i * join_interval from now
  // (its seeds: that contact plus extra_seeds more).
  // Returns when the last node has sent its JOIN.
  void JoinAll(Duration join_interval);
  // Crash: the node stops at once; its timers and in-flight messages to it are dropped.
  void Crash(NodeIndex index);
  // Restart a crashed node with empty state (same NodeId) through its seeds.
  void Restart(NodeIndex index);
  bool alive(NodeIndex index) const { return nodes_[index].alive; }
  std::size_t live_count() const { return live_count_; }
  std::vector<NodeIndex> LiveNodes() const;
  // Partition groups: messages between different groups are undeliverable.
  void SetPartition(NodeIndex index, std::uint32_t group);
  void HealPartitions();
  void SetSlow(NodeIndex index, bool slow);
  void SetLoss(double loss) { config_.network.loss = loss; }
  // SetShuffleEnabled on every live node's HyParView (and on nodes started later).
  void SetShuffleEnabled(bool enabled);

  // An exact copy of this simulator — every node, the event queue, the PRNG,
  // counters and in-flight bookkeeping — whose nodes run fresh Plumtrees of
  // `plumtree`, each told its node's active view, and which writes no trace.
  // The same overlay can then carry several broadcast variants without being
  // built again (a third of a 10,000-node broadcast scenario). Exact only
  // while no Plumtree has done anything but follow its neighbours (such a
  // Plumtree's whole state is its active view): otherwise returns null.
  std::unique_ptr<Simulator> ForkWithPlumtree(const broadcast::PlumtreeConfig& plumtree) const;
  // The same in place: every node's Plumtree is replaced by a fresh one of
  // `plumtree`, told its node's active view; the old ones' timers are dropped.
  // Lets a scenario build its overlay without Plumtree's periodic work (the
  // root beacon) and fork it, then start that work for the measured phase.
  void ResetPlumtrees(const broadcast::PlumtreeConfig& plumtree);

  // ---- broadcast ----
  // A BroadcastRequest at `origin` with id (origin, next sequence of that node).
  broadcast::MessageId Broadcast(NodeIndex origin, std::string payload);

  // ---- time ----
  void RunUntil(TimePoint until);
  void RunFor(Duration duration) { RunUntil(now_ + duration); }
  // Runs until no message or failure notice is in flight (timers may remain),
  // or `limit`. Returns true if quiet was reached.
  bool RunUntilQuiet(TimePoint limit);
  std::size_t in_flight() const { return in_flight_; }

  // ---- observation ----
  // One hook of each kind: setting one replaces the previous; an empty
  // function removes it (an observer that goes away clears its hook).
  void OnMessage(std::function<void(const MessageEvent&)> hook) { message_hook_ = std::move(hook); }
  void OnDeliver(std::function<void(const DeliverEvent&)> hook) { deliver_hook_ = std::move(hook); }
  const membership::HyParView& hyparview(NodeIndex index) const { return *nodes_[index].hyparview; }
  const broadcast::Plumtree& plumtree(NodeIndex index) const { return *nodes_[index].plumtree; }
  bool started(NodeIndex index) const { return nodes_[index].hyparview != nullptr; }
  const std::vector<NodeId>& seeds(NodeIndex index) const { return nodes_[index].seeds; }
  const SimCounters& counters() const { return counters_; }
  // A running 64-bit hash over every processed event (time, kind, endpoints, message type).
  std::uint64_t trace_hash() const { return trace_hash_; }
  // Bytes held by node `index`'s two protocol instances.
  std::size_t NodeMemoryBytes(NodeIndex index) const;

  // Among live nodes: active views symmetric with the same connection ids
  // (for every pair with no connection-changing message or failure notice in
  // flight between them), Plumtree eager ∪ lazy == HyParView active view and disjoint, both
  // cores' own invariants. On failure `why` names the node and the seed.
  bool CheckInvariants(std::string* why) const;

 private:
  struct Node {
    std::unique_ptr<membership::HyParView> hyparview;
    std::unique_ptr<broadcast::Plumtree> plumtree;
    std::vector<NodeId> seeds;
    std::uint32_t incarnation = 0;
    // Bumped when the Plumtree is replaced (ResetPlumtrees, forks): its old
    // timers are then stale.
    std::uint32_t plumtree_epoch = 0;
    std::uint32_t partition = 0;
    bool alive = false;
    bool slow = false;
    TimePoint busy_until{};
    std::uint32_t backlog = 0;
    std::uint64_t next_seq = 1;
  };
  struct MessageDelivery {
    NodeIndex from;
    NodeIndex to;
    std::uint32_t to_incarnation;
    Envelope message;
  };
  struct MembershipTimerEvent {
    NodeIndex node;
    std::uint32_t incarnation;
    membership::Timer timer;
  };
  struct BroadcastTimerEvent {
    NodeIndex node;
    std::uint32_t incarnation;
    std::uint32_t plumtree_epoch;
    broadcast::Timer timer;
  };
  struct PeerDownEvent {
    NodeIndex node;  // who is told
    std::uint32_t incarnation;
    NodeIndex peer;
    std::uint32_t peer_incarnation;  // the life of `peer` whose connection failed
  };
  struct JoinEvent {
    NodeIndex node;
    std::vector<NodeId> contacts;
  };
  using Event = std::variant<MessageDelivery, MembershipTimerEvent, BroadcastTimerEvent, PeerDownEvent, JoinEvent>;
  struct HeapEntry {
    std::int64_t at_us;
    std::uint64_t seq;
    std::uint32_t slot;
    NodeIndex node;  // where the event runs: only to prefetch its state, never part of the order
  };
  // The event queue is a calendar: time is cut into buckets of
  // kBucketWidthUs; the events of the bucket being run (and any earlier one)
  // sit in a vector sorted by (time, seq), later buckets within kRingBuckets
  // in an unsorted ring, the rest in a far heap. Nearly every event lands
  // within a few hundred milliseconds, so a push is an append, a bucket is
  // sorted once when it comes up, and a pop takes the next entry (the single
  // binary heap was the largest item of the 10,000-node profile). Sorted
  // rather than a heap, the next few events are known in advance, which
  // PrefetchAhead needs. The pop order is exactly (time, seq), as with one heap.
  static constexpr std::int64_t kBucketWidthUs = 1000;
  static constexpr std::int64_t kRingBuckets = 4096;
  static std::int64_t BucketOf(std::int64_t at_us) { return at_us / kBucketWidthUs; }
  // Min-heap order for std::*_heap: (time, seq) ascending.
  static bool Later(const HeapEntry& a, const HeapEntry& b) {
    return a.at_us != b.at_us ? a.at_us > b.at_us : a.seq > b.seq;
  }
  static bool Earlier(const HeapEntry& a, const HeapEntry& b) { return Later(b, a); }
  void QueuePush(const HeapEntry& entry);
  // The earliest queued event (null if none); may move the calendar forward.
  const HeapEntry* QueueTop();

  void Push(TimePoint at, Event event);
  void PushDelivery(TimePoint at, NodeIndex from, NodeIndex to, std::uint32_t to_incarnation, Envelope message);
  bool PopAndRun();
  void Process(Event& event);
  void Send(NodeIndex from, NodeIndex to, Envelope message);
  void NotifyPeerDown(NodeIndex node, NodeIndex peer);
  void NotifyPeerDownAfter(NodeIndex node, NodeIndex peer, Duration delay);
  Duration LinkLatency(NodeIndex from, NodeIndex to) const;
  void FeedMembership(NodeIndex index, const membership::InEvent& event);
  void FeedBroadcast(NodeIndex index, const broadcast::InEvent& event);
  // A fresh Plumtree of `plumtree` at `index`, told `peers` are up.
  // (`peers` by value: it is often the replaced instance's own neighbour list.)
  void ReplacePlumtree(NodeIndex index, const broadcast::PlumtreeConfig& plumtree, std::vector<NodeId> peers);
  void DrainMembership(NodeIndex index);
  void DrainBroadcast(NodeIndex index);
  void Trace(const char* kind, NodeIndex a, NodeIndex b, const char* type);
  void HashEvent(std::uint64_t kind, std::uint64_t a, std::uint64_t b, std::uint64_t c);

  SimConfig config_;
  Prng rng_;
  std::vector<Node> nodes_;
  std::size_t live_count_ = 0;
  bool shuffle_enabled_ = true;
  TimePoint now_{};
  std::uint64_t next_event_seq_ = 0;
  // Invariants: current_[current_pos_..] holds every queued event of a
  // bucket <= cursor_, sorted by Earlier (current_[..current_pos_] have run);
  // ring_ slot b % kRingBuckets holds the events of bucket b for cursor_ < b
  // < cursor_ + kRingBuckets; far_ holds the rest (all later than the ring).
  std::vector<HeapEntry> current_;
  std::size_t current_pos_ = 0;
  std::vector<std::vector<HeapEntry>> ring_;
  std::size_t ring_count_ = 0;
  std::vector<HeapEntry> far_;
  std::int64_t cursor_ = 0;
  // Events live in fixed chunks of slots: growing never moves the events
  // already stored, so an event runs in place while the events it schedules
  // are added, and a slot is found with a shift and a mask (std::deque,
  // with ~100-byte events, held 4 per block and cost a division per lookup).
  static constexpr std::uint32_t kSlotChunkBits = 12;
  static constexpr std::uint32_t kSlotChunkSize = 1u << kSlotChunkBits;
  Event& SlotAt(std::uint32_t slot) { return slot_chunks_[slot >> kSlotChunkBits][slot & (kSlotChunkSize - 1)]; }
  const Event& SlotAt(std::uint32_t slot) const {
    return slot_chunks_[slot >> kSlotChunkBits][slot & (kSlotChunkSize - 1)];
  }
  std::vector<std::unique_ptr<Event[]>> slot_chunks_;
  std::uint32_t slot_count_ = 0;  // slots ever handed out
  std::vector<std::uint32_t> free_slots_;
  // The event loop is bound by cache misses on the state of the node an
  // event runs at (10,000 nodes' protocol state is far larger than the
  // caches): while one event runs, the next three are fetched in a pipeline,
  // one level of pointers per event (see PrefetchAhead). Affects speed only.
  void PrefetchAhead();
  void PrefetchRecords(const HeapEntry& entry) const;   // the slot and the Node
  void PrefetchProtocol(const HeapEntry& entry) const;  // the core the event runs in, the message's heap data
  void PrefetchInside(const HeapEntry& entry) const;    // what that core reads first
  static NodeIndex NodeOf(const Event& event);
  std::size_t in_flight_ = 0;  // MessageDelivery + PeerDownEvent + JoinEvent in the queue
  // Per unordered pair of nodes: messages and failure notices in flight that
  // can open or close a connection between them. A pair at 0 must agree on
  // its connections (CheckInvariants), whatever else is in flight.
  std::unordered_map<std::uint64_t, std::uint32_t> pair_in_flight_;
  static std::uint64_t PairKey(NodeIndex a, NodeIndex b) {
    return a < b ? (static_cast<std::uint64_t>(a) << 32) | b : (static_cast<std::uint64_t>(b) << 32) | a;
  }
  static bool ChangesConnections(const Envelope& message);
  void PairInFlight(NodeIndex a, NodeIndex b, int delta);
  membership::Outbox membership_out_;
  broadcast::Outbox broadcast_out_;
  SimCounters counters_;
  std::uint64_t trace_hash_ = 0xcbf29ce484222325ULL;
  std::function<void(const MessageEvent&)> message_hook_;
  std::function<void(const DeliverEvent&)> deliver_hook_;
};

}  // namespace gv::sim
