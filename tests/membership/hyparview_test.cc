// HyParView unit tests: one state machine, a scripted input, and its WHOLE
// output compared line by line. Random choices (victims, walk steps,
// connection ids) are predicted with a replica of the node's Prng: the core
// draws from it in a fixed order, so the expected output is exact.
#include "membership/hyparview.h"
#include "common/overloaded.h"

#include <doctest/doctest.h>

#include <map>
#include <sstream>
#include <string>

using namespace gv;
using namespace gv::membership;

namespace {

constexpr std::uint64_t kSeed = 7;


struct Harness {
  explicit Harness(HyParViewConfig config = {}) : node(NodeId(1), config, Prng(kSeed)) {}

  // Connection ids below 1000 are the test's own; larger ones were drawn by
  // the node and are shown as c1, c2, ... in order of first appearance.
  std::string Conn(ConnectionId c) {
    if (c < 1000) return std::to_string(c);
    auto it = names.find(c);
    if (it == names.end()) it = names.emplace(c, "c" + std::to_string(names.size() + 1)).first;
    return it->second;
  }

  std::string RenderMessage(const Message& m) {
    return std::visit(
        Overloaded{
            [&](const Join& j) { return "JOIN(" + Conn(j.connection) + ")"; },
            [&](const ForwardJoin& f) {
              return "FORWARDJOIN(" + std::to_string(f.new_node.value) + ",ttl=" + std::to_string(f.ttl) + ")";
            },
            [&](const ForwardJoinReply& r) { return "FORWARDJOINREPLY(" + Conn(r.connection) + ")"; },
            [&](const Neighbor& n) {
              return std::string("NEIGHBOR(") + (n.priority == Priority::kHigh ? "high" : "low") + "," +
                     Conn(n.connection) +
                     (n.lost_for > Duration::zero() ? ",lost " + std::to_string(ToMillis(n.lost_for)) + " ms" : "") +
                     ")";
            },
            [&](const NeighborReply& r) {
              std::string text = "NEIGHBORREPLY(" + Conn(r.connection) + "," + (r.accepted ? "accept" : "reject");
              if (!r.candidates.empty()) {
                text += ",[";
                for (std::size_t i = 0; i < r.candidates.size(); ++i) {
                  text += (i ? "," : "") + std::to_string(r.candidates[i].value);
                }
                text += "]";
              }
              return text + ")";
            },
            [&](const Disconnect& d) { return "DISCONNECT(" + Conn(d.connection) + ")"; },
            [&](const Shuffle& s) {
              std::string text = "SHUFFLE(origin=" + std::to_string(s.origin.value) + ",ttl=" + std::to_string(s.ttl) + ",[";
              for (std::size_t i = 0; i < s.nodes.size(); ++i) text += (i ? "," : "") + std::to_string(s.nodes[i].value);
              return text + "])";
            },
            [&](const ShuffleReply& s) {
              std::string text = "SHUFFLEREPLY([";
              for (std::size_t i = 0; i < s.nodes.size(); ++i) text += (i ? "," : "") + std::to_string(s.nodes[i].value);
              return text + "])";
            },
            [&](const KeepAlive&) { return std::string("KEEPALIVE"); },
        },
        m);
  }

  std::string Render(const Outbox& box) {
    std::ostringstream os;
    for (const auto& e : box.events) {
      std::visit(Overloaded{
                     [&](const SendMessage& s) { os << "send " << s.to.value << " " << RenderMessage(s.message) << "\n"; },
                     [&](const CloseConnection& c) { os << "close " << c.peer.value << "\n"; },
                     [&](const NeighborUp& u) { os << "up " << u.peer.value << "\n"; },
                     [&](const NeighborDown& d) { os << "down " << d.peer.value << (d.failed ? " failed" : "") << "\n"; },
                     [&](const ScheduleTimer& t) {
                       os << "timer "
                          << (t.timer.kind == TimerKind::kShuffle     ? "shuffle"
                              : t.timer.kind == TimerKind::kReconnect ? "reconnect"
                                                                      : "tick")
                          << " g"
                          << t.timer.generation << " at " << ToMicros(t.at) << "\n";
                     },
                 },
                 e);
    }
    return os.str();
  }

  std::string Feed(const InEvent& event) {
    Outbox box;
    node.handle(event, now, box);
    std::string why;
    CHECK_MESSAGE(node.CheckInvariants(&why), why);
    return Render(box);
  }
  std::string Receive(std::uint64_t from, Message m) { return Feed(MessageReceived{NodeId(from), std::move(m)}); }
  // The connection id the node drew that the output showed as `shown` ("c1").
  ConnectionId Drawn(const std::string& shown) const {
    for (const auto& [id, name] : names) {
      if (name == shown) return id;
    }
    FAIL_CHECK("no connection shown as " << shown);
    return 0;
  }

  // Makes `peer` active through a low-priority NEIGHBOR (draws no randomness
  // while the view has room).
  void Link(std::uint64_t peer, ConnectionId connection) {
    CHECK(Receive(peer, Neighbor{Priority::kLow, connection}) ==
          "send " + std::to_string(peer) + " NEIGHBORREPLY(" + std::to_string(connection) + ",accept)\nup " +
              std::to_string(peer) + "\n");
  }

  HyParView node;
  TimePoint now = TimeFromMicros(1'000'000);
  std::map<ConnectionId, std::string> names;
};

std::vector<std::uint64_t> Ids(const std::vector<NodeId>& ids) {
  std::vector<std::uint64_t> v;
  for (NodeId id : ids) v.push_back(id.value);
  return v;
}

}  // namespace

TEST_CASE("hyparview: the first node only arms its timers") {
  Harness h;
  Prng replica(kSeed);
  const auto shuffle_phase = replica.Uniform(10'000'000 + 1);
  const auto tick_phase = replica.Uniform(1'000'000 + 1);
  CHECK(h.Feed(JoinRequest{}) == "timer shuffle g1 at " + std::to_string(1'000'000 + shuffle_phase) +
                                     "\ntimer tick g1 at " + std::to_string(1'000'000 + tick_phase) + "\n");
  CHECK(h.node.active_size() == 0);
}

TEST_CASE("hyparview: JOIN through a contact opens the connection at once") {
  Harness h;
  Prng replica(kSeed);
  const auto shuffle_phase = replica.Uniform(10'000'000 + 1);
  const auto tick_phase = replica.Uniform(1'000'000 + 1);
  CHECK(h.Feed(JoinRequest{{NodeId(5)}}) == "timer shuffle g1 at " + std::to_string(1'000'000 + shuffle_phase) +
                                                "\ntimer tick g1 at " + std::to_string(1'000'000 + tick_phase) +
                                                "\nup 5\nsend 5 JOIN(c1)\n");
  CHECK(Ids(h.node.active_view()) == std::vector<std::uint64_t>{5});
}

TEST_CASE("hyparview: a contact takes the joiner and starts a FORWARDJOIN walk on every other link") {
  Harness h;
  h.Link(3, 30);
  h.Link(4, 40);
  CHECK(h.Receive(9, Join{90}) == "up 9\nsend 3 FORWARDJOIN(9,ttl=6)\nsend 4 FORWARDJOIN(9,ttl=6)\n");
  CHECK(Ids(h.node.active_view()) == std::vector<std::uint64_t>{3, 4, 9});
}

TEST_CASE("hyparview: a full contact evicts a random peer for the joiner") {
  Harness h;
  for (std::uint64_t p = 2; p <= 6; ++p) h.Link(p, p * 10);
  Prng replica(kSeed);
  const std::uint64_t victim = 2 + replica.Index(5);  // candidates 2..6 in id order
  std::string expected = "send " + std::to_string(victim) + " DISCONNECT(" + std::to_string(victim * 10) + ")\n" +
                         "down " + std::to_string(victim) + "\nclose " + std::to_string(victim) + "\nup 9\n";
  for (std::uint64_t p = 2; p <= 6; ++p) {
    if (p != victim) expected += "send " + std::to_string(p) + " FORWARDJOIN(9,ttl=6)\n";
  }
  CHECK(h.Receive(9, Join{90}) == expected);
  CHECK(h.node.active_size() == 5);
  CHECK(Ids(h.node.passive_view()) == std::vector<std::uint64_t>{victim});
}

TEST_CASE("hyparview: FORWARDJOIN walks on, records at PRWL, and ends at ttl 0 or a lone link") {
  SUBCASE("ttl > PRWL: forwarded to a random active peer other than the sender") {
    Harness h;
    h.Link(2, 20);
    h.Link(3, 30);
    h.Link(4, 40);
    Prng replica(kSeed);
    std::vector<NodeId> candidates{NodeId(3), NodeId(4)};
    replica.Shuffle(candidates);
    CHECK(h.Receive(2, ForwardJoin{NodeId(9), 6}) ==
          "send " + std::to_string(candidates[0].value) + " FORWARDJOIN(9,ttl=5)\n");
    CHECK(h.node.passive_view().empty());
  }
  SUBCASE("ttl == PRWL: the new node enters the passive view, the walk goes on") {
    Harness h;
    h.Link(2, 20);
    h.Link(3, 30);
    CHECK(h.Receive(2, ForwardJoin{NodeId(9), 3}) == "send 3 FORWARDJOIN(9,ttl=2)\n");
    CHECK(Ids(h.node.passive_view()) == std::vector<std::uint64_t>{9});
  }
  SUBCASE("ttl 0: the walk ends here, the node opens a connection to the new node") {
    Harness h;
    h.Link(2, 20);
    h.Link(3, 30);
    CHECK(h.Receive(2, ForwardJoin{NodeId(9), 0}) == "send 9 FORWARDJOINREPLY(c1)\nup 9\n");
    CHECK(Ids(h.node.active_view()) == std::vector<std::uint64_t>{2, 3, 9});
  }
  SUBCASE("the sender is the only active peer: the walk ends early") {
    Harness h;
    h.Link(2, 20);
    CHECK(h.Receive(2, ForwardJoin{NodeId(9), 5}) == "send 9 FORWARDJOINREPLY(c1)\nup 9\n");
  }
  SUBCASE("the new node is already a neighbour: nothing to do") {
    Harness h;
    h.Link(2, 20);
    h.Link(9, 90);
    CHECK(h.Receive(2, ForwardJoin{NodeId(9), 0}).empty());
  }
  SUBCASE("the joiner itself, on FORWARDJOINREPLY, takes the connection") {
    Harness h;
    CHECK(h.Receive(4, ForwardJoinReply{44}) == "up 4\n");
    CHECK(h.node.connections_to(NodeId(4)) == std::vector<ConnectionId>{44});
  }
}

TEST_CASE("hyparview: NEIGHBOR low is refused by a full view, high always accepted") {
  Harness h;
  for (std::uint64_t p = 2; p <= 6; ++p) h.Link(p, p * 10);
  // A refusal hands out kp = 4 random active peers as candidates.
  Prng replica(kSeed);
  std::vector<NodeId> sample{NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6)};
  replica.Shuffle(sample);
  std::string listed;
  for (std::size_t i = 0; i < 4; ++i) listed += (i ? "," : "") + std::to_string(sample[i].value);
  CHECK(h.Receive(9, Neighbor{Priority::kLow, 90}) == "send 9 NEIGHBORREPLY(90,reject,[" + listed + "])\n");
  CHECK(Ids(h.node.passive_view()) == std::vector<std::uint64_t>{9});
  const std::uint64_t victim = 2 + replica.Index(5);
  CHECK(h.Receive(8, Neighbor{Priority::kHigh, 80}) ==
        "send 8 NEIGHBORREPLY(80,accept)\nsend " + std::to_string(victim) + " DISCONNECT(" +
            std::to_string(victim * 10) + ")\ndown " + std::to_string(victim) + "\nclose " + std::to_string(victim) +
            "\nup 8\n");
  CHECK(h.node.is_active(NodeId(8)));
  CHECK(h.node.passive_view().size() == 2);
}

TEST_CASE("hyparview: a refusal names other recent seekers first, and the requester tries them first") {
  Harness h;
  for (std::uint64_t p = 2; p <= 6; ++p) h.Link(p, p * 10);
  Prng replica(kSeed);
  std::vector<NodeId> first{NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6)};
  replica.Shuffle(first);
  (void)h.Receive(9, Neighbor{Priority::kLow, 90});  // refused: 9 is now a recent seeker
  std::vector<NodeId> second{NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6)};
  replica.Shuffle(second);
  CHECK(h.Receive(7, Neighbor{Priority::kLow, 70}) ==
        "send 7 NEIGHBORREPLY(70,reject,[9," + std::to_string(second[0].value) + "," +
            std::to_string(second[1].value) + "," + std::to_string(second[2].value) + "])\n");
  // Long after, 9 is no longer handed out.
  h.now += Seconds(10);
  std::vector<NodeId> third{NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6)};
  replica.Shuffle(third);
  CHECK(h.Receive(8, Neighbor{Priority::kLow, 80}) ==
        "send 8 NEIGHBORREPLY(80,reject,[" + std::to_string(third[0].value) + "," + std::to_string(third[1].value) +
            "," + std::to_string(third[2].value) + "," + std::to_string(third[3].value) + "])\n");

}

TEST_CASE("hyparview: the candidates of a refusal are asked first, in their order") {
  HyParViewConfig config;
  config.active_view_size = 2;  // one free slot once linked to 2
  Harness h(config);
  h.Link(2, 20);
  CHECK(h.Receive(5, ShuffleReply{{NodeId(5), NodeId(6)}}).empty());
  Prng replica(kSeed);
  const std::uint64_t asked = replica.Index(2) == 0 ? 5 : 6;
  CHECK(h.Feed(PeerDown{NodeId(99)}) == "send " + std::to_string(asked) + " NEIGHBOR(low,c1)\n");
  const ConnectionId c1 = h.Drawn("c1");
  // Refused, naming 11 then 12: 11 is asked next, not a random passive peer.
  CHECK(h.Receive(asked, NeighborReply{c1, false, {NodeId(11), NodeId(12)}}) == "send 11 NEIGHBOR(low,c2)\n");
}


TEST_CASE("hyparview: DISCONNECT moves the peer to passive and asks another passive peer") {
  Harness h;
  h.Link(2, 20);
  h.Link(3, 30);
  // Fill the passive view with 7 through a refused request... from a full view
  // we cannot: use a SHUFFLEREPLY, which only touches the passive view.
  CHECK(h.Receive(7, ShuffleReply{{NodeId(7)}}).empty());
  // 3 drops us. It is not asked back at once (it just refused us); 7 is.
  CHECK(h.Receive(3, Disconnect{30}) == "down 3\nclose 3\nsend 7 NEIGHBOR(low,c1)\n");
  CHECK(Ids(h.node.passive_view()) == std::vector<std::uint64_t>{7, 3});
  CHECK(h.node.pending_neighbor_requests() == 1);
  // A DISCONNECT naming a connection that is not the current one is stale.
  CHECK(h.Receive(2, Disconnect{999}).empty());
  CHECK(h.node.is_active(NodeId(2)));
}

TEST_CASE("hyparview: failure of an active peer promotes a passive one; an accept completes it") {
  Harness h;
  h.Link(2, 20);
  h.Link(3, 30);
  CHECK(h.Receive(5, ShuffleReply{{NodeId(5)}}).empty());
  CHECK(h.Feed(PeerDown{NodeId(2)}) == "down 2 failed\nclose 2\ntimer reconnect g0 at 31000000\nsend 5 NEIGHBOR(low,c1)\n");
  CHECK(h.node.passive_view().size() == 1);  // the failed peer is not kept as a candidate
  // The reply names our connection id: the link opens.
  Outbox box;
  h.node.handle(PeerDown{NodeId(99)}, h.now, box);  // unknown peer: nothing
  CHECK(box.events.empty());
  const ConnectionId c1 = h.Drawn("c1");
  CHECK(h.Receive(5, NeighborReply{c1, true, {}}) == "up 5\n");
  CHECK(Ids(h.node.active_view()) == std::vector<std::uint64_t>{3, 5});
  CHECK(h.node.pending_neighbor_requests() == 0);
  CHECK(h.node.passive_view().empty());
}

TEST_CASE("hyparview: a refused NEIGHBOR makes the node try the next passive peer, not the same one") {
  Harness h;
  h.Link(2, 20);
  CHECK(h.Receive(5, ShuffleReply{{NodeId(5), NodeId(6)}}).empty());
  // Node 2 fails: both passive peers are asked at once (4 free slots).
  const std::string out = h.Feed(PeerDown{NodeId(2)});
  // With the active view empty the requests are high priority.
  Prng replica(kSeed);
  const std::uint64_t first = replica.Index(2) == 0 ? 5 : 6;
  const std::uint64_t second = first == 5 ? 6 : 5;
  CHECK(out == "down 2 failed\nclose 2\ntimer reconnect g0 at 31000000\nsend " + std::to_string(first) +
                   " NEIGHBOR(high,c1)\nsend " +
                   std::to_string(second) + " NEIGHBOR(high,c2)\n");
  // `first` refuses and names node 8: `first` is not asked again in this
  // round, 8 is asked at once (still high: the view is still empty).
  const ConnectionId c1 = h.Drawn("c1");
  CHECK(h.Receive(first, NeighborReply{c1, false, {NodeId(8)}}) == "send 8 NEIGHBOR(high,c3)\n");
  CHECK(h.node.pending_neighbor_requests() == 2);
  CHECK(h.node.stats().neighbor_rejected == 1);
  // A refusal without news leaves nothing to ask.
  const ConnectionId c3 = h.Drawn("c3");
  CHECK(h.Receive(8, NeighborReply{c3, false, {}}).empty());
  CHECK(h.node.pending_neighbor_requests() == 1);
}

TEST_CASE("hyparview: an isolated node re-joins through its seeds") {
  Harness h;
  (void)h.Feed(JoinRequest{{NodeId(5), NodeId(6)}});  // links to one of them at once
  const std::uint64_t contact = h.node.active_view().at(0).value;
  CHECK(h.Feed(PeerDown{NodeId(contact)}) ==
        "down " + std::to_string(contact) + " failed\nclose " + std::to_string(contact) +
            "\ntimer reconnect g0 at 31000000\n");
  CHECK(h.node.active_size() == 0);
  // The next tick finds it without any peer and JOINs through a seed again.
  const std::string tick = h.Feed(TimerFired{Timer{TimerKind::kTick, 1}});
  CHECK(tick.find("up ") != std::string::npos);
  CHECK(tick.find(" JOIN(c2)\n") != std::string::npos);
  CHECK(h.node.stats().rejoins == 1);
  CHECK(h.node.active_size() == 1);
}

TEST_CASE("hyparview: short of peers with no passive peer to ask, it takes members the host knows") {
  Harness h;
  h.Link(2, 20);
  // One active peer, an empty passive view: the state the survivors of a
  // small cluster were left in (each knew only its partner).
  CHECK(h.node.wants_candidates());
  // Self, the active peer and a repeat are skipped; kp = 4 of the 5 others
  // are drawn, join the passive view and are asked at once (4 free slots).
  const std::string out = h.Feed(KnownPeers{{NodeId(1), NodeId(2), NodeId(5), NodeId(6), NodeId(5), NodeId(7),
                                             NodeId(8), NodeId(9)}});
  Prng replica(kSeed);
  std::vector<std::uint64_t> sample = {5, 6, 7, 8, 9};
  replica.Shuffle(sample);
  sample.resize(4);
  std::string expected;
  std::vector<std::uint64_t> candidates = sample;  // passive order = insertion order
  for (int k = 1; k <= 4; ++k) {
    const std::size_t pick = replica.Index(candidates.size());
    expected += "send " + std::to_string(candidates[pick]) + " NEIGHBOR(low,c" + std::to_string(k) + ")\n";
    candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(pick));
    (void)replica.NextU64();  // the connection id
  }
  CHECK(out == expected);
  CHECK(Ids(h.node.passive_view()) == sample);
  CHECK(h.node.stats().known_peers_taken == 4);
  CHECK(h.node.pending_neighbor_requests() == 4);
  // Every slot is asked for now: no more candidates wanted, an offer is ignored.
  CHECK_FALSE(h.node.wants_candidates());
  CHECK(h.Feed(KnownPeers{{NodeId(9), NodeId(10)}}).empty());
  CHECK(h.node.stats().known_peers_taken == 4);
}

TEST_CASE("hyparview: an askable passive peer means the host's members are not taken") {
  Harness h;
  h.Link(2, 20);
  h.Link(3, 30);
  CHECK(h.Receive(5, ShuffleReply{{NodeId(5)}}).empty());
  // A free slot and an askable passive peer (no tick has asked it yet).
  CHECK_FALSE(h.node.wants_candidates());
  CHECK(h.Feed(KnownPeers{{NodeId(7), NodeId(8)}}).empty());
  CHECK(Ids(h.node.passive_view()) == std::vector<std::uint64_t>{5});
  CHECK(h.node.stats().known_peers_taken == 0);
  // A full active view wants nothing either.
  Harness full;
  for (std::uint64_t peer = 2; peer <= 6; ++peer) full.Link(peer, peer * 10);
  CHECK_FALSE(full.node.wants_candidates());
  CHECK(full.Feed(KnownPeers{{NodeId(7)}}).empty());
}

TEST_CASE("hyparview: a peer lost to a failure is asked back with high priority every reconnect_interval") {
  Harness h;
  h.Link(2, 20);
  h.Link(3, 30);
  // Node 2's connection fails: it is remembered, and the reconnect timer armed
  // (the passive view is empty: nothing else to ask).
  CHECK(h.Feed(PeerDown{NodeId(2)}) == "down 2 failed\nclose 2\ntimer reconnect g0 at 31000000\n");
  // 30 s later (the cut healed): one failed peer, so it is the one drawn.
  h.now = TimeFromMicros(31'000'000);
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kReconnect, 0}}) ==
        "timer reconnect g0 at 61000000\nsend 2 NEIGHBOR(high,c1,lost 30000 ms)\n");
  CHECK(h.node.stats().reconnects_sent == 1);
  const ConnectionId c1 = h.Drawn("c1");
  CHECK(h.Receive(2, NeighborReply{c1, true, {}}) == "up 2\n");
  CHECK(h.node.stats().reconnects_accepted == 1);
  CHECK(Ids(h.node.active_view()) == std::vector<std::uint64_t>{2, 3});
  // Back in the view: forgotten, and the timer stops at its next firing.
  h.now = TimeFromMicros(61'000'000);
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kReconnect, 0}}).empty());
}

TEST_CASE("hyparview: a dead peer is asked until reconnect_timeout, then forgotten") {
  HyParViewConfig config;
  config.reconnect_interval = Seconds(10);
  config.reconnect_timeout = Seconds(25);
  Harness h(config);
  h.Link(2, 20);
  h.Link(3, 30);
  // A silent peer (keepalive timeout) counts as failed too.
  h.now = TimeFromMicros(1'000'000) + config.keepalive_timeout;
  const std::string tick = h.Feed(TimerFired{Timer{TimerKind::kTick, 0}});
  CHECK(tick.find("down 2 failed\n") != std::string::npos);
  CHECK(tick.find("timer reconnect g0 at " + std::to_string(ToMicros(h.now + Seconds(10)))) != std::string::npos);
  const TimePoint failed_at = h.now;
  // Each attempt fails (the dial fails: PeerDown for a non-active peer).
  for (int attempt = 1; attempt <= 2; ++attempt) {
    h.now = failed_at + Seconds(10) * attempt;
    const std::string fired = h.Feed(TimerFired{Timer{TimerKind::kReconnect, 0}});
    const bool asked_a_failed_peer =
        fired.find("send 2 NEIGHBOR(high,") != std::string::npos || fired.find("send 3 NEIGHBOR(high,") != std::string::npos;
    CHECK(asked_a_failed_peer);
    (void)h.Feed(PeerDown{NodeId(2)});
    (void)h.Feed(PeerDown{NodeId(3)});
  }
  CHECK(h.node.stats().reconnects_sent == 2);
  CHECK(h.node.stats().reconnects_accepted == 0);
  // Past reconnect_timeout: both forgotten, the timer not re-armed.
  h.now = failed_at + Seconds(30);
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kReconnect, 0}}).empty());
  CHECK(h.node.stats().reconnects_sent == 2);
}

TEST_CASE("hyparview: a node restarted since a peer lost it refuses the reconnect, and is forgotten") {
  // The receiving side: started (its first JoinRequest) 10 s ago.
  Harness restarted;
  (void)restarted.Feed(JoinRequest{});
  restarted.now = restarted.now + Seconds(10);
  // Lost 30 s ago: a node that has run for 10 s is not the one that was lost.
  CHECK(restarted.Receive(2, Neighbor{Priority::kHigh, 40, Seconds(30)}) == "send 2 NEIGHBORREPLY(40,reject)\n");
  CHECK(restarted.node.active_size() == 0);
  // Lost 5 s ago: it lived through that, and high priority is taken in.
  CHECK(restarted.Receive(3, Neighbor{Priority::kHigh, 50, Seconds(5)}) == "send 3 NEIGHBORREPLY(50,accept)\nup 3\n");

  // The asking side forgets a peer that refused: its timer finds nothing more.
  Harness h;
  h.Link(2, 20);
  h.Link(3, 30);
  (void)h.Feed(PeerDown{NodeId(2)});
  h.now = TimeFromMicros(31'000'000);
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kReconnect, 0}}) ==
        "timer reconnect g0 at 61000000\nsend 2 NEIGHBOR(high,c1,lost 30000 ms)\n");
  const ConnectionId c1 = h.Drawn("c1");
  CHECK(h.Receive(2, NeighborReply{c1, false, {}}).empty());
  CHECK(h.node.stats().reconnects_refused == 1);
  h.now = TimeFromMicros(61'000'000);
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kReconnect, 0}}).empty());
  CHECK(h.node.stats().reconnects_sent == 1);
}

TEST_CASE("hyparview: SHUFFLE walks on, or is accepted, replied and merged") {
  SUBCASE("ttl > 1 with another active peer: forwarded") {
    Harness h;
    h.Link(2, 20);
    h.Link(3, 30);
    CHECK(h.Receive(2, Shuffle{NodeId(9), 4, {NodeId(9), NodeId(10)}}) == "send 3 SHUFFLE(origin=9,ttl=3,[9,10])\n");
  }
  SUBCASE("ttl 1: accepted; reply drawn from the passive view goes straight to the origin") {
    Harness h;
    h.Link(2, 20);
    h.Link(3, 30);
    CHECK(h.Receive(5, ShuffleReply{{NodeId(5), NodeId(6), NodeId(7)}}).empty());
    Prng replica(kSeed);
    std::vector<NodeId> sample{NodeId(5), NodeId(6), NodeId(7)};
    replica.Shuffle(sample);
    CHECK(h.Receive(2, Shuffle{NodeId(9), 1, {NodeId(9), NodeId(10), NodeId(2)}}) ==
          "send 9 SHUFFLEREPLY([" + std::to_string(sample[0].value) + "," + std::to_string(sample[1].value) + "," +
              std::to_string(sample[2].value) + "])\n");
    // 9 and 10 are new; 2 is active so it is skipped.
    CHECK(Ids(h.node.passive_view()) == std::vector<std::uint64_t>{5, 6, 7, 9, 10});
  }
  SUBCASE("a full passive view drops first the entries it just sent away") {
    HyParViewConfig config;
    config.passive_view_size = 3;
    Harness h(config);
    h.Link(2, 20);
    CHECK(h.Receive(5, ShuffleReply{{NodeId(5), NodeId(6), NodeId(7)}}).empty());
    Prng replica(kSeed);
    std::vector<NodeId> sample{NodeId(5), NodeId(6), NodeId(7)};
    replica.Shuffle(sample);
    sample.resize(2);
    CHECK(h.Receive(2, Shuffle{NodeId(9), 1, {NodeId(9), NodeId(10)}}) ==
          "send 9 SHUFFLEREPLY([" + std::to_string(sample[0].value) + "," + std::to_string(sample[1].value) + "])\n");
    // Both sent entries made room (the last sent goes first), the untouched one stays.
    std::vector<std::uint64_t> expected;
    for (std::uint64_t id : {5, 6, 7}) {
      if (id != sample[0].value && id != sample[1].value) expected.push_back(id);
    }
    expected.push_back(9);
    expected.push_back(10);
    CHECK(Ids(h.node.passive_view()) == expected);
  }
}

TEST_CASE("hyparview: the shuffle timer sends self + ka active + kp passive to a random active peer") {
  HyParViewConfig config;
  config.shuffle_active_count = 1;
  config.shuffle_passive_count = 1;
  Harness h(config);
  (void)h.Feed(JoinRequest{});  // first node: arms the timers (2 draws)
  h.Link(2, 20);
  h.Link(3, 30);
  CHECK(h.Receive(4, ShuffleReply{{NodeId(4)}}).empty());
  Prng replica(kSeed);
  replica.Uniform(10'000'000 + 1);
  replica.Uniform(1'000'000 + 1);
  const std::uint64_t target = replica.Index(2) == 0 ? 2 : 3;
  const std::uint64_t other = target == 2 ? 3 : 2;
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kShuffle, 1}}) ==
        "timer shuffle g1 at 11000000\nsend " + std::to_string(target) + " SHUFFLE(origin=1,ttl=6,[1," +
            std::to_string(other) + ",4])\n");
  // A stale generation is ignored.
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kShuffle, 7}}).empty());
  // With shuffles stopped the timer re-arms but sends nothing.
  CHECK(h.Feed(SetShuffleEnabled{false}).empty());
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kShuffle, 1}}) == "timer shuffle g1 at 11000000\n");
}

TEST_CASE("hyparview: two connections to one peer converge on the smaller id") {
  Harness h;
  h.Link(2, 500);
  CHECK(h.Receive(2, ForwardJoinReply{300}) == "send 2 DISCONNECT(500)\n");
  CHECK(h.node.connections_to(NodeId(2)) == std::vector<ConnectionId>{300});
  // The reply opens 900 at the peer, so it goes out before the DISCONNECT
  // that closes 900 again (FIFO: the peer opens, then closes).
  CHECK(h.Receive(2, Neighbor{Priority::kLow, 900}) == "send 2 NEIGHBORREPLY(900,accept)\nsend 2 DISCONNECT(900)\n");
  CHECK(h.node.connections_to(NodeId(2)) == std::vector<ConnectionId>{300});
  // The peer's own close of 500 is now stale; closing 300 drops the link.
  CHECK(h.Receive(2, Disconnect{500}).empty());
  CHECK(h.Receive(2, Disconnect{300}) == "down 2\nclose 2\n");
}

TEST_CASE("hyparview: keepalives on idle links, and a silent peer times out") {
  HyParViewConfig config;
  config.keepalive_interval = Seconds(1);
  config.keepalive_timeout = Seconds(3);
  Harness h(config);
  h.Link(2, 20);
  h.Link(3, 30);
  h.now += Seconds(1);
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kTick, 0}}) ==
        "timer tick g0 at 3000000\nsend 2 KEEPALIVE\nsend 3 KEEPALIVE\n");
  h.now += Millis(500);
  CHECK(h.Receive(3, KeepAlive{}).empty());
  h.now += Millis(2500);  // 2 silent for 3 s, 3 for 2.5 s
  CHECK(h.Feed(TimerFired{Timer{TimerKind::kTick, 0}}) ==
        "timer tick g0 at 6000000\nsend 2 DISCONNECT(20)\ndown 2 failed\nclose 2\ntimer reconnect g0 at 35000000\nsend 3 "
        "KEEPALIVE\n");
  CHECK(h.node.stats().keepalive_timeouts == 1);
  CHECK(h.node.passive_view().empty());  // presumed failed, not a candidate
}
