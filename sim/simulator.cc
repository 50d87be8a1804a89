#include "sim/simulator.h"
#include "common/mix64.h"
#include "common/overloaded.h"
#include "common/prefetch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <utility>

namespace gv::sim {

namespace {


const char* const kBroadcastNames[] = {"GOSSIP", "IHAVE", "GRAFT", "PRUNE"};
static_assert(sizeof(kBroadcastNames) / sizeof(kBroadcastNames[0]) == kBroadcastTypes);

// Trace / hash event kinds.
enum : std::uint64_t {
  kHashMessage = 1,
  kHashMembershipTimer = 2,
  kHashBroadcastTimer = 3,
  kHashPeerDown = 4,
  kHashDeliver = 5,
  kHashNodeUp = 6,
  kHashNodeDown = 7,
  kHashLost = 8,
  kHashUndeliverable = 9,
};

}  // namespace

std::size_t MessageTypeIndex(const Envelope& message) {
  if (message.index() == 0) return std::get<0>(message).index();
  return kMembershipTypes + std::get<1>(message).index();
}

const char* MessageTypeName(std::size_t type_index) {
  if (type_index < kMembershipTypes) return membership::MessageTypeName(type_index);
  if (type_index < kMessageTypes) return kBroadcastNames[type_index - kMembershipTypes];
  return "?";
}

SimConfig MakeSimConfig(const SimOptions& options) {
  SimConfig config;
  config.seed = options.seed;
  config.nodes = options.nodes;
  config.trace = options.trace;
  config.hyparview.shuffle_interval = options.shuffle_interval;
  return config;
}

Simulator::Simulator(SimConfig config) : config_(std::move(config)), rng_(config_.seed) {
  nodes_.resize(config_.nodes);
  ring_.resize(static_cast<std::size_t>(kRingBuckets));
  // Room for a busy millisecond in every bucket from the start: growing the
  // 4,096 buffers one doubling at a time cost tens of thousands of large
  // allocations, each making malloc consolidate its small free chunks.
  for (auto& bucket : ring_) bucket.reserve(64);
  current_.reserve(1024);
}

Simulator::~Simulator() = default;

std::unique_ptr<Simulator> Simulator::ForkWithPlumtree(const broadcast::PlumtreeConfig& plumtree) const {
  for (const Node& node : nodes_) {
    if (!node.plumtree) continue;
    const broadcast::Plumtree& p = *node.plumtree;
    const broadcast::PlumtreeStats& s = p.stats();
    if (s.broadcasts != 0 || s.delivered != 0 || s.gossip_sent != 0 || s.ihave_sent != 0 || s.graft_sent != 0 ||
        s.prune_sent != 0 || s.graft_received != 0 || s.prune_received != 0 || s.duplicates != 0 ||
        s.from_non_neighbor != 0 || s.beacons_suppressed != 0 || p.root().has_value() || p.seen_ids() != 0 ||
        p.missing_ids() != 0 || p.origin_trees() != 0) {
      return nullptr;
    }
  }
  SimConfig config = config_;
  config.plumtree = plumtree;
  config.trace = nullptr;
  auto fork = std::make_unique<Simulator>(std::move(config));
  fork->rng_ = rng_;
  fork->live_count_ = live_count_;
  fork->shuffle_enabled_ = shuffle_enabled_;
  fork->now_ = now_;
  fork->next_event_seq_ = next_event_seq_;
  fork->current_ = current_;
  fork->current_pos_ = current_pos_;
  fork->ring_ = ring_;
  fork->ring_count_ = ring_count_;
  fork->far_ = far_;
  fork->cursor_ = cursor_;
  for (const auto& chunk : slot_chunks_) {
    fork->slot_chunks_.push_back(std::make_unique<Event[]>(kSlotChunkSize));
    std::copy(chunk.get(), chunk.get() + kSlotChunkSize, fork->slot_chunks_.back().get());
  }
  fork->slot_count_ = slot_count_;
  fork->free_slots_ = free_slots_;
  fork->in_flight_ = in_flight_;
  fork->pair_in_flight_ = pair_in_flight_;
  fork->counters_ = counters_;
  fork->trace_hash_ = trace_hash_;
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    const Node& from = nodes_[i];
    Node& to = fork->nodes_[i];
    to.seeds = from.seeds;
    to.incarnation = from.incarnation;
    to.partition = from.partition;
    to.alive = from.alive;
    to.slow = from.slow;
    to.busy_until = from.busy_until;
    to.backlog = from.backlog;
    to.next_seq = from.next_seq;
    to.plumtree_epoch = from.plumtree_epoch;
    if (!from.hyparview) continue;
    to.hyparview = std::make_unique<membership::HyParView>(*from.hyparview);
    fork->ReplacePlumtree(i, plumtree, from.plumtree->neighbors());
  }
  return fork;
}

void Simulator::ResetPlumtrees(const broadcast::PlumtreeConfig& plumtree) {
  config_.plumtree = plumtree;
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].plumtree) ReplacePlumtree(i, plumtree, nodes_[i].plumtree->neighbors());
  }
}

void Simulator::ReplacePlumtree(NodeIndex index, const broadcast::PlumtreeConfig& plumtree,
                                std::vector<NodeId> peers) {
  Node& node = nodes_[index];
  ++node.plumtree_epoch;  // the old instance's timers (copied into a fork too) are stale
  node.plumtree = std::make_unique<broadcast::Plumtree>(IdOfIndex(index), plumtree);
  // A fresh Plumtree sends nothing to its neighbours (it has delivered
  // nothing); the timers it arms go into the queue as usual.
  for (NodeId peer : peers) FeedBroadcast(index, broadcast::NeighborUp{peer});
}

// ---------------------------------------------------------------- event queue

void Simulator::Push(TimePoint at, Event event) {
  if (std::holds_alternative<MessageDelivery>(event) || std::holds_alternative<PeerDownEvent>(event) ||
      std::holds_alternative<JoinEvent>(event)) {
    ++in_flight_;
  }
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = slot_count_++;
    if ((slot >> kSlotChunkBits) == slot_chunks_.size()) slot_chunks_.push_back(std::make_unique<Event[]>(kSlotChunkSize));
  }
  const NodeIndex node = NodeOf(event);
  SlotAt(slot) = std::move(event);
  QueuePush(HeapEntry{ToMicros(at), next_event_seq_++, slot, node});
}

NodeIndex Simulator::NodeOf(const Event& event) {
  switch (event.index()) {
    case 0: return std::get<0>(event).to;
    case 1: return std::get<1>(event).node;
    case 2: return std::get<2>(event).node;
    case 3: return std::get<3>(event).node;
    default: return std::get<4>(event).node;
  }
}

void Simulator::PrefetchAhead() {
  // A pipeline over the next three events, each stage one pointer deeper,
  // so that no stage waits on memory a later one needs: the third next
  // event's slot and Node record; the second next's protocol object (its
  // pointer is in the Node record, fetched one event ago) and message data;
  // the next one's data inside the protocol object (fetched one event ago).
  // An event runs for about a microsecond, several memory latencies.
  const std::size_t left = current_.size() - current_pos_;
  if (left > 2) PrefetchRecords(current_[current_pos_ + 2]);
  if (left > 1) PrefetchProtocol(current_[current_pos_ + 1]);
  if (left > 0) PrefetchInside(current_[current_pos_]);
}

void Simulator::PrefetchRecords(const HeapEntry& entry) const {
  PrefetchBytes(&SlotAt(entry.slot), sizeof(Event));
  PrefetchBytes(&nodes_[entry.node], sizeof(Node));
}

void Simulator::PrefetchProtocol(const HeapEntry& entry) const {
  const Event& event = SlotAt(entry.slot);
  const Node& node = nodes_[entry.node];
  switch (event.index()) {
    case 0: {
      const Envelope& message = std::get<MessageDelivery>(event).message;
      if (message.index() == 1) {
        if (node.plumtree) PrefetchBytes(node.plumtree.get(), sizeof(broadcast::Plumtree));
        if (const auto* ihave = std::get_if<broadcast::IHave>(&std::get<1>(message))) {
          PrefetchBytes(ihave->entries.data(), std::min<std::size_t>(ihave->entries.size(), 8) * sizeof(broadcast::IHaveEntry));
        }
      } else if (node.hyparview) {
        PrefetchBytes(node.hyparview.get(), sizeof(membership::HyParView));
      }
      break;
    }
    case 1:
      if (node.hyparview) PrefetchBytes(node.hyparview.get(), sizeof(membership::HyParView));
      break;
    case 2:
      if (node.plumtree) PrefetchBytes(node.plumtree.get(), sizeof(broadcast::Plumtree));
      break;
    default:
      break;
  }
}

void Simulator::PrefetchInside(const HeapEntry& entry) const {
  const Event& event = SlotAt(entry.slot);
  const Node& node = nodes_[entry.node];
  if (!node.alive) return;
  if (const auto* delivery = std::get_if<MessageDelivery>(&event)) {
    if (node.incarnation != delivery->to_incarnation) return;
    if (delivery->message.index() == 1) {
      node.plumtree->Prefetch(std::get<1>(delivery->message));
    } else {
      node.hyparview->Prefetch();
    }
  } else if (std::holds_alternative<MembershipTimerEvent>(event)) {
    node.hyparview->Prefetch();
  }
}

void Simulator::QueuePush(const HeapEntry& entry) {
  const std::int64_t bucket = BucketOf(entry.at_us);
  if (bucket <= cursor_) {
    // Rare (nearly every event is scheduled a link latency or a timer
    // interval ahead): a sorted insert into the part not yet run.
    current_.insert(std::upper_bound(current_.begin() + static_cast<std::ptrdiff_t>(current_pos_), current_.end(),
                                     entry, Earlier),
                    entry);
  } else if (bucket < cursor_ + kRingBuckets) {
    ring_[static_cast<std::size_t>(bucket % kRingBuckets)].push_back(entry);
    ++ring_count_;
  } else {
    far_.push_back(entry);
    std::push_heap(far_.begin(), far_.end(), Later);
  }
}

const Simulator::HeapEntry* Simulator::QueueTop() {
  while (current_pos_ == current_.size()) {
    if (ring_count_ == 0 && far_.empty()) return nullptr;
    // Next bucket; with an empty ring, straight to the far heap's first one.
    std::int64_t next = cursor_ + 1;
    if (ring_count_ == 0) next = std::max(next, BucketOf(far_.front().at_us));
    cursor_ = next;
    // Far events now within the ring's reach move in (earliest first).
    while (!far_.empty() && BucketOf(far_.front().at_us) < cursor_ + kRingBuckets) {
      std::pop_heap(far_.begin(), far_.end(), Later);
      const HeapEntry moved = far_.back();
      far_.pop_back();
      QueuePush(moved);
    }
    std::vector<HeapEntry>& slot = ring_[static_cast<std::size_t>(cursor_ % kRingBuckets)];
    if (slot.empty()) continue;
    ring_count_ -= slot.size();
    current_.clear();
    current_pos_ = 0;
    current_.swap(slot);  // the slot keeps current_'s old buffer for reuse
    std::sort(current_.begin(), current_.end(), Earlier);
  }
  return &current_[current_pos_];
}

bool Simulator::PopAndRun() {
  if (QueueTop() == nullptr) return false;
  const HeapEntry entry = current_[current_pos_++];
  // Run in place (no move of the event out of its slot); the slot is free
  // again once it has run.
  PrefetchAhead();
  Event& event = SlotAt(entry.slot);
  now_ = TimeFromMicros(entry.at_us);
  ++counters_.events;
  Process(event);
  free_slots_.push_back(entry.slot);
  return true;
}

void Simulator::RunUntil(TimePoint until) {
  for (const HeapEntry* top = QueueTop(); top != nullptr && top->at_us <= ToMicros(until); top = QueueTop()) {
    PopAndRun();
  }
  if (now_ < until) now_ = until;
}

bool Simulator::RunUntilQuiet(TimePoint limit) {
  while (in_flight_ != 0) {
    const HeapEntry* top = QueueTop();
    if (top == nullptr || top->at_us > ToMicros(limit)) {
      if (now_ < limit) now_ = limit;
      return false;
    }
    PopAndRun();
  }
  return true;
}

// ---------------------------------------------------------------- processing

void Simulator::Process(Event& event) {
  std::visit(
      Overloaded{
          [&](MessageDelivery& e) {
            --in_flight_;
            if (ChangesConnections(e.message)) PairInFlight(e.from, e.to, -1);
            Node& node = nodes_[e.to];
            if (node.slow && node.backlog > 0) --node.backlog;
            if (!node.alive || node.incarnation != e.to_incarnation) {
              // Crashed (or restarted, losing the connection) while the message was in flight.
              ++counters_.undeliverable;
              HashEvent(kHashUndeliverable, e.from, e.to, MessageTypeIndex(e.message));
              if (nodes_[e.from].alive) NotifyPeerDown(e.from, e.to);
              return;
            }
            const std::size_t type = MessageTypeIndex(e.message);
            ++counters_.delivered[type];
            HashEvent(kHashMessage, e.from, e.to, type);
            if (config_.trace) Trace("msg", e.from, e.to, MessageTypeName(type));
            if (message_hook_) message_hook_(MessageEvent{now_, e.from, e.to, e.message});
            const NodeId from = IdOfIndex(e.from);
            if (e.message.index() == 0) {
              FeedMembership(e.to, membership::MessageReceived{from, std::get<0>(std::move(e.message))});
            } else {
              FeedBroadcast(e.to, broadcast::MessageReceived{from, std::get<1>(std::move(e.message))});
            }
          },
          [&](MembershipTimerEvent& e) {
            const Node& node = nodes_[e.node];
            if (!node.alive || node.incarnation != e.incarnation) return;
            HashEvent(kHashMembershipTimer, e.node, static_cast<std::uint64_t>(e.timer.kind), e.timer.generation);
            FeedMembership(e.node, membership::TimerFired{e.timer});
          },
          [&](BroadcastTimerEvent& e) {
            const Node& node = nodes_[e.node];
            if (!node.alive || node.incarnation != e.incarnation || node.plumtree_epoch != e.plumtree_epoch) return;
            HashEvent(kHashBroadcastTimer, e.node, static_cast<std::uint64_t>(e.timer.kind), e.timer.generation);
            FeedBroadcast(e.node, broadcast::TimerFired{e.timer});
          },
          [&](PeerDownEvent& e) {
            --in_flight_;
            PairInFlight(e.node, e.peer, -1);
            const Node& node = nodes_[e.node];
            if (!node.alive || node.incarnation != e.incarnation) return;
            // The peer has restarted since: the failed connection belonged to
            // its previous life, and telling the node now would tear down a
            // connection to the new one.
            if (nodes_[e.peer].incarnation != e.peer_incarnation) return;
            ++counters_.peer_down_notices;
            HashEvent(kHashPeerDown, e.node, e.peer, 0);
            if (config_.trace) Trace("peer_down", e.node, e.peer, "");
            FeedMembership(e.node, membership::PeerDown{IdOfIndex(e.peer)});
          },
          [&](JoinEvent& e) {
            --in_flight_;
            if (nodes_[e.node].alive) return;  // started some other way meanwhile
            StartNode(e.node, e.contacts);
          },
      },
      event);
}

void Simulator::FeedMembership(NodeIndex index, const membership::InEvent& event) {
  nodes_[index].hyparview->handle(event, now_, membership_out_);
  DrainMembership(index);
}

void Simulator::FeedBroadcast(NodeIndex index, const broadcast::InEvent& event) {
  nodes_[index].plumtree->handle(event, now_, broadcast_out_);
  DrainBroadcast(index);
}

void Simulator::DrainMembership(NodeIndex index) {
  // Take the events out first: handling them may feed this node again (a
  // hook that broadcasts), which must find an empty outbox.
  std::vector<membership::OutEvent> events = std::move(membership_out_.events);
  membership_out_.events.clear();
  for (auto& out : events) {
    std::visit(Overloaded{
                   [&](membership::SendMessage& m) {
                     if (!m.to.valid() || m.to.value > nodes_.size()) return;  // no such node
                     Send(index, IndexOfId(m.to), Envelope(std::in_place_index<0>, std::move(m.message)));
                   },
                   [&](membership::CloseConnection&) {},
                   [&](membership::NeighborUp& m) {
                     if (config_.trace) Trace("link_up", index, IndexOfId(m.peer), "");
                     FeedBroadcast(index, broadcast::NeighborUp{m.peer});
                   },
                   [&](membership::NeighborDown& m) {
                     if (config_.trace) Trace("link_down", index, IndexOfId(m.peer), "");
                     FeedBroadcast(index, broadcast::NeighborDown{m.peer});
                   },
                   [&](membership::ScheduleTimer& m) {
                     Push(m.at, MembershipTimerEvent{index, nodes_[index].incarnation, m.timer});
                   },
               },
               out);
  }
  events.clear();
  if (membership_out_.events.empty()) membership_out_.events = std::move(events);  // keep the capacity
}

void Simulator::DrainBroadcast(NodeIndex index) {
  std::vector<broadcast::OutEvent> events = std::move(broadcast_out_.events);
  broadcast_out_.events.clear();
  for (auto& out : events) {
    std::visit(Overloaded{
                   [&](broadcast::SendMessage& m) {
                     if (!m.to.valid() || m.to.value > nodes_.size()) return;
                     Send(index, IndexOfId(m.to), Envelope(std::in_place_index<1>, std::move(m.message)));
                   },
                   [&](broadcast::Deliver& d) {
                     ++counters_.plumtree_deliveries;
                     HashEvent(kHashDeliver, index, d.id.origin.value, d.id.seq * 64 + d.hops);
                     if (config_.trace) {
                       (*config_.trace) << "{\"t\":" << ToMicros(now_) << ",\"k\":\"deliver\",\"node\":"
                                        << IdOfIndex(index).value << ",\"origin\":" << d.id.origin.value
                                        << ",\"seq\":" << d.id.seq << ",\"hops\":" << d.hops
                                        << ",\"from\":" << d.from.value << "}\n";
                     }
                     if (deliver_hook_) deliver_hook_(DeliverEvent{now_, index, d});
                   },
                   [&](broadcast::ScheduleTimer& m) {
                     Push(m.at, BroadcastTimerEvent{index, nodes_[index].incarnation, nodes_[index].plumtree_epoch, m.timer});
                   },
               },
               out);
  }
  events.clear();
  if (broadcast_out_.events.empty()) broadcast_out_.events = std::move(events);
}

// ---------------------------------------------------------------- network

Duration Simulator::LinkLatency(NodeIndex from, NodeIndex to) const {
  const LatencyModel& model = config_.network.latency;
  if (model.kind == LatencyKind::kConstant || model.max <= model.min) return model.min;
  // A link's latency is fixed for the run (so the link is FIFO) and the same
  // both ways: a hash of the seed and the unordered pair of endpoints.
  const std::uint64_t lo = std::min(from, to), hi = std::max(from, to);
  const std::uint64_t h = Mix64(config_.seed * kGoldenGamma ^ Mix64((lo << 32) | hi));
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // [0, 1)
  const double span = static_cast<double>((model.max - model.min).count());
  double extra;
  if (model.kind == LatencyKind::kUniform) {
    extra = u * span;
  } else {
    extra = std::min(span, -static_cast<double>(model.mean.count()) * std::log1p(-u));
  }
  return model.min + Duration(static_cast<std::int64_t>(extra));
}

bool Simulator::ChangesConnections(const Envelope& message) {
  if (message.index() != 0) return false;
  const auto& m = std::get<0>(message);
  return std::holds_alternative<membership::Join>(m) || std::holds_alternative<membership::ForwardJoinReply>(m) ||
         std::holds_alternative<membership::Neighbor>(m) || std::holds_alternative<membership::NeighborReply>(m) ||
         std::holds_alternative<membership::Disconnect>(m);
}

void Simulator::PairInFlight(NodeIndex a, NodeIndex b, int delta) {
  const std::uint64_t key = PairKey(a, b);
  if (delta > 0) {
    ++pair_in_flight_[key];
    return;
  }
  auto it = pair_in_flight_.find(key);
  if (it != pair_in_flight_.end() && --it->second == 0) pair_in_flight_.erase(it);
}

void Simulator::NotifyPeerDown(NodeIndex node, NodeIndex peer) {
  NotifyPeerDownAfter(node, peer, config_.network.failure_detection_delay);
}

void Simulator::NotifyPeerDownAfter(NodeIndex node, NodeIndex peer, Duration delay) {
  PairInFlight(node, peer, +1);
  Push(now_ + delay, PeerDownEvent{node, nodes_[node].incarnation, peer, nodes_[peer].incarnation});
}

void Simulator::Send(NodeIndex from, NodeIndex to, Envelope message) {
  const std::size_t type = MessageTypeIndex(message);
  ++counters_.sent[type];
  Node& target = nodes_[to];
  const bool reachable = target.alive && target.partition == nodes_[from].partition;
  if (!reachable) {
    ++counters_.undeliverable;
    HashEvent(kHashUndeliverable, from, to, type);
    NotifyPeerDown(from, to);
    // A live receiver behind a partition loses the connection too.
    if (target.alive) NotifyPeerDown(to, from);
    return;
  }
  const bool lossy = message.index() == 1 || config_.network.loss_applies_to_membership;
  if (lossy && config_.network.loss > 0.0 && rng_.Chance(config_.network.loss)) {
    ++counters_.lost;
    HashEvent(kHashLost, from, to, type);
    if (config_.trace) Trace("lost", from, to, MessageTypeName(type));
    return;
  }
  TimePoint deliver_at = now_ + LinkLatency(from, to);
  if (target.slow) {
    if (target.backlog >= config_.network.send_queue_bound) {
      // The sender's queue to a node that does not keep up is over its bound:
      // both ends drop the connection.
      ++counters_.undeliverable;
      HashEvent(kHashUndeliverable, from, to, type);
      NotifyPeerDown(from, to);
      NotifyPeerDown(to, from);
      return;
    }
    deliver_at = std::max(deliver_at, target.busy_until) + config_.network.slow_node_service_time;
    target.busy_until = deliver_at;
    ++target.backlog;
  }
  PushDelivery(deliver_at, from, to, target.incarnation, std::move(message));
}

// Out of line on purpose: with the variant moves inlined into Send, GCC 12
// reports the inactive Envelope alternatives as maybe-uninitialized (a known
// false positive under -Werror).
[[gnu::noinline]] void Simulator::PushDelivery(TimePoint at, NodeIndex from, NodeIndex to,
                                               std::uint32_t to_incarnation, Envelope message) {
  if (ChangesConnections(message)) PairInFlight(from, to, +1);
  // Braces, not parentheses: clang before 16 cannot build an aggregate from ( ).
  Event event(std::in_place_type<MessageDelivery>, MessageDelivery{from, to, to_incarnation, std::move(message)});
  Push(at, std::move(event));
}

// ---------------------------------------------------------------- lifecycle

void Simulator::StartNode(NodeIndex index, const std::vector<NodeId>& contacts) {
  Node& node = nodes_[index];
  if (!node.alive) ++live_count_;
  node.alive = true;
  node.seeds = contacts;
  node.backlog = 0;
  node.busy_until = now_;
  node.hyparview = std::make_unique<membership::HyParView>(IdOfIndex(index), config_.hyparview, rng_.Fork());
  node.plumtree = std::make_unique<broadcast::Plumtree>(IdOfIndex(index), config_.plumtree);
  HashEvent(kHashNodeUp, index, node.incarnation, contacts.size());
  if (config_.trace) Trace("up", index, index, "");
  if (!shuffle_enabled_) FeedMembership(index, membership::SetShuffleEnabled{false});
  FeedMembership(index, membership::JoinRequest{contacts});
}

void Simulator::JoinAll(Duration join_interval) {
  if (nodes_.empty()) return;
  const TimePoint start = now_;
  StartNode(0, {});
  // The bootstrap node has no one to join through, but a restart must find
  // the overlay again, as a deployment's first agent is given the others'
  // addresses: it remembers the nodes that join next (ids 2, 3, ...), as
  // many as any other node has seeds. No randomness is drawn, so nothing
  // but a restart of node 0 sees them. (Before, a restarted node 0 came back
  // with no seeds and stayed alone until some short node happened to ask it:
  // the 2 components at the end of churn at 10,000 nodes, seed 2.)
  for (NodeIndex i = 1; i < nodes_.size() && i <= 1 + config_.extra_seeds; ++i) {
    nodes_[0].seeds.push_back(IdOfIndex(i));
  }
  for (NodeIndex i = 1; i < nodes_.size(); ++i) {
    std::vector<NodeId> contacts;
    contacts.push_back(IdOfIndex(static_cast<NodeIndex>(rng_.Uniform(i))));
    for (std::size_t k = 0; k < config_.extra_seeds && contacts.size() < i; ++k) {
      NodeId extra = IdOfIndex(static_cast<NodeIndex>(rng_.Uniform(i)));
      if (std::find(contacts.begin(), contacts.end(), extra) == contacts.end()) contacts.push_back(extra);
    }
    Push(start + join_interval * static_cast<std::int64_t>(i), JoinEvent{i, std::move(contacts)});
  }
  RunUntil(start + join_interval * static_cast<std::int64_t>(nodes_.size() - 1));
}

void Simulator::Crash(NodeIndex index) {
  Node& node = nodes_[index];
  if (!node.alive) return;
  node.alive = false;
  --live_count_;
  ++node.incarnation;  // its timers and the messages addressed to it become stale
  if (config_.network.crash_closes_connections && node.hyparview) {
    // Views are symmetric, so the crashed node's own active view names
    // everyone holding a connection to it.
    for (NodeId peer : node.hyparview->active_view()) {
      const NodeIndex j = IndexOfId(peer);
      if (j < nodes_.size() && nodes_[j].alive) NotifyPeerDownAfter(j, index, LinkLatency(index, j));
    }
  }
  HashEvent(kHashNodeDown, index, node.incarnation, 0);
  if (config_.trace) Trace("down", index, index, "");
}

void Simulator::Restart(NodeIndex index) {
  if (nodes_[index].alive) return;
  // The restarted process has lost every connection: peers that still list
  // the old incarnation as active see the reset now, before its JOIN arrives.
  const NodeId id = IdOfIndex(index);
  for (NodeIndex j = 0; j < nodes_.size(); ++j) {
    if (j == index || !nodes_[j].alive || !nodes_[j].hyparview->is_active(id)) continue;
    FeedMembership(j, membership::PeerDown{id});
  }
  // A new life: failure notices and messages meant for the previous one
  // (or for the time it was down) are recognised as stale.
  ++nodes_[index].incarnation;
  std::vector<NodeId> seeds = nodes_[index].seeds;
  StartNode(index, seeds);
}

std::vector<NodeIndex> Simulator::LiveNodes() const {
  std::vector<NodeIndex> live;
  live.reserve(live_count_);
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].alive) live.push_back(i);
  }
  return live;
}

void Simulator::SetPartition(NodeIndex index, std::uint32_t group) { nodes_[index].partition = group; }

void Simulator::HealPartitions() {
  for (auto& node : nodes_) node.partition = 0;
}

void Simulator::SetSlow(NodeIndex index, bool slow) { nodes_[index].slow = slow; }

void Simulator::SetShuffleEnabled(bool enabled) {
  shuffle_enabled_ = enabled;
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].alive) FeedMembership(i, membership::SetShuffleEnabled{enabled});
  }
}

broadcast::MessageId Simulator::Broadcast(NodeIndex origin, std::string payload) {
  Node& node = nodes_[origin];
  broadcast::MessageId id{IdOfIndex(origin), node.next_seq++};
  if (!node.alive) return id;
  FeedBroadcast(origin, broadcast::BroadcastRequest{id, std::move(payload)});
  return id;
}

// ---------------------------------------------------------------- observation

std::size_t Simulator::NodeMemoryBytes(NodeIndex index) const {
  const Node& node = nodes_[index];
  if (!node.hyparview) return 0;
  return node.hyparview->memory_bytes() + node.plumtree->memory_bytes();
}

bool Simulator::CheckInvariants(std::string* why) const {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason + " (seed " + std::to_string(config_.seed) + ")";
    return false;
  };
  std::string inner;
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    const Node& node = nodes_[i];
    if (!node.alive) continue;
    if (!node.hyparview->CheckInvariants(&inner)) return fail(inner);
    if (!node.plumtree->CheckInvariants(&inner)) return fail(inner);
    const std::vector<NodeId> active = node.hyparview->active_view();
    const auto& eager = node.plumtree->eager_peers();
    const auto& lazy = node.plumtree->lazy_peers();
    for (NodeId p : eager) {
      if (lazy.count(p)) return fail("node " + IdOfIndex(i).ToString() + ": peer " + p.ToString() + " both eager and lazy");
    }
    std::set<NodeId> both(eager.begin(), eager.end());
    both.insert(lazy.begin(), lazy.end());
    if (both != std::set<NodeId>(active.begin(), active.end())) {
      return fail("node " + IdOfIndex(i).ToString() + ": eager ∪ lazy differs from the active view");
    }
    for (NodeId p : active) {
      const NodeIndex j = IndexOfId(p);
      const Node& peer = nodes_[j];
      if (!peer.alive || peer.partition != node.partition) continue;  // failure not yet detected
      if (pair_in_flight_.count(PairKey(i, j)) != 0) continue;        // still settling
      if (!peer.hyparview->is_active(IdOfIndex(i))) {
        return fail("active views asymmetric: " + IdOfIndex(i).ToString() + " lists " + p.ToString() +
                    " but not the reverse");
      }
      if (peer.hyparview->connections_to(IdOfIndex(i)) != node.hyparview->connections_to(p)) {
        return fail("connection ids differ between " + IdOfIndex(i).ToString() + " and " + p.ToString());
      }
    }
  }
  return true;
}

void Simulator::HashEvent(std::uint64_t kind, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  const std::uint64_t words[5] = {static_cast<std::uint64_t>(ToMicros(now_)), kind, a, b, c};
  // Word-wise (not byte-wise FNV): a few multiplies per event keep hashing
  // off the profile of a 30-million-event run.
  for (std::uint64_t w : words) trace_hash_ = Mix64(trace_hash_ ^ w) * 0x100000001b3ULL;
}

void Simulator::Trace(const char* kind, NodeIndex a, NodeIndex b, const char* type) {
  std::ostream& os = *config_.trace;
  os << "{\"t\":" << ToMicros(now_) << ",\"k\":\"" << kind << "\"";
  if (a == b) {
    os << ",\"node\":" << IdOfIndex(a).value;
  } else if (std::string_view(kind) == "link_up" || std::string_view(kind) == "link_down" ||
             std::string_view(kind) == "peer_down") {
    os << ",\"node\":" << IdOfIndex(a).value << ",\"peer\":" << IdOfIndex(b).value;
  } else {
    os << ",\"from\":" << IdOfIndex(a).value << ",\"to\":" << IdOfIndex(b).value;
  }
  if (type[0] != '\0') os << ",\"type\":\"" << type << "\"";
  os << "}\n";
}

}  // namespace gv::sim
