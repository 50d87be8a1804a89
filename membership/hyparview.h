// HyParView (Leitão, Pereira, Rodrigues, "HyParView: a membership protocol for
// reliable gossip-based broadcast", DSN 2007) as a sans-IO state machine: one
// entry point, handle(event, now, outbox).
//
// Each node keeps a small symmetric ACTIVE view (peers it holds a connection
// to; the broadcast layer gossips over exactly these) and a larger PASSIVE view
// (addresses of live-looking nodes, refreshed by SHUFFLE random walks) from
// which it replaces active peers that fail.
//
// Connections. The paper relies on TCP to keep active views symmetric. Here a
// link is explicit: every active link is one or more CONNECTIONS, each named by
// a random 64-bit ConnectionId chosen by the side that opens it. A connection
// is opened by JOIN, FORWARDJOINREPLY or an accepted NEIGHBOR, and closed by
// DISCONNECT naming it (or by a transport failure, PeerDown). Both ends add a
// connection when they send/receive its opening and drop it when they
// send/receive its close, so over FIFO links the two ends agree on every
// connection once the messages in flight have arrived: active views are
// symmetric at quiescence. Two connections between the same pair (both sides
// opened one at once) are legal; each side closes the one with the larger id,
// so they converge to one. A peer is in the active view while it has at least
// one connection.
//
// Deviations from the paper, on purpose:
//   - the joiner counts its contact as an active peer as soon as it sends JOIN
//     (the contact always accepts a JOIN), so no JOIN reply is needed;
//   - a node whose active view is not full asks several passive peers at once
//     (up to the free slots) instead of one at a time, which shortens healing
//     after mass failures; a peer that rejected it is not asked again until
//     `neighbor_retry_interval` has passed;
//   - a refused NEIGHBOR brings fresh passive candidates (NeighborReply);
//   - KEEPALIVE on links this layer has not used for `keepalive_interval`
//     (sending is what detects a dead TCP peer) and a receive timeout for
//     half-open links;
//   - a node with neither active nor passive peers re-joins through its seeds
//     (the contacts of its JoinRequest) every keepalive tick until it has a peer;
//   - a node short of active peers with no passive peer left to ask takes
//     candidates from its host's member list (KnownPeers). In a small cluster
//     every node is active with every other, so passive views are empty: when
//     a node dies before shuffles have mixed them, the survivors can be left
//     in two components that nothing would ever join again (seen with 5
//     agents: kill -9 of one left two pairs, each knowing only its partner);
//   - a node reconnects to the active peers it lost to a failure, one every
//     `reconnect_interval` (as Serf does), so that two overlays left by a
//     network partition join again once it heals.
//
// Timers are values: the core asks for one with ScheduleTimer and never cancels
// it; a timer whose generation is stale when it fires is a no-op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/node_id.h"
#include "common/prefetch.h"
#include "common/prng.h"
#include "common/time.h"

namespace gv::membership {

using ConnectionId = std::uint64_t;

enum class Priority : std::uint8_t { kLow = 0, kHigh = 1 };

// ---- wire messages (the sender is known from the link) ----

// A new node asks its contact to take it in. Opens `connection`.
struct Join {
  ConnectionId connection = 0;
  bool operator==(const Join&) const = default;
};
// A random walk announcing `new_node`; ttl counts down from ARWL.
struct ForwardJoin {
  NodeId new_node;
  std::uint32_t ttl = 0;
  bool operator==(const ForwardJoin&) const = default;
};
// The end of a FORWARDJOIN walk took the new node in. Opens `connection`.
struct ForwardJoinReply {
  ConnectionId connection = 0;
  bool operator==(const ForwardJoinReply&) const = default;
};
// Asks the receiver to take the sender into its active view. kHigh is sent by
// a node with an empty active view and is always accepted.
//
// lost_for > 0 marks a reconnect (see HyParViewConfig::reconnect_interval):
// the sender lost its link to the receiver through a failure that long ago.
// A receiver that has not been running that long restarted since: it joined
// the overlay again on its own, so it refuses (the sender then forgets it);
// one that lived through the failure treats it as high priority.
struct Neighbor {
  Priority priority = Priority::kLow;
  ConnectionId connection = 0;
  Duration lost_for = Duration::zero();
  bool operator==(const Neighbor&) const = default;
};
// Answer to Neighbor. accepted: the receiver opened `connection`. A refusal
// carries up to kp fresh candidates (not in the paper): first the nodes the
// refuser itself refused in the last neighbor_retry_interval (they were short
// of peers too: two such nodes asking the same full node meet through it),
// then random active peers of the refuser (alive, unlike most passive entries
// after a mass failure). Without them a node whose candidates are all full
// stays short of peers until the next shuffle, and after a mass failure
// shuffles may be stopped. The requester tries them in order, first.
struct NeighborReply {
  ConnectionId connection = 0;
  bool accepted = false;
  std::vector<NodeId> candidates;
  bool operator==(const NeighborReply&) const = default;
};
// Closes `connection` (the sender moves the receiver to its passive view).
struct Disconnect {
  ConnectionId connection = 0;
  bool operator==(const Disconnect&) const = default;
};
// Passive-view exchange walking `ttl` hops; `nodes` = origin + ka active + kp passive.
struct Shuffle {
  NodeId origin;
  std::uint32_t ttl = 0;
  std::vector<NodeId> nodes;
  bool operator==(const Shuffle&) const = default;
};
// Sent straight to the shuffle's origin: the acceptor's sample of its passive view.
struct ShuffleReply {
  std::vector<NodeId> nodes;
  bool operator==(const ShuffleReply&) const = default;
};
struct KeepAlive {
  bool operator==(const KeepAlive&) const = default;
};
using Message = std::variant<Join, ForwardJoin, ForwardJoinReply, Neighbor, NeighborReply, Disconnect, Shuffle,
                             ShuffleReply, KeepAlive>;

// "JOIN", "FORWARDJOIN", ... (for counters and traces).
const char* MessageTypeName(const Message& message);
const char* MessageTypeName(std::size_t variant_index);

// ---- timers (plain values) ----

enum class TimerKind : std::uint8_t {
  kShuffle,  // start a shuffle, every shuffle_interval
  kTick,     // every keepalive_interval: keepalives, receive timeouts, refill, re-join
  kReconnect,  // every reconnect_interval while a failed peer is remembered
};
struct Timer {
  TimerKind kind = TimerKind::kTick;
  std::uint64_t generation = 0;
  auto operator<=>(const Timer&) const = default;
};

// ---- events ----

// Start (or restart) membership: remember the seeds and JOIN through one of
// them. Empty contacts: this is the first node of the overlay.
struct JoinRequest {
  std::vector<NodeId> contacts;
};
struct MessageReceived {
  NodeId from;
  Message message;
};
// The transport lost `peer` (connect failed, send failed, send queue over its
// bound, connection reset): every connection to it is gone.
struct PeerDown {
  NodeId peer;
};
struct TimerFired {
  Timer timer;
};
// Stops/starts the periodic shuffle (the mass-failure experiment of the paper
// measures healing and reliability with shuffles stopped).
struct SetShuffleEnabled {
  bool enabled = true;
};
// Nodes the host believes alive, learned outside this protocol (the agent's
// member list). Used only while wants_candidates(): up to
// shuffle_passive_count of them (a random sample of those not active, pending
// or passive already) join the passive view and are asked at once. Ignored
// otherwise, so at scale, where the passive view has askable peers, the
// views stay the protocol's own random sample.
struct KnownPeers {
  std::vector<NodeId> nodes;
};
using InEvent = std::variant<JoinRequest, MessageReceived, PeerDown, TimerFired, SetShuffleEnabled, KnownPeers>;

struct SendMessage {
  NodeId to;
  Message message;
  bool operator==(const SendMessage&) const = default;
};
// The transport may close its connection to `peer` (no active link left).
struct CloseConnection {
  NodeId peer;
  bool operator==(const CloseConnection&) const = default;
};
struct NeighborUp {
  NodeId peer;
  bool operator==(const NeighborUp&) const = default;
};
struct NeighborDown {
  NodeId peer;
  // The link failed (its connection broke, or it was silent past
  // keepalive_timeout) rather than being closed on purpose (DISCONNECT,
  // eviction): the member list suspects the peer.
  bool failed = false;
  bool operator==(const NeighborDown&) const = default;
};
struct ScheduleTimer {
  TimePoint at;
  Timer timer;
  bool operator==(const ScheduleTimer&) const = default;
};
using OutEvent = std::variant<SendMessage, CloseConnection, NeighborUp, NeighborDown, ScheduleTimer>;
struct Outbox {
  std::vector<OutEvent> events;
};

// ---- configuration ----

struct HyParViewConfig {
  std::size_t active_view_size = 5;             // the paper's fanout + 1
  std::size_t passive_view_size = 30;
  std::uint32_t active_random_walk_length = 6;  // ARWL
  std::uint32_t passive_random_walk_length = 3; // PRWL (< ARWL)
  std::size_t shuffle_active_count = 3;         // ka
  std::size_t shuffle_passive_count = 4;        // kp
  std::uint32_t shuffle_walk_length = 6;        // hops a SHUFFLE travels
  Duration shuffle_interval = Seconds(10);
  Duration keepalive_interval = Seconds(1);
  // An active peer heard nothing from (at this layer) for this long is dropped.
  // Must exceed keepalive_interval plus the worst link delay.
  Duration keepalive_timeout = Seconds(5);
  Duration neighbor_retry_interval = Seconds(2);
  // Seeds remembered from JoinRequest for re-joining.
  std::size_t max_seeds = 16;
  // Partition healing (not in the paper). An active peer lost to a failure
  // (PeerDown, keepalive timeout) is remembered for reconnect_timeout, at most
  // max_failed_peers of them (the oldest go first); every reconnect_interval
  // one of them, at random, is asked with a high-priority NEIGHBOR. A dead one
  // costs a failed dial; a live one in another component joins the two
  // overlays with this link. After a partition heals nothing else would:
  // each side's active views are full and its passive views name only its
  // own side, so the overlay stayed split for good (simulated: 120 nodes cut
  // in two for 15 s, still 2 components 120 s after the cut healed). Serf's
  // reconnect_interval (30 s) and reconnect_timeout (24 h) do the same job.
  // A zero interval disables it.
  Duration reconnect_interval = Seconds(30);
  Duration reconnect_timeout = Seconds(24 * 3600);
  std::size_t max_failed_peers = 16;
};

struct HyParViewStats {
  std::uint64_t joins_sent = 0;
  std::uint64_t joins_received = 0;
  std::uint64_t forward_joins_received = 0;
  std::uint64_t neighbor_requests_sent = 0;
  std::uint64_t neighbor_accepted = 0;  // replies received: accepted
  std::uint64_t neighbor_rejected = 0;  // replies received: rejected
  std::uint64_t disconnects_sent = 0;
  std::uint64_t disconnects_received = 0;
  std::uint64_t evictions = 0;          // active peers dropped to make room
  std::uint64_t shuffles_sent = 0;
  std::uint64_t shuffles_accepted = 0;  // walks that ended here
  std::uint64_t keepalives_sent = 0;
  std::uint64_t peer_down = 0;          // PeerDown events for an active peer
  std::uint64_t keepalive_timeouts = 0;
  std::uint64_t rejoins = 0;            // JOINs sent because the node was isolated
  std::uint64_t known_peers_taken = 0;  // KnownPeers nodes put into the passive view
  std::uint64_t reconnects_sent = 0;    // high-priority NEIGHBORs to a peer lost to a failure
  std::uint64_t reconnects_accepted = 0;
  std::uint64_t reconnects_refused = 0;  // the peer restarted since: forgotten
};

// ---- the state machine ----

class HyParView {
 public:
  // `rng` is this node's own stream (the simulator forks one per node).
  HyParView(NodeId self, HyParViewConfig config, Prng rng);

  void handle(const InEvent& event, TimePoint now, Outbox& out);

  NodeId self() const { return self_; }
  const HyParViewConfig& config() const { return config_; }
  const HyParViewStats& stats() const { return stats_; }
  // Active peers in ascending NodeId order.
  std::vector<NodeId> active_view() const;
  std::size_t active_size() const { return active_.size(); }
  bool is_active(NodeId peer) const { return FindActive(peer) != nullptr; }
  // A hint with no effect on state or output: asks the CPU to fetch the
  // active view, which every message and tick reads first. A driver with
  // many instances (the simulator) calls it for the next event while the
  // current one runs.
  void Prefetch() const { PrefetchBytes(active_.data(), active_.size() * sizeof(ActivePeer)); }
  const std::vector<NodeId>& passive_view() const { return passive_; }
  std::size_t pending_neighbor_requests() const { return pending_.size(); }
  // Peers asked with NEIGHBOR and not answered yet, with the connection offered.
  const std::map<NodeId, ConnectionId>& pending_requests() const { return pending_; }
  // The active view has a free slot (not counting pending requests) and no
  // passive peer can be asked (each is pending or refused us in this retry
  // round): the host may offer KnownPeers.
  bool wants_candidates() const;
  // Open connections to `peer` (empty if it is not active), ascending.
  std::vector<ConnectionId> connections_to(NodeId peer) const;

  // Estimate of the heap held by this instance.
  std::size_t memory_bytes() const;

  // Views within their bounds, no self, active ∩ passive = ∅, no duplicates,
  // every active peer with ≥ 1 connection. On failure writes why (if non-null).
  bool CheckInvariants(std::string* why) const;

 private:
  struct ActivePeer {
    NodeId id;
    std::vector<ConnectionId> connections;  // ascending; normally one
    TimePoint last_sent;                    // last message this layer sent on the link
    TimePoint last_received;                // last message this layer received from the peer
  };

  void OnJoinRequest(const JoinRequest& request, TimePoint now, Outbox& out);
  void OnMessage(NodeId from, const Message& message, TimePoint now, Outbox& out);
  void OnJoin(NodeId from, const Join& join, TimePoint now, Outbox& out);
  void OnForwardJoin(NodeId from, const ForwardJoin& forward, TimePoint now, Outbox& out);
  void OnNeighbor(NodeId from, const Neighbor& request, TimePoint now, Outbox& out);
  void OnNeighborReply(NodeId from, const NeighborReply& reply, TimePoint now, Outbox& out);
  void OnDisconnect(NodeId from, const Disconnect& disconnect, TimePoint now, Outbox& out);
  void OnShuffle(NodeId from, const Shuffle& shuffle, TimePoint now, Outbox& out);
  void OnShuffleReply(const ShuffleReply& reply);
  void OnPeerDown(NodeId peer, TimePoint now, Outbox& out);
  void OnKnownPeers(const KnownPeers& known, TimePoint now, Outbox& out);
  // Remembers an active peer lost to a failure and arms the reconnect timer.
  void NoteFailedPeer(NodeId peer, TimePoint now, Outbox& out);
  void OnReconnectTimer(TimePoint now, Outbox& out);
  // Not pending and not refused in this retry round.
  bool Askable(NodeId peer) const { return pending_.count(peer) == 0 && tried_.count(peer) == 0; }
  void OnTimer(const Timer& timer, TimePoint now, Outbox& out);
  void OnTick(TimePoint now, Outbox& out);
  void StartShuffle(TimePoint now, Outbox& out);

  void Send(NodeId to, Message message, TimePoint now, Outbox& out);
  ConnectionId NewConnectionId();
  // Adds connection `connection` to `peer`, making room first (evicting a
  // random other active peer) if the peer is new and the view is full.
  void AddConnection(NodeId peer, ConnectionId connection, TimePoint now, Outbox& out);
  // Drops one connection; the peer leaves the active view when it was the
  // last one. to_passive: keep the peer as a passive candidate.
  void RemoveConnection(NodeId peer, ConnectionId connection, bool to_passive, Outbox& out, bool failed = false);
  // Drops the peer and all its connections, sending DISCONNECT for each if `notify`.
  void DropActivePeer(NodeId peer, bool notify, bool to_passive, TimePoint now, Outbox& out, bool failed = false);
  void EvictRandomActive(NodeId keep, TimePoint now, Outbox& out);
  void AddPassive(NodeId peer);
  // Inserts shuffled-in nodes, evicting preferably the ones in `sent_first`.
  void MergeIntoPassive(const std::vector<NodeId>& nodes, const std::vector<NodeId>& sent_first);
  void RemovePassive(NodeId peer);
  // Asks passive peers to fill the free active slots.
  void FillActiveView(TimePoint now, Outbox& out);
  void RejoinIfIsolated(TimePoint now, Outbox& out);
  std::vector<NodeId> SampleActive(std::size_t count, NodeId exclude1, NodeId exclude2);
  std::vector<NodeId> SamplePassive(std::size_t count);

  ActivePeer* FindActive(NodeId peer);
  const ActivePeer* FindActive(NodeId peer) const;

  NodeId self_;
  HyParViewConfig config_;
  Prng rng_;
  HyParViewStats stats_;

  std::vector<ActivePeer> active_;    // ascending by id; size <= active_view_size
  std::vector<NodeId> passive_;       // unordered (insertion order); size <= passive_view_size
  std::map<NodeId, ConnectionId> pending_;  // NEIGHBOR requests awaiting a reply
  std::set<NodeId> tried_;            // asked (and refused) since retry_round_start_
  TimePoint retry_round_start_{};
  // Nodes we recently refused (they were short of peers then), newest last,
  // at most kSeekersKept, handed out first in later refusals: two nodes short
  // of peers that ask the same full node meet through it.
  static constexpr std::size_t kSeekersKept = 8;
  std::vector<std::pair<NodeId, TimePoint>> recent_seekers_;
  // Candidates from the last refusal, tried before random passive peers.
  std::vector<NodeId> preferred_;
  std::vector<NodeId> seeds_;
  std::vector<NodeId> last_shuffle_sent_;  // what our last SHUFFLE carried
  bool started_ = false;
  TimePoint started_at_{};  // the first JoinRequest: how long this instance has run
  bool shuffle_enabled_ = true;
  std::uint64_t shuffle_generation_ = 0;
  std::uint64_t tick_generation_ = 0;
  // Active peers lost to a failure, oldest first, with when; at most
  // max_failed_peers, none active. The reconnect timer runs while non-empty
  // (reconnect_armed_: exactly one is scheduled then).
  std::vector<std::pair<NodeId, TimePoint>> failed_peers_;
  bool reconnect_armed_ = false;
  // Reconnect requests in flight (a subset of pending_'s keys), for the stats.
  std::set<NodeId> reconnecting_;
};

}  // namespace gv::membership
