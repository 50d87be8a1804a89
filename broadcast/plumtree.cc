#include "broadcast/plumtree.h"
#include "common/mix64.h"
#include "common/overloaded.h"
#include "common/prefetch.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <utility>

namespace gv::broadcast {
namespace {


// Rough per-node cost of an ordered-container node (three pointers + colour,
// rounded up to the allocator's granularity).
constexpr std::size_t kTreeNodeOverhead = 48;
// Entries an IHAVE batch has room for when it is started.
constexpr std::size_t kInitialIHaveBatch = 8;

std::uint32_t NextHop(std::uint32_t round) {
  return round == std::numeric_limits<std::uint32_t>::max() ? round : round + 1;
}

}  // namespace

// A bijection, so no two ids tie.
std::uint64_t RootPriority(NodeId id) { return Mix64(id.value + kGoldenGamma); }

PlumtreeConfig PaperPlumtreeConfig() {
  PlumtreeConfig config;
  config.hop_optimization_threshold = 3;
  config.prune_after_duplicates = 1;
  config.max_origin_trees = 0;
  config.link_up_announce_window = Duration::zero();
  config.root_beacon_interval = Duration::zero();
  return config;
}

Plumtree::Plumtree(NodeId self, PlumtreeConfig config) : self_(self), config_(config) {
  // A seen id must outlive its payload: otherwise a late GOSSIP for an id whose
  // payload was evicted would be delivered a second time.
  if (config_.seen_ttl < config_.payload_ttl) config_.seen_ttl = config_.payload_ttl;
  if (config_.max_seen_ids < config_.max_cached_payloads) config_.max_seen_ids = config_.max_cached_payloads;
  if (config_.max_ihave_entries == 0) config_.max_ihave_entries = 1;
  if (config_.max_announcers_per_id == 0) config_.max_announcers_per_id = 1;
  if (config_.prune_after_duplicates == 0) config_.prune_after_duplicates = 1;
  if (config_.sweep_interval <= Duration::zero()) config_.sweep_interval = Seconds(1);
}

void Plumtree::handle(const InEvent& event, TimePoint now, Outbox& out) {
  // Age-based eviction runs on the sweep timer only (count caps apply at
  // insertion): checking on every event costs more than the whole lookup
  // path in a 10,000-node simulation, and a stale entry kept up to one sweep
  // interval longer is harmless (a seen id stays a duplicate a bit longer; a
  // payload answers a late GRAFT).
  std::visit(Overloaded{
                 [&](const NeighborUp& e) { OnNeighborUp(e.peer, now, out); },
                 [&](const NeighborDown& e) { OnNeighborDown(e.peer); },
                 [&](const BroadcastRequest& e) { OnBroadcast(e, now, out); },
                 [&](const TimerFired& e) { OnTimer(e.timer, now, out); },
                 [&](const MessageReceived& e) {
                   if (e.from == self_) return;  // a node never talks to itself
                   std::visit(Overloaded{
                                  [&](const Gossip& m) { OnGossip(e.from, m, now, out); },
                                  [&](const IHave& m) { OnIHave(e.from, m, now, out); },
                                  [&](const Graft& m) { OnGraft(e.from, m, now, out); },
                                  [&](const Prune& m) { OnPrune(e.from, m, now); },
                              },
                              e.message);
                 },
             },
             event);
}

void Plumtree::Prefetch(const Message& message) const {
  PrefetchLine(neighbors_.data());
  if (const auto* gossip = std::get_if<Gossip>(&message)) {
    seen_.Prefetch(gossip->id);
    // A first copy appends to both age queues and pushes lazily.
    if (!seen_order_.empty()) PrefetchLine(&seen_order_.back() + 1);
    if (!payload_order_.empty()) PrefetchLine(&payload_order_.back() + 1);
    if (!free_payload_cells_.empty()) PrefetchLine(&free_payload_cells_.back());
    PrefetchLine(eager_.data());
    PrefetchLine(lazy_.data());
    PrefetchLine(pending_ihave_.data());
    return;
  }
  if (const auto* ihave = std::get_if<IHave>(&message)) {
    const std::size_t n = std::min<std::size_t>(ihave->entries.size(), 8);
    for (std::size_t i = 0; i < n; ++i) seen_.Prefetch(ihave->entries[i].id);
  }
}

// ---- neighbours --------------------------------------------------------------

void Plumtree::OnNeighborUp(NodeId peer, TimePoint now, Outbox& out) {
  if (peer == self_ || IsNeighbor(peer)) return;
  // New links start eager (the paper): the tree heals through them first and
  // redundant ones are pruned by the first duplicate.
  eager_.insert(peer);
  neighbors_.insert(std::upper_bound(neighbors_.begin(), neighbors_.end(), peer), peer);
  for (auto& [origin, tree] : origin_trees_) tree.eager.insert(peer);
  AnnounceRecent(peer, now, out);
  ArmBeaconTimers(now, out);
}

void Plumtree::AnnounceRecent(NodeId peer, TimePoint now, Outbox& out) {
  if (config_.eager_flooding || config_.link_up_announce_window <= Duration::zero()) return;
  std::vector<IHaveEntry> recent;
  // seen_order_ is in delivery order: walk back from the newest.
  for (auto it = seen_order_.rbegin(); it != seen_order_.rend() && recent.size() < config_.max_ihave_entries; ++it) {
    if (it->first + config_.link_up_announce_window <= now) break;
    const SeenEntry* entry = seen_.Find(it->second);
    if (entry->payload == SeenTable::kNoPayload) continue;  // a GRAFT for it could not be answered
    recent.push_back(IHaveEntry{it->second, entry->hops});
  }
  if (recent.empty()) return;
  std::reverse(recent.begin(), recent.end());  // oldest first, as a batch would carry them
  ++stats_.ihave_sent;
  stats_.ihave_entries_sent += recent.size();
  stats_.link_up_announced += recent.size();
  out.events.push_back(SendMessage{peer, IHave{std::move(recent)}});
}

void Plumtree::OnNeighborDown(NodeId peer) {
  eager_.erase(peer);
  lazy_.erase(peer);
  std::erase(neighbors_, peer);
  for (auto& [origin, tree] : origin_trees_) {
    tree.eager.erase(peer);
    tree.lazy.erase(peer);
    tree.silenced.erase(peer);
  }
  ClearStreak(peer);
  if (auto it = FindPendingIHave(peer); it != pending_ihave_.end() && it->first == peer) {
    pending_ihave_entries_ -= it->second.size();
    pending_ihave_.erase(it);
  }
  // A missing id whose only announcers are gone cannot be grafted: forget it (a
  // later IHAVE from a live neighbour starts over).
  for (auto it = missing_.begin(); it != missing_.end();) {
    auto& announcers = it->second.announcers;
    announcers.erase(std::remove_if(announcers.begin(), announcers.end(),
                                    [&](const Announcement& a) { return a.peer == peer; }),
                     announcers.end());
    if (announcers.empty()) {
      ++stats_.missing_dropped;
      it = missing_.erase(it);
    } else {
      ++it;
    }
  }
}

void Plumtree::MakeEager(const Tree& tree, NodeId peer) {
  tree.lazy.erase(peer);
  tree.eager.insert(peer);
}

void Plumtree::MakeLazy(const Tree& tree, NodeId peer) {
  tree.eager.erase(peer);
  tree.lazy.insert(peer);
}

// ---- origin-aware trees ------------------------------------------------------------

Plumtree::Tree Plumtree::TreeFor(NodeId origin, bool create, TimePoint now) {
  if (config_.eager_flooding || config_.max_origin_trees == 0) return SharedTree();
  auto it = origin_trees_.find(origin);
  if (it != origin_trees_.end() && it->second.last_used + config_.origin_tree_idle_timeout <= now) {
    // Idle too long (the sweep has not run yet): the origin's burst is over.
    origin_trees_by_use_.erase({it->second.last_used, origin});
    origin_trees_.erase(it);
    ++stats_.origin_trees_evicted;
    it = origin_trees_.end();
  }
  if (it == origin_trees_.end()) {
    if (!create) return SharedTree();
    if (origin_trees_.size() >= config_.max_origin_trees) {
      const NodeId victim = origin_trees_by_use_.begin()->second;
      origin_trees_by_use_.erase(origin_trees_by_use_.begin());
      origin_trees_.erase(victim);
      ++stats_.origin_trees_evicted;
    }
    // Either all links eager (flood once, prune to the shortest tree) or a
    // copy of the shared tree (consistent across nodes up to links that
    // changed meanwhile, which the usual PRUNE/GRAFT repair).
    OriginTree fresh{eager_, lazy_, {}, now};
    if (config_.origin_tree_starts_flooding) {
      fresh.eager.insert(lazy_.begin(), lazy_.end());
      fresh.lazy.clear();
    }
    it = origin_trees_.emplace(origin, std::move(fresh)).first;
    origin_trees_by_use_.emplace(now, origin);
    ++stats_.origin_trees_created;
  } else {
    TouchOriginTree(origin, it->second, now);
  }
  return Tree{it->second.eager, it->second.lazy, origin, &it->second.silenced};
}

void Plumtree::TouchOriginTree(NodeId origin, OriginTree& tree, TimePoint now) {
  if (tree.last_used == now) return;
  origin_trees_by_use_.erase({tree.last_used, origin});
  tree.last_used = now;
  origin_trees_by_use_.emplace(now, origin);
}

bool Plumtree::OwnOriginTreeDue(TimePoint now) {
  if (config_.eager_flooding || config_.max_origin_trees == 0) return false;
  const bool tree_kept = origin_trees_.count(self_) != 0;
  if (own_recent_broadcasts_ > 0 && !tree_kept && own_last_broadcast_ + config_.origin_tree_burst_gap <= now) {
    own_recent_broadcasts_ = 0;  // too far apart to be a burst
  }
  if (own_recent_broadcasts_ > 0 && own_last_broadcast_ + config_.origin_tree_idle_timeout <= now) {
    own_recent_broadcasts_ = 0;  // the burst ended; its tree expires too
  }
  if (own_recent_broadcasts_ < std::numeric_limits<std::uint32_t>::max()) ++own_recent_broadcasts_;
  own_last_broadcast_ = now;
  return own_recent_broadcasts_ >= config_.origin_tree_min_broadcasts;
}

const NodeSet& Plumtree::eager_peers_for(NodeId origin) const {
  auto it = origin_trees_.find(origin);
  return it == origin_trees_.end() ? eager_ : it->second.eager;
}

// ---- payload path ----------------------------------------------------------------

void Plumtree::OnBroadcast(const BroadcastRequest& request, TimePoint now, Outbox& out) {
  if (request.payload.size() > config_.max_payload_bytes) {
    ++stats_.rejected_oversize;
    return;
  }
  if (IsBeaconId(request.id)) {
    ++stats_.rejected_reserved_id;
    return;
  }
  if (seen_.Contains(request.id)) return;  // the id was already used: never deliver twice
  ++stats_.broadcasts;
  const bool origin_tree = !request.background && OwnOriginTreeDue(now);
  AcceptFirstCopy(request.id, request.payload, origin_tree, 0, self_, now, out);
}

void Plumtree::OnGossip(NodeId from, const Gossip& gossip, TimePoint now, Outbox& out) {
  if (gossip.payload.size() > config_.max_payload_bytes) {
    ++stats_.rejected_oversize;
    return;
  }
  const bool neighbor = IsNeighbor(from);
  if (!neighbor) ++stats_.from_non_neighbor;
  if (!seen_.Contains(gossip.id)) {
    if (IsBeaconId(gossip.id) && (!neighbor || !AdoptBeacon(gossip.id.origin, now))) {
      // A worse root's beacon (or one from outside the view): not followed,
      // not forwarded, not remembered.
      ++stats_.beacons_suppressed;
      return;
    }
    if (neighbor) {
      // Shared tree: links are undirected, so the parent is also a child for
      // other origins (the paper). An origin tree is directed: the sets say
      // whom WE push to, and the parent is not one of them.
      const Tree tree = TreeForId(gossip.id, gossip.origin_tree, now);
      if (!tree.origin) MakeEager(tree, from);
      ClearStreak(from);
    }
    AcceptFirstCopy(gossip.id, gossip.payload, gossip.origin_tree, NextHop(gossip.round), from, now, out);
    return;
  }
  ++stats_.duplicates;
  NoteHolder(gossip.id, from);
  if (config_.eager_flooding || !neighbor) return;
  if (IsBeaconId(gossip.id)) {
    OnBeaconDuplicate(from, gossip, out);
    return;
  }
  const Tree tree = TreeFor(gossip.id.origin, gossip.origin_tree, now);
  if (tree.origin) {
    // Directed: the sender stops pushing this origin to us; what we push is
    // decided by the PRUNEs we receive. At the first duplicate: on an origin's
    // own tree a redundant link stays redundant.
    SeenEntry& entry = *seen_.Find(gossip.id);
    if (entry.from != from && tree.silenced->count(entry.from) != 0 && tree.silenced->count(from) == 0) {
      // The first copy came down a branch we had already cut (it was in
      // flight); this one came down the branch we kept. Nothing to prune.
      entry.from = from;
      entry.hops = NextHop(gossip.round);
      return;
    }
    // Already told to stop: this copy was in flight. (Under loss a PRUNE can
    // be lost; the sender then keeps pushing and only costs duplicates.)
    if (tree.silenced->count(from) != 0) return;
    if (!KeepShorterBranch(tree, gossip, from, out)) SendPrune(tree, from, out);
    return;
  }
  // With a live root only its beacons shape the shared tree: a cycle shows in
  // the next beacon's duplicates and is cut there, on the right link. Cutting
  // it on another origin's duplicates instead cut whichever link that
  // origin's copies reached second, often the link to our parent; the beacon
  // then grafted it back, and a frequent sender cut it again (10,000 nodes,
  // 10 senders: 60,000 graft timeouts and LDH 1.85x flooding's).
  if (BeaconsEnabled() && RootLive(now)) return;
  // The link carried a copy we already had: take it out of the tree (after the
  // configured number of consecutive duplicates).
  auto streak = FindStreak(from);
  if (streak == duplicate_streak_.end() || streak->first != from) streak = duplicate_streak_.emplace(streak, from, 0);
  if (++streak->second < config_.prune_after_duplicates) return;
  duplicate_streak_.erase(streak);
  MakeLazy(tree, from);
  SendPrune(tree, from, out);
}

bool Plumtree::KeepShorterBranch(const Tree& tree, const Gossip& gossip, NodeId from, Outbox& out) {
  const std::uint32_t threshold = config_.origin_hop_optimization_threshold;
  if (threshold == 0) return false;
  SeenEntry& entry = *seen_.Find(gossip.id);
  const NodeId parent = entry.from;
  const std::uint32_t via_sender = NextHop(gossip.round);
  if (parent == self_ || parent == from || entry.hops < via_sender || entry.hops - via_sender < threshold) {
    return false;
  }
  // The copy that came second took the shorter path (typically: we just made
  // `from` our parent by the hop-difference rule and this message was already
  // on its way down the old branch). Keep the short branch, cut the long one:
  // the old parent stops pushing to us.
  ++stats_.hop_optimizations;
  SendPrune(tree, parent, out);
  entry.hops = via_sender;
  entry.from = from;
  return true;
}

void Plumtree::AcceptFirstCopy(const MessageId& id, const std::string& payload, bool origin_tree,
                               std::uint32_t hops, NodeId from, TimePoint now, Outbox& out) {
  if (!IsBeaconId(id)) {  // beacons are the protocol's own
    ++stats_.delivered;
    out.events.push_back(Deliver{id, payload, hops, from});
  }

  SeenEntry& record = seen_.Insert(id, from, hops);
  seen_order_.emplace_back(now, id);
  if (payload.size() <= config_.max_cached_payload_bytes) {
    std::uint32_t cell;
    if (!free_payload_cells_.empty()) {
      cell = free_payload_cells_.back();
      free_payload_cells_.pop_back();
    } else {
      cell = static_cast<std::uint32_t>(payload_cells_.size());
      payload_cells_.emplace_back();
    }
    payload_cells_[cell].payload = payload;
    payload_cells_[cell].origin_tree = origin_tree;
    record.payload = cell;
    ++cached_payloads_;
    payload_order_.emplace_back(now, id);
    payload_bytes_ += payload.size();
    while (cached_payloads_ > config_.max_cached_payloads || payload_bytes_ > config_.max_cached_payload_bytes) {
      DropPayload(*seen_.Find(payload_order_.front().second));
      payload_order_.pop_front();
      ++stats_.payload_evictions;
    }
  }
  // Ids go after payloads: a cached payload's id is never older than the
  // oldest seen id (both queues are in insertion order and the payload limits
  // are the tighter ones), so no id leaves while its payload is cached.
  while (seen_.size() > config_.max_seen_ids) EvictOldestSeen();

  // Peers that announced the id already have it: no IHAVE for them. An
  // announcer whose path was shorter by the threshold becomes our parent.
  NodeSet holders;
  if (auto it = missing_.find(id); it != missing_.end()) {
    const Announcement* best = nullptr;
    for (const Announcement& a : it->second.announcers) {
      holders.insert(a.peer);
      if (best == nullptr || a.round < best->round) best = &a;
    }
    if (best != nullptr && from != self_) {
      const Announcement shortcut = *best;
      missing_.erase(it);
      MaybeOptimize(id, shortcut.peer, shortcut.round, now, out);
    } else {
      missing_.erase(it);
    }
  }

  const Tree tree = TreeForId(id, origin_tree, now);
  EagerPush(tree, id, payload, origin_tree, hops, from, out);
  LazyPush(tree, id, hops, from, holders, now, out);
  EnsureSweep(now, out);

  if (config_.announce_rounds > 1 && !config_.eager_flooding) {
    if (reannounce_.size() >= config_.max_reannounced_ids) reannounce_.erase(reannounce_.begin());
    Reannounce& again = reannounce_[id];
    again.holders = std::move(holders);
    if (from != self_) again.holders.insert(from);
    again.rounds_left = config_.announce_rounds - 1;
    again.hops = hops;
    Timer timer;
    timer.kind = TimerKind::kReannounce;
    timer.id = id;
    out.events.push_back(ScheduleTimer{now + config_.reannounce_interval, timer});
  }
}

void Plumtree::NoteHolder(const MessageId& id, NodeId peer) {
  if (reannounce_.empty()) return;
  if (auto it = reannounce_.find(id); it != reannounce_.end()) it->second.holders.insert(peer);
}

void Plumtree::OnReannounce(const MessageId& id, TimePoint now, Outbox& out) {
  auto it = reannounce_.find(id);
  if (it == reannounce_.end()) return;
  Reannounce& again = it->second;
  // Eager and lazy alike: an eager peer whose GOSSIP was lost is exactly the
  // one that needs the announcement.
  auto announce = [&](NodeId peer) {
    if (again.holders.count(peer) != 0) return;
    ++stats_.reannounced;
    QueueIHave(peer, IHaveEntry{id, again.hops}, now, out);
  };
  for (NodeId peer : eager_) announce(peer);
  for (NodeId peer : lazy_) announce(peer);
  if (--again.rounds_left == 0) {
    reannounce_.erase(it);
    return;
  }
  Timer timer;
  timer.kind = TimerKind::kReannounce;
  timer.id = id;
  out.events.push_back(ScheduleTimer{now + config_.reannounce_interval, timer});
}

void Plumtree::EagerPush(const Tree& tree, const MessageId& id, const std::string& payload, bool origin_tree,
                         std::uint32_t hops, NodeId sender, Outbox& out) {
  for (NodeId peer : tree.eager) {
    if (peer == sender) continue;
    ++stats_.gossip_sent;
    out.events.push_back(SendMessage{peer, Gossip{id, hops, payload, origin_tree}});
  }
}

void Plumtree::LazyPush(const Tree& tree, const MessageId& id, std::uint32_t hops, NodeId sender,
                        const NodeSet& holders, TimePoint now, Outbox& out) {
  if (config_.eager_flooding) return;
  for (NodeId peer : tree.lazy) {
    if (peer == sender || holders.count(peer) != 0) continue;
    QueueIHave(peer, IHaveEntry{id, hops}, now, out);
  }
}

void Plumtree::QueueIHave(NodeId peer, const IHaveEntry& entry, TimePoint now, Outbox& out) {
  stats_.ihave_entries_sent++;
  if (config_.ihave_flush_interval <= Duration::zero()) {
    ++stats_.ihave_sent;
    out.events.push_back(SendMessage{peer, IHave{{entry}}});
    return;
  }
  auto it = FindPendingIHave(peer);
  if (it == pending_ihave_.end() || it->first != peer) {
    it = pending_ihave_.emplace(it, peer, std::vector<IHaveEntry>{});
    // Room for a few ids at once: growing 1, 2, 4, 8 cost three mallocs and
    // two frees per batch, a tenth of a 10,000-node simulation's time.
    it->second.reserve(std::min<std::size_t>(kInitialIHaveBatch, config_.max_ihave_entries));
  }
  std::vector<IHaveEntry>& batch = it->second;
  batch.push_back(entry);
  ++pending_ihave_entries_;
  if (batch.size() >= config_.max_ihave_entries) {
    // A full batch goes at once; the flush timer may then find nothing to send.
    pending_ihave_entries_ -= batch.size();
    ++stats_.ihave_sent;
    out.events.push_back(SendMessage{peer, IHave{std::move(batch)}});
    pending_ihave_.erase(it);
    return;
  }
  if (!flush_armed_) {
    flush_armed_ = true;
    Timer timer;
    timer.kind = TimerKind::kIHaveFlush;
    out.events.push_back(ScheduleTimer{now + config_.ihave_flush_interval, timer});
  }
}

void Plumtree::FlushIHaves(Outbox& out) {
  for (auto& [peer, batch] : pending_ihave_) {
    ++stats_.ihave_sent;
    out.events.push_back(SendMessage{peer, IHave{std::move(batch)}});
  }
  pending_ihave_.clear();
  pending_ihave_entries_ = 0;
}

void Plumtree::SendGraft(const Tree& tree, NodeId peer, std::vector<IHaveEntry> entries, Outbox& out) {
  if (tree.silenced != nullptr) tree.silenced->erase(peer);
  ++stats_.graft_sent;
  out.events.push_back(SendMessage{peer, Graft{std::move(entries), tree.origin}});
}

void Plumtree::SendPrune(const Tree& tree, NodeId peer, Outbox& out) {
  // The peer to cut may have left the active view since it sent us a copy
  // (the old parent of the hop-difference rule, typically): with the link gone
  // there is nothing to prune, and remembering it would break eager ∪ lazy ∪
  // silenced ⊆ neighbours.
  if (!IsNeighbor(peer)) return;
  if (tree.silenced != nullptr) tree.silenced->insert(peer);
  ++stats_.prune_sent;
  // Built in place: GCC 12 mistakes a temporary variant holding an optional
  // for a partly uninitialised one (-Wmaybe-uninitialized).
  SendMessage& send = std::get<SendMessage>(out.events.emplace_back(std::in_place_type<SendMessage>));
  send.to = peer;
  send.message.emplace<Prune>().origin = tree.origin;
}

// ---- repair path ----------------------------------------------------------------

void Plumtree::DropPayload(SeenEntry& entry) {
  CachedPayload& cell = payload_cells_[entry.payload];
  payload_bytes_ -= cell.payload.size();
  std::string().swap(cell.payload);  // give the memory back, not just the length
  free_payload_cells_.push_back(entry.payload);
  entry.payload = SeenTable::kNoPayload;
  --cached_payloads_;
}

void Plumtree::EvictOldestSeen() {
  const MessageId id = seen_order_.front().second;
  seen_order_.pop_front();
  SeenEntry* entry = seen_.Find(id);
  if (entry->payload != SeenTable::kNoPayload) {
    // Only when payloads too large to cache let the id count cap bite first:
    // the payload queue is a subsequence of the id queue, so this payload is
    // its oldest entry.
    DropPayload(*entry);
    payload_order_.pop_front();
    ++stats_.payload_evictions;
  }
  seen_.Erase(id);
  ++stats_.seen_evictions;
}

void Plumtree::MaybeOptimize(const MessageId& id, NodeId announcer, std::uint32_t announced_round, TimePoint now,
                             Outbox& out) {
  if (SeenEntry* entry = seen_.Find(id)) MaybeOptimize(*entry, announcer, announced_round, now, out);
}

void Plumtree::MaybeOptimize(SeenEntry& entry, NodeId announcer, std::uint32_t announced_round, TimePoint now,
                             Outbox& out) {
  if (config_.eager_flooding) return;
  const MessageId id = entry.id;
  const NodeId parent = entry.from;
  if (parent == self_ || parent == announcer || !IsNeighbor(announcer)) return;
  const bool beacon = IsBeaconId(id);
  // Only the current root's beacons shape the shared tree.
  if (beacon && (!root_ || id.origin != *root_)) return;
  const Tree tree = TreeForId(id, false, now);
  const std::uint32_t threshold = beacon        ? config_.root_hop_optimization_threshold
                                  : tree.origin ? config_.origin_hop_optimization_threshold
                                                : config_.hop_optimization_threshold;
  if (threshold == 0) return;
  const std::uint32_t via_announcer = NextHop(announced_round);
  if (entry.hops < via_announcer || entry.hops - via_announcer < threshold) return;
  // The announcer is closer to the origin by at least the threshold: make it
  // our parent (GRAFT without ids) and cut the longer branch (PRUNE).
  ++stats_.hop_optimizations;
  SendGraft(tree, announcer, {}, out);
  if (tree.origin) {
    SendPrune(tree, parent, out);  // directed: only the senders' sets change
  } else {
    MakeEager(tree, announcer);
    if (tree.eager.count(parent) != 0) {
      MakeLazy(tree, parent);
      SendPrune(tree, parent, out);
    }
  }
  entry.hops = via_announcer;
  entry.from = announcer;
}

void Plumtree::OnIHave(NodeId from, const IHave& ihave, TimePoint now, Outbox& out) {
  if (config_.eager_flooding) return;
  if (!IsNeighbor(from)) {
    // We could not graft a peer we have no link to.
    ++stats_.from_non_neighbor;
    return;
  }
  for (const IHaveEntry& entry : ihave.entries) {
    if (SeenEntry* seen = seen_.Find(entry.id)) {
      NoteHolder(entry.id, from);
      MaybeOptimize(*seen, from, entry.round, now, out);
      continue;
    }
    if (IsBeaconId(entry.id) && !BeaconWanted(entry.id.origin, now)) continue;  // we would drop it
    auto it = missing_.find(entry.id);
    if (it == missing_.end()) {
      if (missing_.size() >= config_.max_missing_ids) {
        ++stats_.missing_dropped;
        continue;
      }
      it = missing_.emplace(entry.id, Missing{}).first;
    }
    Missing& missing = it->second;
    const bool known = std::any_of(missing.announcers.begin(), missing.announcers.end(),
                                   [&](const Announcement& a) { return a.peer == from; });
    if (!known && missing.announcers.size() < config_.max_announcers_per_id) {
      missing.announcers.push_back(Announcement{from, entry.round});
    }
    if (missing.armed_generation == 0) ArmGraftTimer(entry.id, missing, config_.graft_timeout, now, out);
  }
}

void Plumtree::ArmGraftTimer(const MessageId& id, Missing& missing, Duration after, TimePoint now, Outbox& out) {
  missing.armed_generation = next_generation_++;
  Timer timer;
  timer.kind = TimerKind::kGraft;
  timer.id = id;
  timer.generation = missing.armed_generation;
  out.events.push_back(ScheduleTimer{now + after, timer});
}

void Plumtree::OnGraft(NodeId from, const Graft& graft, TimePoint now, Outbox& out) {
  ++stats_.graft_received;
  if (!IsNeighbor(from)) {
    ++stats_.from_non_neighbor;
    return;
  }
  MakeEager(graft.origin ? TreeFor(*graft.origin, true, now) : SharedTree(), from);
  ClearStreak(from);
  for (const IHaveEntry& entry : graft.entries) {
    const SeenEntry* seen = seen_.Find(entry.id);
    if (seen == nullptr || seen->payload == SeenTable::kNoPayload) {
      ++stats_.graft_unanswerable;
      continue;
    }
    const CachedPayload& cached = payload_cells_[seen->payload];
    ++stats_.gossip_sent;
    out.events.push_back(SendMessage{from, Gossip{entry.id, seen->hops, cached.payload, cached.origin_tree}});
  }
}

void Plumtree::OnPrune(NodeId from, const Prune& prune, TimePoint now) {
  ++stats_.prune_received;
  if (config_.eager_flooding || !IsNeighbor(from)) return;
  MakeLazy(prune.origin ? TreeFor(*prune.origin, true, now) : SharedTree(), from);
}

void Plumtree::OnTimer(const Timer& timer, TimePoint now, Outbox& out) {
  switch (timer.kind) {
    case TimerKind::kIHaveFlush:
      flush_armed_ = false;
      FlushIHaves(out);
      return;
    case TimerKind::kSweep:
      sweep_armed_ = false;
      Evict(now);
      EnsureSweep(now, out);
      return;
    case TimerKind::kReannounce:
      OnReannounce(timer.id, now, out);
      return;
    case TimerKind::kBeacon:
      OnBeaconTimer(now, out);
      return;
    case TimerKind::kCandidacy:
      OnCandidacyTimer(now, out);
      return;
    case TimerKind::kGraft:
      break;
  }
  auto it = missing_.find(timer.id);
  if (it == missing_.end() || it->second.armed_generation != timer.generation) return;  // stale
  Missing& missing = it->second;
  missing.armed_generation = 0;
  ++stats_.graft_timeouts;
  if (missing.announcers.empty() || missing.grafts_sent >= config_.max_graft_attempts) {
    ++stats_.missing_dropped;
    missing_.erase(it);
    return;
  }
  // Graft the oldest announcer and move it to the back, so that repeated
  // timeouts (lost GRAFT or lost reply) walk through every announcer in turn.
  std::rotate(missing.announcers.begin(), missing.announcers.begin() + 1, missing.announcers.end());
  const Announcement next = missing.announcers.back();
  ++missing.grafts_sent;
  const Tree tree = TreeForId(timer.id, false, now);
  if (!tree.origin) MakeEager(tree, next.peer);  // directed trees: the announcer starts pushing to us
  ClearStreak(next.peer);
  SendGraft(tree, next.peer, {IHaveEntry{timer.id, next.round}}, out);
  ArmGraftTimer(timer.id, missing, config_.graft_retry_timeout, now, out);
}

// ---- root beacon --------------------------------------------------------------------

bool Plumtree::BeaconWanted(NodeId origin, TimePoint now) const {
  if (!BeaconsEnabled() || origin == self_) return false;
  return !RootLive(now) || origin == *root_ || RootPriority(origin) < RootPriority(*root_);
}

bool Plumtree::AdoptBeacon(NodeId origin, TimePoint now) {
  if (!BeaconWanted(origin, now)) return false;
  if (root_ != origin) {
    // A better root, or the first one since ours was presumed gone. A root
    // that hears a better one stops beaconing (its next kBeacon sees root_).
    root_ = origin;
    ++stats_.root_changes;
  }
  root_heard_ = now;
  return true;
}

void Plumtree::OnBeaconDuplicate(NodeId from, const Gossip& gossip, Outbox& out) {
  if (!root_ || gossip.id.origin != *root_) return;  // only the root's beacons shape the tree
  SeenEntry& entry = *seen_.Find(gossip.id);
  const NodeId parent = entry.from;
  if (parent == self_ || parent == from) return;
  const Tree tree = SharedTree();
  const std::uint32_t via_sender = NextHop(gossip.round);
  const std::uint32_t threshold = config_.root_hop_optimization_threshold;
  if (threshold != 0 && entry.hops > via_sender && entry.hops - via_sender >= threshold && IsNeighbor(parent)) {
    // The second copy took the shorter path from the root: keep its link,
    // cut the first copy's.
    ++stats_.hop_optimizations;
    MakeEager(tree, from);
    MakeLazy(tree, parent);
    SendPrune(tree, parent, out);
    entry.from = from;
    entry.hops = via_sender;
    return;
  }
  // The sender is farther from the root than us by the threshold: the copy
  // we pushed to it makes it take us as its parent (this same rule on its
  // side) and cut its own first link. Pruning here too would leave it with
  // neither.
  if (threshold != 0 && gossip.round >= entry.hops && gossip.round - entry.hops >= threshold + 1) return;
  // One root, one tree: a redundant link is redundant at its first duplicate.
  MakeLazy(tree, from);
  SendPrune(tree, from, out);
}

void Plumtree::ArmBeaconTimers(TimePoint now, Outbox& out) {
  if (!BeaconsEnabled()) return;
  if (!beacon_armed_) {
    beacon_armed_ = true;
    Timer timer;
    timer.kind = TimerKind::kBeacon;
    out.events.push_back(ScheduleTimer{now + config_.root_beacon_interval, timer});
  }
  if (!RootLive(now) && !candidacy_armed_) {
    candidacy_armed_ = true;
    // priority / 2^64 of the window: the best candidate speaks first.
    // In 32-bit halves: a window under 2^32 µs (71 minutes) cannot overflow.
    const std::uint64_t window =
        std::clamp<std::int64_t>(config_.root_election_window.count(), 0, std::int64_t{0xffffffff});
    const auto delay = static_cast<std::int64_t>(((RootPriority(self_) >> 32) * window) >> 32);
    Timer timer;
    timer.kind = TimerKind::kCandidacy;
    out.events.push_back(ScheduleTimer{now + Duration(delay), timer});
  }
}

void Plumtree::OnBeaconTimer(TimePoint now, Outbox& out) {
  beacon_armed_ = false;
  if (root_ == self_) {
    SendBeacon(now, out);
  } else if (root_ && !RootLive(now)) {
    root_.reset();
    ++stats_.roots_lost;
  }
  ArmBeaconTimers(now, out);
}

void Plumtree::OnCandidacyTimer(TimePoint now, Outbox& out) {
  candidacy_armed_ = false;
  if (RootLive(now)) return;  // a root spoke meanwhile
  root_ = self_;
  ++stats_.root_changes;
  SendBeacon(now, out);
}

void Plumtree::SendBeacon(TimePoint now, Outbox& out) {
  // The sequence follows the clock (milliseconds), so a root restarted with
  // an empty state does not reuse the ids its last beacons left in its
  // neighbours' seen sets; at least one more than the last one.
  const auto clock = static_cast<std::uint64_t>(std::max<std::int64_t>(0, ToMicros(now) / 1000));
  beacon_seq_ = std::max(beacon_seq_ + 1, clock) & ~kBeaconSeqTag;
  const MessageId id{self_, kBeaconSeqTag | beacon_seq_};
  ++stats_.beacons_sent;
  AcceptFirstCopy(id, std::string(), false, 0, self_, now, out);
}

// ---- memory bounds ----------------------------------------------------------------

void Plumtree::Evict(TimePoint now) {
  // Payloads first (payload_ttl <= seen_ttl): an id never leaves before its payload.
  while (!payload_order_.empty() && payload_order_.front().first + config_.payload_ttl <= now) {
    DropPayload(*seen_.Find(payload_order_.front().second));
    payload_order_.pop_front();
    ++stats_.payload_evictions;
  }
  while (!seen_order_.empty() && seen_order_.front().first + config_.seen_ttl <= now) EvictOldestSeen();
  while (!origin_trees_by_use_.empty() &&
         origin_trees_by_use_.begin()->first + config_.origin_tree_idle_timeout <= now) {
    origin_trees_.erase(origin_trees_by_use_.begin()->second);
    origin_trees_by_use_.erase(origin_trees_by_use_.begin());
    ++stats_.origin_trees_evicted;
  }
}

void Plumtree::EnsureSweep(TimePoint now, Outbox& out) {
  // Only while something can expire: an idle node holds no timer.
  if (sweep_armed_ || (seen_.empty() && cached_payloads_ == 0)) return;
  sweep_armed_ = true;
  Timer timer;
  timer.kind = TimerKind::kSweep;
  out.events.push_back(ScheduleTimer{now + config_.sweep_interval, timer});
}

std::size_t Plumtree::memory_bytes() const {
  std::size_t bytes = sizeof(*this);
  bytes += (eager_.capacity() + lazy_.capacity()) * sizeof(NodeId);
  bytes += duplicate_streak_.capacity() * sizeof(duplicate_streak_[0]);
  bytes += neighbors_.capacity() * sizeof(NodeId);
  bytes += seen_.capacity() * sizeof(SeenEntry);
  bytes += seen_order_.size() * sizeof(std::pair<TimePoint, MessageId>);
  bytes += payload_cells_.capacity() * sizeof(CachedPayload);
  bytes += free_payload_cells_.capacity() * sizeof(std::uint32_t);
  bytes += payload_order_.size() * sizeof(std::pair<TimePoint, MessageId>);
  bytes += payload_bytes_;
  for (const auto& [id, missing] : missing_) {
    bytes += kTreeNodeOverhead + sizeof(id) + sizeof(missing) + missing.announcers.size() * sizeof(Announcement);
  }
  for (const auto& [origin, tree] : origin_trees_) {
    bytes += 2 * kTreeNodeOverhead + sizeof(origin) + sizeof(tree) + sizeof(std::pair<TimePoint, NodeId>);
    bytes += (tree.eager.capacity() + tree.lazy.capacity() + tree.silenced.capacity()) * sizeof(NodeId);
  }
  for (const auto& [id, again] : reannounce_) {
    bytes += kTreeNodeOverhead + sizeof(id) + sizeof(again) + again.holders.capacity() * sizeof(NodeId);
  }
  bytes += pending_ihave_.capacity() * sizeof(pending_ihave_[0]);
  for (const auto& [peer, batch] : pending_ihave_) bytes += batch.capacity() * sizeof(IHaveEntry);
  return bytes;
}

bool Plumtree::CheckInvariants(std::string* why) const {
  auto fail = [&](std::string reason) {
    if (why != nullptr) *why = "plumtree " + self_.ToString() + ": " + std::move(reason);
    return false;
  };
  for (NodeId peer : eager_) {
    if (lazy_.count(peer) != 0) return fail("peer " + peer.ToString() + " is both eager and lazy");
  }
  if (eager_.count(self_) != 0 || lazy_.count(self_) != 0) return fail("self in its own peer sets");
  if (config_.eager_flooding && !lazy_.empty()) return fail("eager flooding with lazy peers");
  {
    NodeSet union_set = eager_;
    union_set.insert(lazy_.begin(), lazy_.end());
    if (!std::equal(union_set.begin(), union_set.end(), neighbors_.begin(), neighbors_.end())) {
      return fail("neighbour index differs from eager ∪ lazy");
    }
    for (std::size_t i = 0; i < duplicate_streak_.size(); ++i) {
      if (i > 0 && !(duplicate_streak_[i - 1].first < duplicate_streak_[i].first)) return fail("streaks not ascending");
      if (union_set.count(duplicate_streak_[i].first) == 0) return fail("streak of a non-neighbour");
    }
  }
  if (origin_trees_.size() > config_.max_origin_trees) return fail("too many origin trees");
  if (origin_trees_.size() != origin_trees_by_use_.size()) return fail("origin trees and their use index disagree");
  for (const auto& [origin, tree] : origin_trees_) {
    if (origin_trees_by_use_.count({tree.last_used, origin}) == 0) return fail("origin tree missing from its index");
    NodeSet all = tree.eager;
    for (NodeId peer : tree.lazy) {
      if (!all.insert(peer)) return fail("peer both eager and lazy in the tree of " + origin.ToString());
    }
    NodeSet neighbors = eager_;
    neighbors.insert(lazy_.begin(), lazy_.end());
    if (all != neighbors) return fail("tree of " + origin.ToString() + " does not span the neighbours");
    for (NodeId peer : tree.silenced) {
      if (neighbors.count(peer) == 0) return fail("silenced peer " + peer.ToString() + " is not a neighbour");
    }
  }
  if (seen_.size() > config_.max_seen_ids) return fail("seen set over its cap");
  if (seen_.size() != seen_order_.size()) return fail("seen set and its age queue disagree");
  if (cached_payloads_ > config_.max_cached_payloads) return fail("payload cache over its count cap");
  if (payload_bytes_ > config_.max_cached_payload_bytes) return fail("payload cache over its byte cap");
  if (cached_payloads_ != payload_order_.size()) return fail("payload cache and its age queue disagree");
  if (cached_payloads_ + free_payload_cells_.size() != payload_cells_.size()) {
    return fail("payload cells leaked");
  }
  std::size_t bytes = 0, with_payload = 0;
  bool cell_out_of_range = false;
  seen_.ForEach([&](const SeenEntry& entry) {
    if (entry.payload == SeenTable::kNoPayload) return;
    if (entry.payload >= payload_cells_.size()) {
      cell_out_of_range = true;
      return;
    }
    ++with_payload;
    bytes += payload_cells_[entry.payload].payload.size();
  });
  if (cell_out_of_range) return fail("seen id names a payload cell that does not exist");
  if (with_payload != cached_payloads_) return fail("payload count drifted");
  if (bytes != payload_bytes_) return fail("payload byte count drifted");
  if (reannounce_.size() > config_.max_reannounced_ids) return fail("re-announce set over its cap");
  if (missing_.size() > config_.max_missing_ids) return fail("missing set over its cap");
  for (const auto& [id, missing] : missing_) {
    if (seen_.Contains(id)) return fail("an id both seen and missing");
    if (missing.announcers.empty() || missing.announcers.size() > config_.max_announcers_per_id) {
      return fail("missing id with no or too many announcers");
    }
    for (const Announcement& a : missing.announcers) {
      if (!IsNeighbor(a.peer)) return fail("announcer " + a.peer.ToString() + " is not a neighbour");
    }
  }
  std::size_t pending = 0;
  for (std::size_t i = 0; i < pending_ihave_.size(); ++i) {
    const auto& [peer, batch] = pending_ihave_[i];
    if (i > 0 && !(pending_ihave_[i - 1].first < peer)) return fail("IHAVE batches not ascending by peer");
    if (batch.empty() || batch.size() >= config_.max_ihave_entries) return fail("IHAVE batch size out of range");
    pending += batch.size();
  }
  if (pending != pending_ihave_entries_) return fail("pending IHAVE count drifted");
  if (!pending_ihave_.empty() && !flush_armed_) return fail("pending IHAVEs without a flush timer");
  if (BeaconsEnabled() && !neighbors_.empty() && !beacon_armed_) return fail("neighbours but no beacon timer");
  return true;
}

}  // namespace gv::broadcast
