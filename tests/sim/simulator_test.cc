// The simulator core: determinism, the network model (crash, restart,
// partition, slow node, loss) and the invariants it checks, on small overlays.
#include "sim/simulator.h"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "sim/graph_metrics.h"

using namespace gv;
using namespace gv::sim;

namespace {

SimConfig SmallConfig(std::size_t nodes, std::uint64_t seed) {
  SimOptions options;
  options.nodes = nodes;
  options.seed = seed;
  return MakeSimConfig(options);
}

// Runs `duration` in steps, checking every invariant after each step; the
// failure message carries the seed.
void RunChecked(Simulator& sim, Duration duration, Duration step = Millis(250)) {
  const TimePoint end = sim.now() + duration;
  while (sim.now() < end) {
    sim.RunUntil(std::min(end, sim.now() + step));
    std::string why;
    const bool ok = sim.CheckInvariants(&why);
    REQUIRE_MESSAGE(ok, why);
  }
}

void BuildOverlay(Simulator& sim, std::size_t periods) {
  sim.JoinAll(Millis(2));
  RunChecked(sim, sim.config().hyparview.shuffle_interval * static_cast<std::int64_t>(periods), Seconds(1));
}

bool AnyoneLists(const Simulator& sim, NodeIndex target) {
  for (NodeIndex i : sim.LiveNodes()) {
    if (sim.hyparview(i).is_active(IdOfIndex(target))) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("sim: message type slots name both layers") {
  CHECK(std::string(MessageTypeName(0)) == "JOIN");
  CHECK(std::string(MessageTypeName(kGossipType)) == "GOSSIP");
  CHECK(std::string(MessageTypeName(kMessageTypes - 1)) == "PRUNE");
  CHECK(MessageTypeIndex(Envelope(std::in_place_index<0>, membership::KeepAlive{})) == 8);
  CHECK(MessageTypeIndex(Envelope(std::in_place_index<1>, broadcast::Graft{})) == kMembershipTypes + 2);
}

TEST_CASE("sim: the same seed gives the same trace, another seed another") {
  auto run = [](std::uint64_t seed) {
    Simulator sim(SmallConfig(150, seed));
    sim.JoinAll(Millis(2));
    sim.RunFor(Seconds(20));
    for (NodeIndex origin = 0; origin < 5; ++origin) sim.Broadcast(origin * 7, "payload");
    sim.RunFor(Seconds(2));
    return std::make_pair(sim.trace_hash(), sim.counters().events);
  };
  const auto a = run(11), b = run(11), c = run(12);
  CHECK(a.first == b.first);
  CHECK(a.second == b.second);
  CHECK(a.first != c.first);
}

TEST_CASE("sim: events scheduled into the millisecond being run keep time order") {
  // Links faster than the calendar's 1 ms bucket: every message is queued
  // into the bucket being run (a sorted insert), not appended to a later one.
  SimConfig config = SmallConfig(60, 5);
  config.network.latency.kind = LatencyKind::kConstant;
  config.network.latency.min = std::chrono::microseconds(300);
  Simulator sim(config);
  std::int64_t last_us = -1;
  std::uint64_t messages = 0, backwards = 0;
  sim.OnMessage([&](const MessageEvent& e) {
    ++messages;
    if (ToMicros(e.at) < last_us) ++backwards;
    last_us = ToMicros(e.at);
  });
  BuildOverlay(sim, 5);
  std::size_t delivered = 0;
  sim.OnDeliver([&](const DeliverEvent&) { ++delivered; });
  sim.Broadcast(0, "payload");
  sim.RunFor(Seconds(2));
  CHECK(messages > 1000);
  CHECK(backwards == 0);
  CHECK(delivered == sim.live_count());
}

TEST_CASE("sim: a stable overlay is connected, symmetric and has full active views") {
  Simulator sim(SmallConfig(300, 3));
  BuildOverlay(sim, 8);
  Prng rng(1);
  const OverlayMetrics m = MeasureOverlay(sim, rng);
  CHECK(m.live_nodes == 300);
  CHECK(m.components == 1);
  CHECK(m.symmetric);
  CHECK(m.full_active_fraction >= 0.99);
  CHECK(m.shortest_path_exact);
  CHECK(m.average_shortest_path > 2.0);
  CHECK(m.average_shortest_path < 6.0);
  std::size_t counted = 0;
  for (const auto& [degree, nodes] : m.in_degree_histogram) counted += nodes;
  CHECK(counted == 300);
}

TEST_CASE("sim: graph metrics of a triangle are exact") {
  Simulator sim(SmallConfig(3, 5));
  sim.JoinAll(Millis(2));
  RunChecked(sim, Seconds(5));
  CHECK(sim.RunUntilQuiet(sim.now() + Seconds(10)));
  CHECK(sim.in_flight() == 0);
  Prng rng(1);
  const OverlayMetrics m = MeasureOverlay(sim, rng);
  CHECK(m.components == 1);
  CHECK(m.symmetric);
  CHECK(m.clustering_coefficient == doctest::Approx(1.0));
  CHECK(m.average_shortest_path == doctest::Approx(1.0));
  CHECK(m.in_degree_histogram == std::map<std::size_t, std::size_t>{{2, 3}});
  CHECK(m.full_active_fraction == 0.0);  // 2 peers each, the view holds 5
}

TEST_CASE("sim: crashed nodes are detected by keepalives and replaced from passive views") {
  Simulator sim(SmallConfig(200, 4));
  BuildOverlay(sim, 5);
  for (NodeIndex i = 10; i < 20; ++i) sim.Crash(i);
  CHECK(sim.live_count() == 190);
  RunChecked(sim, Seconds(10));
  for (NodeIndex i = 10; i < 20; ++i) CHECK_FALSE(AnyoneLists(sim, i));
  const OverlayHealth health = MeasureHealth(sim);
  CHECK(health.components == 1);
  CHECK(health.full_active * 100 >= health.live_nodes * 97);
  CHECK(sim.counters().peer_down_notices > 0);
}

TEST_CASE("sim: a restarted node re-joins through its seeds with fresh state") {
  Simulator sim(SmallConfig(100, 6));
  BuildOverlay(sim, 3);
  sim.Crash(42);
  RunChecked(sim, Seconds(3));
  sim.Restart(42);
  CHECK(sim.alive(42));
  RunChecked(sim, Seconds(10));
  CHECK(sim.hyparview(42).active_size() > 0);
  CHECK(MeasureHealth(sim).components == 1);
}

TEST_CASE("sim: a restarted bootstrap node re-joins through the nodes that joined after it") {
  // Node 0 starts alone (no contact); before it remembered seeds, a restart
  // left it with none and alone for good (churn at 10,000 nodes, seed 2).
  Simulator sim(SmallConfig(100, 9));
  BuildOverlay(sim, 3);
  CHECK(sim.seeds(0) == std::vector<NodeId>{IdOfIndex(1), IdOfIndex(2), IdOfIndex(3)});
  sim.Crash(0);
  RunChecked(sim, Seconds(3));
  sim.Restart(0);
  CHECK(sim.hyparview(0).active_size() == 1);  // its JOIN opened a link at once
  CHECK(sim.hyparview(0).stats().joins_sent == 1);
  RunChecked(sim, Seconds(5));
  CHECK(sim.hyparview(0).active_size() > 1);
  CHECK(MeasureHealth(sim).components == 1);
}

TEST_CASE("sim: the nodes that accept a restarted node's FORWARDJOINs announce recent ids on a link it holds") {
  // Each node that takes a (re)joining node in at the end of a FORWARDJOIN
  // walk announces its recent ids on the new link. The reply that opens the
  // link at the joiner must arrive first, or the joiner drops the
  // announcement as coming from a non-neighbour: churn at 10,000 nodes,
  // seed 1, lost one delivery that way (its JOIN contact had just restarted
  // too and had nothing to announce).
  Simulator sim(SmallConfig(100, 11));
  BuildOverlay(sim, 3);
  const NodeIndex restarted = 42;
  sim.Crash(restarted);
  RunChecked(sim, Seconds(3));
  const broadcast::MessageId id = sim.Broadcast(7, "while it was down");
  RunChecked(sim, Seconds(2));
  std::size_t announcements = 0;  // IHAVEs naming `id` that reach the restarted node
  sim.OnMessage([&](const MessageEvent& e) {
    if (e.to != restarted || e.message.index() != 1) return;
    if (const auto* ihave = std::get_if<broadcast::IHave>(&std::get<1>(e.message))) {
      for (const broadcast::IHaveEntry& entry : ihave->entries) announcements += entry.id == id ? 1 : 0;
    }
  });
  sim.Restart(restarted);
  RunChecked(sim, Seconds(3));
  sim.OnMessage(nullptr);
  CHECK(sim.hyparview(restarted).stats().joins_sent == 1);
  CHECK(sim.hyparview(restarted).active_size() > 1);
  CHECK(announcements > 1);  // the JOIN contact's and the walks' ends'
  CHECK(sim.plumtree(restarted).stats().from_non_neighbor == 0);
  CHECK(sim.plumtree(restarted).has_seen(id));
}

TEST_CASE("sim: no active link crosses a partition; once it heals, the two overlays join again") {
  Simulator sim(SmallConfig(120, 7));
  BuildOverlay(sim, 3);
  for (NodeIndex i = 0; i < 60; ++i) sim.SetPartition(i, 1);
  RunChecked(sim, Seconds(15));
  for (NodeIndex i : sim.LiveNodes()) {
    for (NodeId peer : sim.hyparview(i).active_view()) CHECK((i < 60) == (IndexOfId(peer) < 60));
  }
  CHECK(MeasureHealth(sim).components == 2);
  sim.HealPartitions();
  // Each side is a healthy overlay with full views whose passive views name
  // only its own side: only the reconnects to peers lost across the cut
  // (every reconnect_interval, 30 s) can join them. Without them the overlay
  // stayed in 2 components for good.
  RunChecked(sim, sim.config().hyparview.reconnect_interval + Seconds(5));
  CHECK(MeasureHealth(sim).components == 1);
  std::uint64_t accepted = 0;
  for (NodeIndex i : sim.LiveNodes()) accepted += sim.hyparview(i).stats().reconnects_accepted;
  CHECK(accepted >= 1);
  // And a broadcast from one side reaches the other.
  std::size_t delivered = 0;
  sim.OnDeliver([&](const DeliverEvent&) { ++delivered; });
  sim.Broadcast(0, "after the cut");
  RunChecked(sim, Seconds(5));
  sim.OnDeliver({});
  CHECK(delivered == sim.live_count());
}

TEST_CASE("sim: a slow node whose queue overflows is reported down at both ends") {
  SimConfig config = SmallConfig(60, 8);
  config.network.send_queue_bound = 4;
  config.network.slow_node_service_time = Millis(100);
  // No root beacon: every link stays eager (nothing prunes), so the burst's
  // GOSSIPs all go to the slow node.
  config.plumtree.root_beacon_interval = Duration::zero();
  Simulator sim(config);
  BuildOverlay(sim, 2);
  const NodeIndex slow = 30;
  const std::vector<NodeId> peers = sim.hyparview(slow).active_view();
  REQUIRE_FALSE(peers.empty());
  const NodeIndex sender = IndexOfId(peers.front());
  sim.SetSlow(slow, true);
  // A burst from one neighbour: its GOSSIPs pile up at the slow node.
  for (int k = 0; k < 12; ++k) sim.Broadcast(sender, "burst");
  sim.RunFor(Millis(10));
  CHECK(sim.counters().undeliverable > 0);
  RunChecked(sim, Seconds(3));
  CHECK(sim.hyparview(sender).stats().peer_down >= 1);
  CHECK(sim.hyparview(slow).stats().peer_down >= 1);
}

TEST_CASE("sim: loss drops broadcast messages only; GRAFTs still reach everyone") {
  SimConfig config = SmallConfig(100, 9);
  Simulator sim(config);
  BuildOverlay(sim, 3);
  sim.SetLoss(0.2);
  std::size_t deliveries = 0;
  sim.OnDeliver([&](const DeliverEvent&) { ++deliveries; });
  for (NodeIndex origin = 0; origin < 10; ++origin) sim.Broadcast(origin, "lossy");
  RunChecked(sim, Seconds(30));
  CHECK(sim.counters().lost > 0);
  // Loss never touches membership: every membership message sent reached a
  // live node or failed as undeliverable (there are no crashes here).
  std::uint64_t membership_sent = 0, membership_delivered = 0;
  for (std::size_t t = 0; t < kMembershipTypes; ++t) {
    membership_sent += sim.counters().sent[t];
    membership_delivered += sim.counters().delivered[t];
  }
  CHECK(membership_sent - membership_delivered <= sim.counters().undeliverable + sim.in_flight());
  // Plumtree's repair gets (nearly) everything through 20% loss; its own tests
  // (tests/sim/broadcast_scenarios_test.cc) assert the exact figures.
  CHECK(deliveries >= 990);
}

TEST_CASE("sim: the message and delivery hooks see every event") {
  Simulator sim(SmallConfig(80, 10));
  BuildOverlay(sim, 2);
  std::uint64_t gossips = 0, deliveries = 0, max_hops = 0;
  sim.OnMessage([&](const MessageEvent& e) {
    if (MessageTypeIndex(e.message) == kGossipType) ++gossips;
  });
  sim.OnDeliver([&](const DeliverEvent& e) {
    ++deliveries;
    max_hops = std::max<std::uint64_t>(max_hops, e.deliver.hops);
  });
  const std::uint64_t gossip_before = sim.counters().delivered[kGossipType];
  sim.Broadcast(0, "x");
  RunChecked(sim, Seconds(3));
  CHECK(deliveries == 80);
  CHECK(gossips == sim.counters().delivered[kGossipType] - gossip_before);
  CHECK(gossips >= 79);  // every node but the origin got at least one copy
  CHECK(max_hops >= 2);
}

TEST_CASE("sim: a fork with another Plumtree runs exactly as the same overlay built with it") {
  broadcast::PlumtreeConfig flooding;
  flooding.eager_flooding = true;
  // Built without the root beacon: a Plumtree that beacons has done more
  // than follow its neighbours (the broadcast scenarios build this way and
  // start the beacons with ResetPlumtrees).
  SimConfig original_config = SmallConfig(120, 5);
  original_config.plumtree.root_beacon_interval = Duration::zero();
  Simulator original(original_config);
  original.JoinAll(Millis(2));
  original.RunFor(Seconds(20));
  std::unique_ptr<Simulator> fork = original.ForkWithPlumtree(flooding);
  REQUIRE(fork != nullptr);
  SimConfig config = SmallConfig(120, 5);
  config.plumtree = flooding;
  Simulator built(config);
  built.JoinAll(Millis(2));
  built.RunFor(Seconds(20));
  CHECK(fork->trace_hash() == built.trace_hash());

  const std::uint64_t original_hash = original.trace_hash();
  auto drive = [](Simulator& sim) {
    for (NodeIndex k = 0; k < 20; ++k) {
      sim.Broadcast((k * 7) % 120, "x");
      sim.RunFor(Millis(50));
    }
    sim.RunFor(Seconds(5));
    std::string why;
    CHECK_MESSAGE(sim.CheckInvariants(&why), why);
    return std::make_pair(sim.trace_hash(), sim.counters().sent[kGossipType]);
  };
  const auto forked_run = drive(*fork);
  CHECK(forked_run == drive(built));
  CHECK(forked_run.second > 20 * 119 * 2);  // it really floods: every link carries every payload
  CHECK(original.trace_hash() == original_hash);  // the fork shares nothing with its original

  // Once a Plumtree has carried a broadcast its state is more than its
  // neighbours: no exact fork exists.
  original.Broadcast(0, "y");
  original.RunFor(Seconds(1));
  CHECK(original.ForkWithPlumtree(flooding) == nullptr);
}

TEST_CASE("sim: ResetPlumtrees starts the root beacon on a built overlay; the old instances' timers are dropped") {
  SimConfig config = SmallConfig(150, 12);
  broadcast::PlumtreeConfig beacons = config.plumtree;
  REQUIRE(beacons.root_beacon_interval > Duration::zero());
  config.plumtree.root_beacon_interval = Duration::zero();
  Simulator sim(config);
  BuildOverlay(sim, 2);
  sim.ResetPlumtrees(beacons);
  // A fork taken now (no beacon sent yet) is exact and beacons too.
  std::unique_ptr<Simulator> fork = sim.ForkWithPlumtree(beacons);
  REQUIRE(fork != nullptr);
  for (Simulator* s : {&sim, fork.get()}) {
    s->RunFor(beacons.root_election_window + 3 * beacons.root_beacon_interval);
    std::string why;
    CHECK_MESSAGE(s->CheckInvariants(&why), why);
    std::optional<NodeId> root;
    std::uint64_t beacons_sent = 0;
    std::size_t eager_links = 0;
    for (NodeIndex i : s->LiveNodes()) {
      const broadcast::Plumtree& p = s->plumtree(i);
      REQUIRE(p.root().has_value());
      if (!root) root = p.root();
      CHECK(p.root() == root);  // one root overlay-wide
      beacons_sent += p.stats().beacons_sent;
      eager_links += p.eager_peers().size();
    }
    // The root beaconed once per interval (a doubled timer would double
    // this), and the shared tree is a spanning tree.
    const std::uint64_t root_beacons = s->plumtree(IndexOfId(*root)).stats().beacons_sent;
    CHECK(root_beacons >= 3);
    CHECK(root_beacons <= 5);
    CHECK(eager_links / 2 == s->live_count() - 1);
    CHECK(beacons_sent >= 4);
  }
  CHECK(fork->trace_hash() == sim.trace_hash());
}
