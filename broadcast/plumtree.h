// Plumtree (Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees", SRDS 2007)
// as a sans-IO state machine: one entry point, handle(event, now, outbox).
//
// Every node keeps its active neighbours (given by the membership layer through
// NeighborUp/NeighborDown) split into two disjoint sets:
//   eager: the payload (GOSSIP) is pushed to them at once — the spanning tree;
//   lazy:  only the id is announced (IHAVE, batched) — the repair links.
// The first copy of a message that reaches a node makes its sender eager; every
// further copy is a duplicate, and its sender is pruned (moved to lazy and told
// with PRUNE). A node that hears of a message only through IHAVE waits
// `graft_timeout`, then GRAFTs one announcer (that link becomes eager again and
// the announcer resends the payload); if that fails too, it GRAFTs the next
// announcer after the shorter `graft_retry_timeout`.
//
// Origin-aware trees (an option, off by default since the root beacon below
// does better; max_origin_trees). One shared tree
// serves every origin, but a tree is shortest only from the node it grew from:
// from other origins its paths are up to twice as long, and the paper's
// hop-difference repair then rewires the shared tree for every new origin.
// An origin that broadcasts often (origin_tree_min_broadcasts, each within
// origin_tree_burst_gap of the previous) flags its GOSSIPs `origin_tree`;
// every node then keeps a separate eager/lazy split for that origin (copied
// from the shared tree when first needed, at most max_origin_trees, least
// recently used out first). An origin tree is DIRECTED: its eager set is whom
// we push that origin's payloads to. A duplicate makes us send PRUNE (the
// sender stops pushing to us) without touching our own sets; a GRAFT makes the
// grafter one of our eager peers. With messages pipelined down a tree that is
// being repaired, the undirected rule of the paper (a duplicate cuts the link
// both ways) cuts the branch a node just chose; the directed rule cannot.
// PRUNE and GRAFT name the origin whose tree they change, and the
// hop-difference rule (also on a duplicate that took the shorter path) runs
// on origin trees with its own threshold, so each frequent origin converges
// to a short tree of its own without disturbing the shared one. Rare origins
// use the shared tree as in the paper, with a duplicate threshold before
// pruning (prune_after_duplicates).
//
// Root beacon (our improvement for uniformly random senders). Left to itself
// the shared tree is whatever first arrivals from many origins and the
// duplicates between them leave: an arbitrary spanning tree, far deeper than
// the overlay (from a random origin its paths are ~3x flooding's). A tree
// shortest from one central node serves every origin within about its own
// eccentricity. So the nodes elect a root (the lowest RootPriority among the
// beacons heard; a node with no live root stands after a delay spread over
// root_election_window by its priority, so the best candidate usually speaks
// first and silences the rest), the root broadcasts an empty beacon on the
// shared tree every root_beacon_interval, and only the current root's beacons
// shape the shared tree: a duplicate beacon prunes at once, and the
// hop-difference rule (root_hop_optimization_threshold) moves every node to
// a neighbour nearer the root. The shared tree becomes a hop-shortest tree
// from the root. Beacons from a worse root are not forwarded; a root not
// heard for root_beacon_timeout is presumed gone and a new one is elected.
// Beacon ids carry kBeaconSeqTag in their sequence, are never delivered to
// the application, and always travel on the shared tree.
//
// Deviations from the 2007 listing, on purpose:
//   - eager/lazy push skip the SENDER of the message, not self (the listing's bug);
//   - payload cache and seen-id set are bounded by count and evicted by age;
//   - messages from a peer that is not (or no longer) an active neighbour are
//     delivered but never change the eager/lazy sets, so eager ∪ lazy always
//     equals the active view the membership layer announced.
//   - NeighborUp sends the new neighbour one IHAVE with the ids delivered in
//     the last link_up_announce_window (payloads still cached), so a node that
//     was cut off grafts what it missed (the paper announces each id once).
//
// Timers are values: the core asks for one with ScheduleTimer and never cancels
// it; a timer that fires after its reason went away is a no-op.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broadcast/message_id.h"
#include "broadcast/seen_table.h"
#include "common/node_id.h"
#include "common/node_set.h"
#include "common/time.h"

namespace gv::broadcast {

// ---- wire messages -------------------------------------------------------

// round = hops from the origin so far: the origin sends round 0; a node that
// delivered a message at hop h forwards it with round h.
struct Gossip {
  MessageId id;
  std::uint32_t round = 0;
  std::string payload;
  bool origin_tree = false;  // travels on the origin's own tree (see above)
  bool operator==(const Gossip&) const = default;
};
struct IHaveEntry {
  MessageId id;
  std::uint32_t round = 0;  // the announcer's own delivery hop for `id`
  bool operator==(const IHaveEntry&) const = default;
};
struct IHave {  // batched announcements
  std::vector<IHaveEntry> entries;
  bool operator==(const IHave&) const = default;
};
// Makes the link eager again and asks for the payloads of `entries` (may be
// empty: a pure tree repair from the hop-difference optimisation).
struct Graft {
  std::vector<IHaveEntry> entries;
  // The origin whose own tree the link joins (none: the shared tree).
  std::optional<NodeId> origin{};
  bool operator==(const Graft&) const = default;
};
// Takes the link out of the tree of `origin`'s messages (the origin of the
// duplicate; none: the shared tree).
struct Prune {
  std::optional<NodeId> origin{};
  bool operator==(const Prune&) const = default;
};
using Message = std::variant<Gossip, IHave, Graft, Prune>;

// ---- timers (plain values) -------------------------------------------------

enum class TimerKind : std::uint8_t {
  kGraft,       // `id` is still missing: graft the next announcer
  kIHaveFlush,  // send the IHAVE entries queued for lazy peers
  kSweep,       // evict payloads and seen ids older than their limits
  kReannounce,  // announce `id` again to neighbours not known to have it
  kBeacon,      // every root_beacon_interval: the root beacons, others check it is alive
  kCandidacy,   // no live root: stand as root now
};
struct Timer {
  TimerKind kind = TimerKind::kSweep;
  MessageId id;                  // kGraft, kReannounce
  std::uint64_t generation = 0;  // kGraft: matches the missing entry's armed timer, else stale
  auto operator<=>(const Timer&) const = default;
};

// ---- events ------------------------------------------------------------------

struct NeighborUp { NodeId peer; };
struct NeighborDown { NodeId peer; };
struct MessageReceived { NodeId from; Message message; };
// The caller picks the id (origin=self, seq). background: periodic
// bookkeeping (overlay records) that always travels on the shared tree and
// does not count toward this node's burst, so it never makes the node a
// frequent origin with a tree of its own (see the top of this file).
// Sequence numbers with both top bits set are root beacons' (see the top of
// this file); a BroadcastRequest must not use them.
inline constexpr std::uint64_t kBeaconSeqTag = 3ull << 62;
inline bool IsBeaconId(const MessageId& id) { return (id.seq & kBeaconSeqTag) == kBeaconSeqTag; }
// The root is the node of least priority: a fixed mix of its id, so that
// ids handed out in order (the simulator's 1..N) still spread the candidacy
// delays over the election window.
std::uint64_t RootPriority(NodeId id);

struct BroadcastRequest {
  MessageId id;
  std::string payload;
  bool background = false;
};
struct TimerFired { Timer timer; };
using InEvent = std::variant<NeighborUp, NeighborDown, MessageReceived, BroadcastRequest, TimerFired>;

struct SendMessage {
  NodeId to;
  Message message;
  bool operator==(const SendMessage&) const = default;
};
// hops: the origin's own delivery is 0, its direct receivers 1. `from` is the
// peer the payload came from (the node itself for its own broadcast).
struct Deliver {
  MessageId id;
  std::string payload;
  std::uint32_t hops = 0;
  NodeId from;
  bool operator==(const Deliver&) const = default;
};
struct ScheduleTimer {
  TimePoint at;
  Timer timer;
  bool operator==(const ScheduleTimer&) const = default;
};
using OutEvent = std::variant<SendMessage, Deliver, ScheduleTimer>;
struct Outbox {
  std::vector<OutEvent> events;
};

// ---- configuration -------------------------------------------------------------

struct PlumtreeConfig {
  // Baseline for comparisons: push every payload to every neighbour but the
  // sender; never prune, never announce lazily, never graft.
  bool eager_flooding = false;

  // First wait after the first IHAVE for a missing id, then the shorter wait
  // before each further announcer is grafted (the paper's timeouts 1 and 2).
  Duration graft_timeout = Millis(400);
  Duration graft_retry_timeout = Millis(200);
  // Announcers remembered per missing id, and missing ids tracked at once.
  std::size_t max_announcers_per_id = 16;
  // Grafts sent for one missing id before it is given up. Announcers are tried
  // in turn (oldest first, then again from the start), so a GRAFT or its reply
  // lost on a lossy link is retried on the next timeout.
  std::uint32_t max_graft_attempts = 24;
  std::size_t max_missing_ids = 16384;

  // IHAVE entries for one lazy peer are collected for this long and sent as
  // one message (0: send each announcement at once); at most this many per message.
  // 200 ms: with frequent broadcasts one IHAVE carries several ids, which cuts
  // the IHAVE message count (most of the control traffic) roughly by the
  // number of broadcasts per interval, for up to 200 ms more repair latency.
  Duration ihave_flush_interval = Millis(200);
  std::size_t max_ihave_entries = 512;

  // For lossy transports (the simulator's loss scenario; TCP links need none):
  // announce each id this many times in all, `reannounce_interval` apart, to
  // every neighbour not known to hold it (a neighbour holds it once it sent us
  // the GOSSIP or an IHAVE for it). 1 = the paper: one IHAVE to lazy peers only.
  std::uint32_t announce_rounds = 1;
  Duration reannounce_interval = Millis(300);
  std::size_t max_reannounced_ids = 4096;

  // A new neighbour is sent one IHAVE with the ids this node delivered in
  // the last link_up_announce_window whose payloads it still holds (newest
  // first, at most max_ihave_entries), so it grafts what it missed while it
  // was not linked to us. Without it, a node that lost every neighbour (a
  // third of the survivors when 80% of a 5-peer overlay fails at once) never
  // hears of the broadcasts sent before it re-linked: nobody announces an id
  // twice. Measured at 10,000 nodes, 80% failure, 1,000 broadcasts: see
  // docs/simulation.md. 0 disables it (the paper).
  Duration link_up_announce_window = Seconds(10);

  // Payloads are kept (to answer GRAFTs) for payload_ttl; ids are remembered
  // (to drop duplicates) for seen_ttl >= payload_ttl. Both also capped by count:
  // the oldest entries go first.
  Duration payload_ttl = Seconds(30);
  std::size_t max_cached_payloads = 8192;
  std::size_t max_cached_payload_bytes = 64u << 20;
  Duration seen_ttl = Seconds(120);
  std::size_t max_seen_ids = 65536;
  Duration sweep_interval = Seconds(1);
  // A payload longer than this is neither delivered nor forwarded.
  std::size_t max_payload_bytes = 1 << 20;

  // Hop-difference optimisation (the paper's section 3.8): an IHAVE for a
  // message we already have whose path would have been at least this many hops
  // shorter makes its sender eager (GRAFT without ids) and prunes the peer the
  // payload came from. 0 disables it.
  // Off by default on the shared tree: with many origins it rewires the tree
  // for each of them (the paper's variant costs 1.6 GRAFT+PRUNE per node per
  // broadcast with 10 senders, see the variant comparison in
  // docs/simulation.md); the root's beacons apply it instead
  // (root_hop_optimization_threshold), for one origin only.
  std::uint32_t hop_optimization_threshold = 0;

  // Random-sender improvement: a peer is pruned only after it sent this many
  // duplicates since it last sent a first copy (1 = the paper's behaviour).
  // Shared tree only (an origin's own tree prunes at the first duplicate). 5
  // by default: a link that carried a duplicate for one origin often carries
  // first copies for another, and pruning at the first duplicate lets
  // concurrent messages of different origins cut both links of a cycle, which
  // the graft timeouts then repair with more cycles. The price: a single
  // sender's first broadcast floods. Applies only while no root is live
  // (before the first beacon, or after the root was presumed gone): with a
  // root, only its beacons prune the shared tree (see the top of this file).
  std::uint32_t prune_after_duplicates = 5;

  // Origin-aware trees (see the top of this file). 0 trees: one shared tree.
  // Off by default since the root beacon: the root's hop-shortest tree gives
  // every origin paths about as short as flooding's with no per-origin
  // upkeep, while an origin tree grown from that thin tree needed thousands of
  // hop-difference switches and graft timeouts to settle (a 2,000-node
  // overlay: ~9,000 graft timeouts for one new frequent sender, where one
  // tree per overlay costs none; docs/simulation.md).
  std::size_t max_origin_trees = 0;
  // An origin flags its messages from its 2nd broadcast within a burst (own
  // broadcasts at most origin_tree_burst_gap apart): a node sending that
  // often is worth a tree; a node of 10,000 broadcasting at random rarely is.
  std::uint32_t origin_tree_min_broadcasts = 2;
  Duration origin_tree_burst_gap = Seconds(10);
  // Trees (and bursts) idle this long are dropped.
  Duration origin_tree_idle_timeout = Seconds(60);
  // Hop-difference threshold on per-origin trees (0 disables): each origin's
  // tree only serves that origin, so repairing it never hurts another one.
  std::uint32_t origin_hop_optimization_threshold = 2;
  // A new origin tree starts as a copy of the shared tree (no extra traffic;
  // the hop-difference rule then shortens it), or with every link eager (the
  // first flagged message floods once and its duplicates prune the tree to
  // the latency-shortest one). Measured (10 senders, 500 nodes, 1,000
  // broadcasts, before the duplicate threshold was raised to 5): the copy
  // cost less (RMR 0.022 vs 0.053, GRAFT+PRUNE 0.037 vs 0.050 per node per
  // broadcast) for the same path lengths.
  bool origin_tree_starts_flooding = false;

  // Root beacon (see the top of this file). 0 disables it: the shared tree is
  // then shaped by whatever traffic it carries (the paper).
  Duration root_beacon_interval = Seconds(5);
  // A root not heard from for this long is presumed gone (3 beacons missed).
  Duration root_beacon_timeout = Seconds(16);
  // A node without a live root stands as root after
  // RootPriority(self) / 2^64 of this window (from its first neighbour, or
  // from the moment it found its root gone).
  Duration root_election_window = Seconds(5);
  // Hop-difference threshold for the root's beacons: 1 makes the shared
  // tree hop-shortest from the root.
  std::uint32_t root_hop_optimization_threshold = 1;
};

// The algorithm exactly as published (shared tree, hop-difference threshold 3,
// prune at the first duplicate, no announcement to new neighbours): the baseline our defaults are compared with.
PlumtreeConfig PaperPlumtreeConfig();

struct PlumtreeStats {
  std::uint64_t broadcasts = 0;          // BroadcastRequests accepted
  std::uint64_t delivered = 0;           // Deliver events (own broadcasts included)
  std::uint64_t duplicates = 0;          // GOSSIPs for ids already seen
  std::uint64_t gossip_sent = 0;
  std::uint64_t ihave_sent = 0;          // IHAVE messages (batches)
  std::uint64_t ihave_entries_sent = 0;  // ids announced
  std::uint64_t graft_sent = 0;
  std::uint64_t prune_sent = 0;
  std::uint64_t graft_received = 0;
  std::uint64_t prune_received = 0;
  std::uint64_t graft_timeouts = 0;      // graft timers that found the id still missing
  std::uint64_t hop_optimizations = 0;   // tree repairs from the hop-difference rule
  std::uint64_t graft_unanswerable = 0;  // GRAFT for an id no longer cached
  std::uint64_t payload_evictions = 0;
  std::uint64_t seen_evictions = 0;
  std::uint64_t missing_dropped = 0;     // missing ids given up (cap, or no announcer left)
  std::uint64_t rejected_oversize = 0;
  std::uint64_t from_non_neighbor = 0;   // messages from peers outside the active view
  std::uint64_t reannounced = 0;         // IHAVE entries sent by announce rounds after the first
  std::uint64_t link_up_announced = 0;   // IHAVE entries sent to new neighbours (link_up_announce_window)
  std::uint64_t origin_trees_created = 0;
  std::uint64_t origin_trees_evicted = 0;
  std::uint64_t beacons_sent = 0;        // beacons this node sent as root
  std::uint64_t beacons_suppressed = 0;  // beacons of a worse root, not forwarded
  std::uint64_t root_changes = 0;        // times this node took a different root
  std::uint64_t roots_lost = 0;          // roots presumed gone (root_beacon_timeout)
  std::uint64_t rejected_reserved_id = 0;  // BroadcastRequests with a beacon id
};

// ---- the state machine -----------------------------------------------------------

class Plumtree {
 public:
  Plumtree(NodeId self, PlumtreeConfig config);

  void handle(const InEvent& event, TimePoint now, Outbox& out);

  NodeId self() const { return self_; }
  const PlumtreeConfig& config() const { return config_; }
  const PlumtreeStats& stats() const { return stats_; }
  const NodeSet& eager_peers() const { return eager_; }
  const NodeSet& lazy_peers() const { return lazy_; }
  // eager ∪ lazy, ascending: the active view as the membership layer announced it.
  const std::vector<NodeId>& neighbors() const { return neighbors_; }
  std::size_t cached_payloads() const { return cached_payloads_; }
  std::size_t seen_ids() const { return seen_.size(); }
  std::size_t missing_ids() const { return missing_.size(); }
  std::size_t origin_trees() const { return origin_trees_.size(); }
  // The eager peers used for `origin`'s messages (its own tree if kept here).
  const NodeSet& eager_peers_for(NodeId origin) const;
  bool has_seen(const MessageId& id) const { return seen_.Contains(id); }
  // The root this node follows (itself if it is the root); none before the
  // first beacon and after the root was presumed gone.
  std::optional<NodeId> root() const { return root_; }

  // A hint with no effect on state or output: asks the CPU to fetch the
  // memory that handling `message` reads first (its seen-id slots, the
  // neighbour list, the IHAVE batches, the ends of the age queues). A driver
  // with many instances (the simulator) calls it for the next message while
  // the current one is handled; 10,000 nodes' state is far larger than the caches.
  void Prefetch(const Message& message) const;

  // Estimate of the heap held by this instance (containers and payloads).
  std::size_t memory_bytes() const;

  // eager ∩ lazy = ∅, self in neither, caches within their caps, bookkeeping
  // consistent. On failure writes the reason to *why (if non-null).
  bool CheckInvariants(std::string* why) const;

 private:
  using SeenEntry = SeenTable::Record;
  // A payload-cache cell (SeenEntry::payload names it); free cells are reused.
  struct CachedPayload {
    std::string payload;
    bool origin_tree = false;
  };
  struct OriginTree {
    NodeSet eager;  // we push this origin's payloads to them
    NodeSet lazy;   // we only announce to them
    // Peers we sent PRUNE for this origin (they should no longer push to us).
    // A first copy from one of them was already in flight when we cut that
    // branch, so it must not make us cut the branch we kept.
    NodeSet silenced;
    TimePoint last_used;
  };
  // The eager/lazy pair a message travels on.
  struct Tree {
    NodeSet& eager;
    NodeSet& lazy;
    std::optional<NodeId> origin;  // for PRUNE/GRAFT: none = the shared tree
    NodeSet* silenced = nullptr;  // origin trees only
  };
  struct Announcement {
    NodeId peer;
    std::uint32_t round = 0;
  };
  struct Missing {
    // In arrival order, graft the oldest first. At most
    // max_announcers_per_id (16): a vector, since a deque allocated a
    // 512-byte block for every id heard of through IHAVE first.
    std::vector<Announcement> announcers;
    std::uint64_t armed_generation = 0;   // 0: no graft timer pending
    std::uint32_t grafts_sent = 0;
  };

  void OnNeighborUp(NodeId peer, TimePoint now, Outbox& out);
  void OnNeighborDown(NodeId peer);
  // One IHAVE to a new neighbour with the recent ids it may have missed.
  void AnnounceRecent(NodeId peer, TimePoint now, Outbox& out);
  void OnBroadcast(const BroadcastRequest& request, TimePoint now, Outbox& out);
  void OnGossip(NodeId from, const Gossip& gossip, TimePoint now, Outbox& out);
  void OnIHave(NodeId from, const IHave& ihave, TimePoint now, Outbox& out);
  void OnGraft(NodeId from, const Graft& graft, TimePoint now, Outbox& out);
  void OnPrune(NodeId from, const Prune& prune, TimePoint now);
  void OnTimer(const Timer& timer, TimePoint now, Outbox& out);

  // Delivers, records and pushes a first copy (shared by own broadcasts and GOSSIPs).
  void AcceptFirstCopy(const MessageId& id, const std::string& payload, bool origin_tree, std::uint32_t hops,
                       NodeId from, TimePoint now, Outbox& out);
  void EagerPush(const Tree& tree, const MessageId& id, const std::string& payload, bool origin_tree,
                 std::uint32_t hops, NodeId sender, Outbox& out);
  // `holders` announced the id to us, so they need no IHAVE for it.
  void LazyPush(const Tree& tree, const MessageId& id, std::uint32_t hops, NodeId sender, const NodeSet& holders,
                TimePoint now, Outbox& out);
  // Hop-difference rule: `announcer` has `id` at `announced_round`; if that is
  // shorter than our path by the threshold, it becomes our parent for the tree.
  // On an origin tree, a duplicate that took a path shorter by the threshold
  // replaces the branch of the first copy. Returns true if it did.
  bool KeepShorterBranch(const Tree& tree, const Gossip& gossip, NodeId from, Outbox& out);
  void MaybeOptimize(const MessageId& id, NodeId announcer, std::uint32_t announced_round, TimePoint now,
                     Outbox& out);
  // The same for a seen record already looked up (no Insert/Erase since).
  void MaybeOptimize(SeenEntry& entry, NodeId announcer, std::uint32_t announced_round, TimePoint now, Outbox& out);
  void DropPayload(SeenEntry& entry);
  // Forgets the oldest seen id (and its payload, if still cached).
  void EvictOldestSeen();
  void QueueIHave(NodeId peer, const IHaveEntry& entry, TimePoint now, Outbox& out);
  void FlushIHaves(Outbox& out);
  void SendPrune(const Tree& tree, NodeId peer, Outbox& out);
  void SendGraft(const Tree& tree, NodeId peer, std::vector<IHaveEntry> entries, Outbox& out);
  void ArmGraftTimer(const MessageId& id, Missing& missing, Duration after, TimePoint now, Outbox& out);
  // The tree for `origin`'s messages; `create` makes it a copy of the shared
  // tree if none is kept yet (a flagged GOSSIP, or a PRUNE/GRAFT naming it).
  Tree TreeFor(NodeId origin, bool create, TimePoint now);
  Tree SharedTree() { return Tree{eager_, lazy_, std::nullopt}; }
  void TouchOriginTree(NodeId origin, OriginTree& tree, TimePoint now);
  bool OwnOriginTreeDue(TimePoint now);
  static void MakeEager(const Tree& tree, NodeId peer);
  static void MakeLazy(const Tree& tree, NodeId peer);
  // The array is often empty (streaks end at the first first copy): skip
  // the lookup then, it runs for every first copy.
  void ClearStreak(NodeId peer) {
    if (duplicate_streak_.empty()) return;
    auto it = FindStreak(peer);
    if (it != duplicate_streak_.end() && it->first == peer) duplicate_streak_.erase(it);
  }
  std::vector<std::pair<NodeId, std::uint32_t>>::iterator FindStreak(NodeId peer) {
    return std::lower_bound(duplicate_streak_.begin(), duplicate_streak_.end(), peer,
                            [](const std::pair<NodeId, std::uint32_t>& e, NodeId id) { return e.first < id; });
  }
  // eager_ ∪ lazy_ (checked by CheckInvariants), asked for every GOSSIP and
  // IHAVE: one short contiguous array instead of two tree walks.
  std::vector<std::pair<NodeId, std::vector<IHaveEntry>>>::iterator FindPendingIHave(NodeId peer) {
    return std::lower_bound(
        pending_ihave_.begin(), pending_ihave_.end(), peer,
        [](const std::pair<NodeId, std::vector<IHaveEntry>>& e, NodeId id) { return e.first < id; });
  }
  bool IsNeighbor(NodeId peer) const { return std::binary_search(neighbors_.begin(), neighbors_.end(), peer); }
  void Evict(TimePoint now);
  void EnsureSweep(TimePoint now, Outbox& out);
  void NoteHolder(const MessageId& id, NodeId peer);
  void OnReannounce(const MessageId& id, TimePoint now, Outbox& out);

  // ---- root beacon ----
  bool BeaconsEnabled() const {
    return !config_.eager_flooding && config_.root_beacon_interval > Duration::zero();
  }
  bool RootLive(TimePoint now) const {
    return root_ && (*root_ == self_ || root_heard_ + config_.root_beacon_timeout > now);
  }
  // Would a beacon of `origin` be followed (the current root's, or a better one)?
  bool BeaconWanted(NodeId origin, TimePoint now) const;
  // A first copy of a beacon of `origin`: follow it (true) or drop it.
  bool AdoptBeacon(NodeId origin, TimePoint now);
  void OnBeaconDuplicate(NodeId from, const Gossip& gossip, Outbox& out);
  void OnBeaconTimer(TimePoint now, Outbox& out);
  void OnCandidacyTimer(TimePoint now, Outbox& out);
  void ArmBeaconTimers(TimePoint now, Outbox& out);
  void SendBeacon(TimePoint now, Outbox& out);
  // The tree `id` travels on: beacons always on the shared one.
  Tree TreeForId(const MessageId& id, bool create, TimePoint now) {
    return IsBeaconId(id) ? SharedTree() : TreeFor(id.origin, create, now);
  }

  NodeId self_;
  PlumtreeConfig config_;
  PlumtreeStats stats_;

  NodeSet eager_;
  NodeSet lazy_;
  // Duplicates per peer since its last first copy (for prune_after_duplicates).
  // Ascending by peer, at most one entry per neighbour: a flat array (it is
  // looked up for every first copy) rather than a std::map.
  std::vector<std::pair<NodeId, std::uint32_t>> duplicate_streak_;
  // eager_ ∪ lazy_, ascending (only NeighborUp/NeighborDown change it).
  std::vector<NodeId> neighbors_;

  // Hashed: looked up for every GOSSIP and IHAVE entry (the simulator's hot
  // path), never iterated in an order that reaches the output; eviction
  // order comes from the age queues. A cached payload belongs to a seen id
  // (payload_ttl <= seen_ttl, max_cached_payloads <= max_seen_ids), so the
  // payload is dropped before its id.
  SeenTable seen_;
  std::deque<std::pair<TimePoint, MessageId>> seen_order_;  // insertion (= time) order
  std::vector<CachedPayload> payload_cells_;
  std::vector<std::uint32_t> free_payload_cells_;
  std::size_t cached_payloads_ = 0;
  std::deque<std::pair<TimePoint, MessageId>> payload_order_;
  std::size_t payload_bytes_ = 0;

  std::map<MessageId, Missing> missing_;
  struct Reannounce {
    NodeSet holders;
    std::uint32_t rounds_left = 0;
    std::uint32_t hops = 0;
  };
  std::map<MessageId, Reannounce> reannounce_;  // only with announce_rounds > 1
  std::uint64_t next_generation_ = 1;

  std::map<NodeId, OriginTree> origin_trees_;
  std::set<std::pair<TimePoint, NodeId>> origin_trees_by_use_;  // least recently used first
  // Own broadcasts in the current burst (gaps shorter than the idle timeout).
  std::uint32_t own_recent_broadcasts_ = 0;
  TimePoint own_last_broadcast_{};

  // IHAVE batches waiting for the flush, ascending by peer (at most one per
  // neighbour): a flat array, as QueueIHave runs for every lazy push and a
  // map node per batch cost a malloc and a free each time.
  std::vector<std::pair<NodeId, std::vector<IHaveEntry>>> pending_ihave_;
  std::size_t pending_ihave_entries_ = 0;
  bool flush_armed_ = false;
  bool sweep_armed_ = false;

  std::optional<NodeId> root_;
  TimePoint root_heard_{};       // last beacon of root_ (not kept up for self)
  std::uint64_t beacon_seq_ = 0;  // last beacon sequence used (without the tag)
  bool beacon_armed_ = false;
  bool candidacy_armed_ = false;
};

}  // namespace gv::broadcast
