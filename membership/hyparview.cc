#include "membership/hyparview.h"
#include "common/overloaded.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace gv::membership {

namespace {

const char* const kMessageNames[] = {"JOIN",          "FORWARDJOIN", "FORWARDJOINREPLY", "NEIGHBOR",  "NEIGHBORREPLY",
                                     "DISCONNECT",    "SHUFFLE",     "SHUFFLEREPLY",     "KEEPALIVE"};
static_assert(sizeof(kMessageNames) / sizeof(kMessageNames[0]) == std::variant_size_v<Message>);


// Out of line on purpose: GCC 12 inlines the variant move of an aggregate
// built in place and then reports the inactive alternatives as
// maybe-uninitialized (a known false positive under -Werror).
[[gnu::noinline]] void PushSend(Outbox& out, NodeId to, Message message) {
  out.events.push_back(SendMessage{to, std::move(message)});
}

bool Contains(const std::vector<NodeId>& v, NodeId id) { return std::find(v.begin(), v.end(), id) != v.end(); }

}  // namespace

const char* MessageTypeName(std::size_t variant_index) {
  return variant_index < std::variant_size_v<Message> ? kMessageNames[variant_index] : "?";
}
const char* MessageTypeName(const Message& message) { return MessageTypeName(message.index()); }

HyParView::HyParView(NodeId self, HyParViewConfig config, Prng rng)
    : self_(self), config_(config), rng_(std::move(rng)) {}

void HyParView::handle(const InEvent& event, TimePoint now, Outbox& out) {
  std::visit(Overloaded{
                 [&](const JoinRequest& e) { OnJoinRequest(e, now, out); },
                 [&](const MessageReceived& e) { OnMessage(e.from, e.message, now, out); },
                 [&](const PeerDown& e) { OnPeerDown(e.peer, now, out); },
                 [&](const TimerFired& e) { OnTimer(e.timer, now, out); },
                 [&](const SetShuffleEnabled& e) { shuffle_enabled_ = e.enabled; },
                 [&](const KnownPeers& e) { OnKnownPeers(e, now, out); },
             },
             event);
}

std::vector<NodeId> HyParView::active_view() const {
  std::vector<NodeId> ids;
  ids.reserve(active_.size());
  for (const auto& peer : active_) ids.push_back(peer.id);
  return ids;
}

std::vector<ConnectionId> HyParView::connections_to(NodeId peer) const {
  const ActivePeer* p = FindActive(peer);
  return p ? p->connections : std::vector<ConnectionId>{};
}

HyParView::ActivePeer* HyParView::FindActive(NodeId peer) {
  auto it = std::lower_bound(active_.begin(), active_.end(), peer,
                             [](const ActivePeer& a, NodeId id) { return a.id < id; });
  return (it != active_.end() && it->id == peer) ? &*it : nullptr;
}
const HyParView::ActivePeer* HyParView::FindActive(NodeId peer) const {
  return const_cast<HyParView*>(this)->FindActive(peer);
}

// ---------------------------------------------------------------- lifecycle

void HyParView::OnJoinRequest(const JoinRequest& request, TimePoint now, Outbox& out) {
  seeds_.clear();
  for (NodeId contact : request.contacts) {
    if (contact != self_ && contact.valid() && !Contains(seeds_, contact) && seeds_.size() < config_.max_seeds) {
      seeds_.push_back(contact);
    }
  }
  if (!started_) {
    started_ = true;
    started_at_ = now;
    // Random phases so that 10,000 nodes started together do not tick in lockstep.
    const auto phase = [&](Duration period) {
      return Duration(static_cast<std::int64_t>(rng_.Uniform(static_cast<std::uint64_t>(period.count()) + 1)));
    };
    out.events.push_back(ScheduleTimer{now + phase(config_.shuffle_interval), Timer{TimerKind::kShuffle, ++shuffle_generation_}});
    out.events.push_back(ScheduleTimer{now + phase(config_.keepalive_interval), Timer{TimerKind::kTick, ++tick_generation_}});
  }
  if (!seeds_.empty() && active_.empty()) {
    const NodeId contact = seeds_[rng_.Index(seeds_.size())];
    const ConnectionId connection = NewConnectionId();
    ++stats_.joins_sent;
    // The contact always takes a JOIN, so the connection is ours already.
    AddConnection(contact, connection, now, out);
    Send(contact, Join{connection}, now, out);
  }
}

void HyParView::RejoinIfIsolated(TimePoint now, Outbox& out) {
  if (!active_.empty() || !passive_.empty() || !pending_.empty() || seeds_.empty()) return;
  const NodeId contact = seeds_[rng_.Index(seeds_.size())];
  const ConnectionId connection = NewConnectionId();
  ++stats_.joins_sent;
  ++stats_.rejoins;
  AddConnection(contact, connection, now, out);
  Send(contact, Join{connection}, now, out);
}

// ---------------------------------------------------------------- messages

void HyParView::Send(NodeId to, Message message, TimePoint now, Outbox& out) {
  if (ActivePeer* p = FindActive(to)) p->last_sent = now;
  PushSend(out, to, std::move(message));
}

void HyParView::OnMessage(NodeId from, const Message& message, TimePoint now, Outbox& out) {
  if (from == self_ || !from.valid()) return;
  if (ActivePeer* p = FindActive(from)) p->last_received = now;
  std::visit(Overloaded{
                 [&](const Join& m) { OnJoin(from, m, now, out); },
                 [&](const ForwardJoin& m) { OnForwardJoin(from, m, now, out); },
                 [&](const ForwardJoinReply& m) { AddConnection(from, m.connection, now, out); },
                 [&](const Neighbor& m) { OnNeighbor(from, m, now, out); },
                 [&](const NeighborReply& m) { OnNeighborReply(from, m, now, out); },
                 [&](const Disconnect& m) { OnDisconnect(from, m, now, out); },
                 [&](const Shuffle& m) { OnShuffle(from, m, now, out); },
                 [&](const ShuffleReply& m) { OnShuffleReply(m); },
                 [&](const KeepAlive&) {},
             },
             message);
}

void HyParView::OnJoin(NodeId from, const Join& join, TimePoint now, Outbox& out) {
  ++stats_.joins_received;
  // A JOIN comes from a node that starts afresh (new, restarted or isolated):
  // any connection we still hold to it belongs to its past, so it is dropped
  // silently. The JOIN is always accepted (evicting a random peer if full):
  // the joiner already counts this connection as open.
  DropActivePeer(from, /*notify=*/false, /*to_passive=*/false, now, out);
  AddConnection(from, join.connection, now, out);
  for (std::size_t i = 0; i < active_.size(); ++i) {
    const NodeId peer = active_[i].id;
    if (peer == from) continue;
    Send(peer, ForwardJoin{from, config_.active_random_walk_length}, now, out);
  }
}

void HyParView::OnForwardJoin(NodeId from, const ForwardJoin& forward, TimePoint now, Outbox& out) {
  ++stats_.forward_joins_received;
  const NodeId joiner = forward.new_node;
  if (joiner == self_ || !joiner.valid()) return;
  if (FindActive(joiner) != nullptr) return;  // already linked: the walk ends here
  const bool walk_over = forward.ttl == 0 || active_.size() <= 1;
  if (!walk_over) {
    if (forward.ttl == config_.passive_random_walk_length) AddPassive(joiner);
    const std::vector<NodeId> next = SampleActive(1, from, joiner);
    if (!next.empty()) {
      Send(next[0], ForwardJoin{joiner, forward.ttl - 1}, now, out);
      return;
    }
  }
  // The reply opens the connection at the joiner, so it goes out before
  // NeighborUp: what the host sends on a new link at once (Plumtree's IHAVE
  // of its recent ids) must reach the joiner after the reply, or the joiner
  // drops it as coming from a non-neighbour. A driver that handles NeighborUp
  // as it comes (the simulator does) sent the IHAVE first, and a node
  // restarted by churn missed a broadcast announced to it only that way.
  const ConnectionId connection = NewConnectionId();
  Send(joiner, ForwardJoinReply{connection}, now, out);
  AddConnection(joiner, connection, now, out);
}

void HyParView::OnNeighbor(NodeId from, const Neighbor& request, TimePoint now, Outbox& out) {
  const bool already = FindActive(from) != nullptr;
  // A reconnect from a node that lost us before we (re)started: we are not
  // the node it lost, and we joined the overlay again through our seeds.
  const bool restarted_since = request.lost_for > Duration::zero() && (!started_ || now - started_at_ < request.lost_for);
  const bool accept =
      already || (!restarted_since && (request.priority == Priority::kHigh || active_.size() < config_.active_view_size));
  if (accept) {
    // The accepting reply opens the connection at the requester, so it must
    // travel before anything that closes it: AddConnection may at once close
    // this very connection (a second one to an already active peer), and a
    // DISCONNECT that overtook the reply would leave the requester holding a
    // connection we dropped.
    Send(from, NeighborReply{request.connection, true, {}}, now, out);
    AddConnection(from, request.connection, now, out);
    return;
  }
  NeighborReply reply{request.connection, false, {}};
  // Other seekers first (newest first), then active peers, which are known to
  // be alive (after a mass failure most passive entries are dead, and probing
  // a dead node costs a connect timeout, a live one a round trip).
  for (auto it = recent_seekers_.rbegin(); it != recent_seekers_.rend(); ++it) {
    if (reply.candidates.size() >= config_.shuffle_passive_count) break;
    if (it->first != from && now - it->second < config_.neighbor_retry_interval) reply.candidates.push_back(it->first);
  }
  if (reply.candidates.size() < config_.shuffle_passive_count) {
    for (NodeId peer : SampleActive(config_.shuffle_passive_count - reply.candidates.size(), from, self_)) {
      reply.candidates.push_back(peer);
    }
  }
  std::erase_if(recent_seekers_, [&](const auto& seeker) { return seeker.first == from; });
  if (recent_seekers_.size() >= kSeekersKept) recent_seekers_.erase(recent_seekers_.begin());
  recent_seekers_.emplace_back(from, now);
  AddPassive(from);  // it is alive and looking: a good candidate later
  Send(from, std::move(reply), now, out);
}

void HyParView::OnNeighborReply(NodeId from, const NeighborReply& reply, TimePoint now, Outbox& out) {
  auto it = pending_.find(from);
  const bool ours = it != pending_.end() && it->second == reply.connection;
  if (ours) {
    pending_.erase(it);
    if (reconnecting_.erase(from) != 0) {
      if (reply.accepted) {
        ++stats_.reconnects_accepted;
      } else {
        // It restarted since we lost it and joined again on its own: no
        // partition to heal through it.
        ++stats_.reconnects_refused;
        std::erase_if(failed_peers_, [&](const auto& failed) { return failed.first == from; });
      }
    }
  }
  if (!reply.accepted) {
    if (ours) {
      ++stats_.neighbor_rejected;
      tried_.insert(from);
      const std::size_t limit = std::min(reply.candidates.size(), config_.shuffle_passive_count);
      std::vector<NodeId> fresh(reply.candidates.begin(), reply.candidates.begin() + static_cast<std::ptrdiff_t>(limit));
      MergeIntoPassive(fresh, {});
      preferred_ = std::move(fresh);
      FillActiveView(now, out);
    }
    return;
  }
  if (!ours) {
    // We gave up on this request (the peer was reported down and came back):
    // the peer opened the connection, so close it to keep both ends agreeing.
    ++stats_.disconnects_sent;
    PushSend(out, from, Disconnect{reply.connection});
    return;
  }
  ++stats_.neighbor_accepted;
  AddConnection(from, reply.connection, now, out);
}

void HyParView::OnDisconnect(NodeId from, const Disconnect& disconnect, TimePoint now, Outbox& out) {
  ++stats_.disconnects_received;
  const bool was_active = FindActive(from) != nullptr;
  RemoveConnection(from, disconnect.connection, /*to_passive=*/true, out);
  // It just chose to drop us: asking it back at once would only be refused.
  if (was_active && FindActive(from) == nullptr) tried_.insert(from);
  FillActiveView(now, out);
}

void HyParView::OnShuffle(NodeId from, const Shuffle& shuffle, TimePoint now, Outbox& out) {
  if (shuffle.origin == self_ || !shuffle.origin.valid()) return;
  if (shuffle.ttl > 1 && active_.size() > 1) {
    const std::vector<NodeId> next = SampleActive(1, from, shuffle.origin);
    if (!next.empty()) {
      Shuffle forwarded = shuffle;
      forwarded.ttl = shuffle.ttl - 1;
      Send(next[0], std::move(forwarded), now, out);
      return;
    }
  }
  ++stats_.shuffles_accepted;
  // Bound what we take from the wire: at most one full shuffle's worth.
  const std::size_t limit = 1 + config_.shuffle_active_count + config_.shuffle_passive_count;
  std::vector<NodeId> received(shuffle.nodes.begin(),
                               shuffle.nodes.begin() + static_cast<std::ptrdiff_t>(std::min(limit, shuffle.nodes.size())));
  std::vector<NodeId> reply = SamplePassive(received.size());
  // The reply goes straight to the origin over a temporary connection.
  PushSend(out, shuffle.origin, ShuffleReply{reply});
  MergeIntoPassive(received, reply);
}

void HyParView::OnShuffleReply(const ShuffleReply& reply) {
  const std::size_t limit = 1 + config_.shuffle_active_count + config_.shuffle_passive_count;
  std::vector<NodeId> received(reply.nodes.begin(),
                               reply.nodes.begin() + static_cast<std::ptrdiff_t>(std::min(limit, reply.nodes.size())));
  MergeIntoPassive(received, last_shuffle_sent_);
  last_shuffle_sent_.clear();
}

void HyParView::OnPeerDown(NodeId peer, TimePoint now, Outbox& out) {
  if (FindActive(peer) != nullptr) {
    ++stats_.peer_down;
    DropActivePeer(peer, /*notify=*/false, /*to_passive=*/false, now, out, /*failed=*/true);
    NoteFailedPeer(peer, now, out);
  }
  pending_.erase(peer);
  reconnecting_.erase(peer);
  RemovePassive(peer);  // presumed failed: never a promotion candidate again
  // An isolated node re-joins on its next tick, not here: a dead seed would
  // otherwise be retried once per failure-detection delay.
  FillActiveView(now, out);
}

// ---------------------------------------------------------------- timers

void HyParView::OnTimer(const Timer& timer, TimePoint now, Outbox& out) {
  switch (timer.kind) {
    case TimerKind::kShuffle:
      if (timer.generation != shuffle_generation_) return;
      out.events.push_back(ScheduleTimer{now + config_.shuffle_interval, Timer{TimerKind::kShuffle, shuffle_generation_}});
      if (shuffle_enabled_) StartShuffle(now, out);
      return;
    case TimerKind::kReconnect:
      reconnect_armed_ = false;
      OnReconnectTimer(now, out);
      return;
    case TimerKind::kTick:
      if (timer.generation != tick_generation_) return;
      out.events.push_back(ScheduleTimer{now + config_.keepalive_interval, Timer{TimerKind::kTick, tick_generation_}});
      OnTick(now, out);
      return;
  }
}

void HyParView::OnTick(TimePoint now, Outbox& out) {
  // Receive timeouts first: a peer silent for keepalive_timeout is gone (half-open link).
  std::vector<NodeId> silent;
  for (const auto& peer : active_) {
    if (now - peer.last_received >= config_.keepalive_timeout) silent.push_back(peer.id);
  }
  for (NodeId peer : silent) {
    ++stats_.keepalive_timeouts;
    DropActivePeer(peer, /*notify=*/true, /*to_passive=*/false, now, out, /*failed=*/true);
    NoteFailedPeer(peer, now, out);
  }
  for (auto& peer : active_) {
    if (now - peer.last_sent >= config_.keepalive_interval) {
      ++stats_.keepalives_sent;
      peer.last_sent = now;
      PushSend(out, peer.id, KeepAlive{});
    }
  }
  if (now - retry_round_start_ >= config_.neighbor_retry_interval) {
    tried_.clear();
    retry_round_start_ = now;
  }
  FillActiveView(now, out);
  RejoinIfIsolated(now, out);
}

void HyParView::NoteFailedPeer(NodeId peer, TimePoint now, Outbox& out) {
  if (config_.reconnect_interval <= Duration::zero() || config_.max_failed_peers == 0) return;
  std::erase_if(failed_peers_, [&](const auto& failed) { return failed.first == peer; });
  if (failed_peers_.size() >= config_.max_failed_peers) failed_peers_.erase(failed_peers_.begin());
  failed_peers_.emplace_back(peer, now);
  if (!reconnect_armed_) {
    reconnect_armed_ = true;
    out.events.push_back(ScheduleTimer{now + config_.reconnect_interval, Timer{TimerKind::kReconnect, 0}});
  }
}

void HyParView::OnReconnectTimer(TimePoint now, Outbox& out) {
  while (!failed_peers_.empty() && failed_peers_.front().second + config_.reconnect_timeout <= now) {
    failed_peers_.erase(failed_peers_.begin());
  }
  if (failed_peers_.empty()) return;  // the timer stops until the next failure
  reconnect_armed_ = true;
  out.events.push_back(ScheduleTimer{now + config_.reconnect_interval, Timer{TimerKind::kReconnect, 0}});
  const auto [peer, failed_at] = failed_peers_[rng_.Index(failed_peers_.size())];
  // Asked already (a refill, or the last reconnect still unanswered), or no
  // room to ask anyone: try again at the next interval. High priority: the
  // peer's view is full when it sits in a healthy overlay of its own, and a
  // low-priority request would be refused; the link is worth an eviction on
  // each side, since it may be the only one between two components.
  if (pending_.count(peer) != 0 || pending_.size() >= config_.active_view_size) return;
  const ConnectionId connection = NewConnectionId();
  pending_[peer] = connection;
  reconnecting_.insert(peer);
  ++stats_.reconnects_sent;
  Send(peer, Neighbor{Priority::kHigh, connection, now - failed_at}, now, out);
}

void HyParView::StartShuffle(TimePoint now, Outbox& out) {
  if (active_.empty()) return;
  const NodeId target = active_[rng_.Index(active_.size())].id;
  std::vector<NodeId> nodes;
  nodes.push_back(self_);
  for (NodeId id : SampleActive(config_.shuffle_active_count, target, self_)) nodes.push_back(id);
  for (NodeId id : SamplePassive(config_.shuffle_passive_count)) nodes.push_back(id);
  last_shuffle_sent_.assign(nodes.begin() + 1, nodes.end());
  ++stats_.shuffles_sent;
  Send(target, Shuffle{self_, config_.shuffle_walk_length, std::move(nodes)}, now, out);
}

// ---------------------------------------------------------------- views

ConnectionId HyParView::NewConnectionId() {
  ConnectionId id = 0;
  while (id == 0) id = rng_.NextU64();
  return id;
}

void HyParView::AddConnection(NodeId peer, ConnectionId connection, TimePoint now, Outbox& out) {
  if (peer == self_ || !peer.valid()) return;
  if (ActivePeer* existing = FindActive(peer)) {
    auto& conns = existing->connections;
    if (std::find(conns.begin(), conns.end(), connection) != conns.end()) return;
    conns.insert(std::upper_bound(conns.begin(), conns.end(), connection), connection);
    // Both ends opened a connection at once. Each end closes every connection
    // but the smallest; the other end does the same, so both keep the same one.
    while (conns.size() > 1) {
      const ConnectionId extra = conns.back();
      conns.pop_back();
      ++stats_.disconnects_sent;
      PushSend(out, peer, Disconnect{extra});
    }
    existing->last_received = now;
    return;
  }
  // If our NEIGHBOR to this peer is still in flight, it stays pending: an
  // accepting reply opens a second connection, which the branch above reduces.
  if (active_.size() >= config_.active_view_size) EvictRandomActive(peer, now, out);
  RemovePassive(peer);
  std::erase_if(failed_peers_, [&](const auto& failed) { return failed.first == peer; });  // it is back
  ActivePeer added{peer, {connection}, now, now};
  auto it = std::lower_bound(active_.begin(), active_.end(), peer,
                             [](const ActivePeer& a, NodeId id) { return a.id < id; });
  active_.insert(it, std::move(added));
  out.events.push_back(NeighborUp{peer});
}

void HyParView::RemoveConnection(NodeId peer, ConnectionId connection, bool to_passive, Outbox& out, bool failed) {
  ActivePeer* p = FindActive(peer);
  if (p == nullptr) return;
  auto& conns = p->connections;
  auto it = std::find(conns.begin(), conns.end(), connection);
  if (it == conns.end()) return;  // an older connection, already replaced
  conns.erase(it);
  if (!conns.empty()) return;
  active_.erase(active_.begin() + (p - active_.data()));
  out.events.push_back(NeighborDown{peer, failed});
  out.events.push_back(CloseConnection{peer});
  if (to_passive) AddPassive(peer);
}

void HyParView::DropActivePeer(NodeId peer, bool notify, bool to_passive, TimePoint now, Outbox& out, bool failed) {
  ActivePeer* p = FindActive(peer);
  if (p == nullptr) return;
  const std::vector<ConnectionId> conns = p->connections;
  if (notify) {
    for (ConnectionId c : conns) {
      ++stats_.disconnects_sent;
      Send(peer, Disconnect{c}, now, out);
    }
  }
  for (ConnectionId c : conns) RemoveConnection(peer, c, to_passive, out, failed);
}

void HyParView::EvictRandomActive(NodeId keep, TimePoint now, Outbox& out) {
  std::vector<NodeId> candidates;
  for (const auto& p : active_) {
    if (p.id != keep) candidates.push_back(p.id);
  }
  if (candidates.empty()) return;
  ++stats_.evictions;
  DropActivePeer(candidates[rng_.Index(candidates.size())], /*notify=*/true, /*to_passive=*/true, now, out);
}

void HyParView::AddPassive(NodeId peer) {
  if (peer == self_ || !peer.valid() || FindActive(peer) != nullptr || Contains(passive_, peer)) return;
  if (config_.passive_view_size == 0) return;
  if (passive_.size() >= config_.passive_view_size) passive_.erase(passive_.begin() + static_cast<std::ptrdiff_t>(rng_.Index(passive_.size())));
  passive_.push_back(peer);
}

void HyParView::MergeIntoPassive(const std::vector<NodeId>& nodes, const std::vector<NodeId>& sent_first) {
  std::vector<NodeId> evictable = sent_first;  // what the other side now knows: drop those first
  for (NodeId id : nodes) {
    if (id == self_ || !id.valid() || FindActive(id) != nullptr || Contains(passive_, id)) continue;
    if (config_.passive_view_size == 0) return;
    if (passive_.size() >= config_.passive_view_size) {
      bool evicted = false;
      while (!evictable.empty() && !evicted) {
        const NodeId victim = evictable.back();
        evictable.pop_back();
        auto it = std::find(passive_.begin(), passive_.end(), victim);
        if (it != passive_.end()) {
          passive_.erase(it);
          evicted = true;
        }
      }
      if (!evicted) passive_.erase(passive_.begin() + static_cast<std::ptrdiff_t>(rng_.Index(passive_.size())));
    }
    passive_.push_back(id);
  }
}

void HyParView::RemovePassive(NodeId peer) {
  auto it = std::find(passive_.begin(), passive_.end(), peer);
  if (it != passive_.end()) passive_.erase(it);
}

bool HyParView::wants_candidates() const {
  if (active_.size() + pending_.size() >= config_.active_view_size) return false;
  return std::none_of(passive_.begin(), passive_.end(), [&](NodeId id) { return Askable(id); });
}

void HyParView::OnKnownPeers(const KnownPeers& known, TimePoint now, Outbox& out) {
  if (!wants_candidates()) return;
  std::vector<NodeId> fresh;
  for (NodeId id : known.nodes) {
    if (id == self_ || !id.valid() || FindActive(id) != nullptr || pending_.count(id) != 0 ||
        Contains(passive_, id) || Contains(fresh, id)) {
      continue;
    }
    fresh.push_back(id);
  }
  rng_.Shuffle(fresh);
  if (fresh.size() > config_.shuffle_passive_count) fresh.resize(config_.shuffle_passive_count);
  for (NodeId id : fresh) AddPassive(id);
  stats_.known_peers_taken += fresh.size();
  FillActiveView(now, out);
}

void HyParView::FillActiveView(TimePoint now, Outbox& out) {
  while (active_.size() + pending_.size() < config_.active_view_size) {
    auto askable = [&](NodeId id) { return Askable(id); };
    NodeId target;
    // The last refusal's candidates first, in their order (other seekers lead).
    while (!preferred_.empty() && !target.valid()) {
      const NodeId id = preferred_.front();
      preferred_.erase(preferred_.begin());
      if (askable(id) && std::find(passive_.begin(), passive_.end(), id) != passive_.end()) target = id;
    }
    if (!target.valid()) {
      std::vector<NodeId> candidates;
      for (NodeId id : passive_) {
        if (askable(id)) candidates.push_back(id);
      }
      if (candidates.empty()) return;
      target = candidates[rng_.Index(candidates.size())];
    }
    // With no active peer at all we must be taken in: ask with high priority.
    const Priority priority = active_.empty() ? Priority::kHigh : Priority::kLow;
    const ConnectionId connection = NewConnectionId();
    pending_[target] = connection;
    ++stats_.neighbor_requests_sent;
    Send(target, Neighbor{priority, connection}, now, out);
  }
}

std::vector<NodeId> HyParView::SampleActive(std::size_t count, NodeId exclude1, NodeId exclude2) {
  std::vector<NodeId> candidates;
  for (const auto& p : active_) {
    if (p.id != exclude1 && p.id != exclude2) candidates.push_back(p.id);
  }
  rng_.Shuffle(candidates);
  if (candidates.size() > count) candidates.resize(count);
  return candidates;
}

std::vector<NodeId> HyParView::SamplePassive(std::size_t count) {
  std::vector<NodeId> candidates = passive_;
  rng_.Shuffle(candidates);
  if (candidates.size() > count) candidates.resize(count);
  return candidates;
}

// ---------------------------------------------------------------- introspection

std::size_t HyParView::memory_bytes() const {
  std::size_t bytes = sizeof(*this);
  bytes += active_.capacity() * sizeof(ActivePeer);
  for (const auto& p : active_) bytes += p.connections.capacity() * sizeof(ConnectionId);
  bytes += passive_.capacity() * sizeof(NodeId);
  // std::map / std::set nodes: three pointers, a colour word and the value.
  bytes += pending_.size() * (4 * sizeof(void*) + sizeof(std::pair<const NodeId, ConnectionId>));
  bytes += tried_.size() * (4 * sizeof(void*) + sizeof(NodeId));
  bytes += seeds_.capacity() * sizeof(NodeId);
  bytes += recent_seekers_.capacity() * sizeof(recent_seekers_[0]);
  bytes += preferred_.capacity() * sizeof(NodeId);
  bytes += last_shuffle_sent_.capacity() * sizeof(NodeId);
  bytes += failed_peers_.capacity() * sizeof(failed_peers_[0]);
  bytes += reconnecting_.size() * (4 * sizeof(void*) + sizeof(NodeId));
  return bytes;
}

bool HyParView::CheckInvariants(std::string* why) const {
  auto fail = [&](const std::string& reason) {
    if (why) *why = "hyparview " + self_.ToString() + ": " + reason;
    return false;
  };
  if (active_.size() > config_.active_view_size) return fail("active view over its bound");
  if (passive_.size() > config_.passive_view_size) return fail("passive view over its bound");
  for (std::size_t i = 0; i < active_.size(); ++i) {
    const auto& p = active_[i];
    if (p.id == self_) return fail("self in active view");
    if (i > 0 && !(active_[i - 1].id < p.id)) return fail("active view not strictly ascending");
    if (p.connections.empty()) return fail("active peer " + p.id.ToString() + " without a connection");
    if (Contains(passive_, p.id)) return fail("peer " + p.id.ToString() + " both active and passive");
  }
  for (std::size_t i = 0; i < passive_.size(); ++i) {
    if (passive_[i] == self_) return fail("self in passive view");
    if (std::find(passive_.begin() + static_cast<std::ptrdiff_t>(i) + 1, passive_.end(), passive_[i]) != passive_.end()) {
      return fail("duplicate passive entry " + passive_[i].ToString());
    }
  }
  if (pending_.size() > config_.active_view_size) return fail("more pending NEIGHBOR requests than slots");
  if (failed_peers_.size() > config_.max_failed_peers) return fail("more failed peers remembered than allowed");
  for (const auto& [peer, when] : failed_peers_) {
    if (FindActive(peer) != nullptr) return fail("failed peer " + peer.ToString() + " is active");
  }
  if (!failed_peers_.empty() && !reconnect_armed_) return fail("failed peers remembered but no reconnect timer");
  for (NodeId peer : reconnecting_) {
    if (pending_.count(peer) == 0) return fail("reconnect to " + peer.ToString() + " not pending");
  }
  return true;
}

}  // namespace gv::membership
