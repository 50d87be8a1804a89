// Scripted tests: one Plumtree is fed a fixed input and its WHOLE output (every
// out-event, in order) is compared with the expected list.
#include "broadcast/plumtree.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace gv::broadcast {
namespace {

NodeId N(std::uint64_t v) { return NodeId(v); }
TimePoint At(std::int64_t ms) { return TimeFromMicros(ms * 1000); }
MessageId Id(std::uint64_t origin, std::uint64_t seq) { return MessageId{N(origin), seq}; }

std::string Describe(const MessageId& id) { return id.origin.ToString().substr(12) + "/" + std::to_string(id.seq); }

std::string Describe(const OutEvent& event) {
  std::ostringstream s;
  if (const auto* d = std::get_if<Deliver>(&event)) {
    s << "Deliver(" << Describe(d->id) << ", '" << d->payload << "', hops " << d->hops << ", from "
      << d->from.value << ")";
  } else if (const auto* t = std::get_if<ScheduleTimer>(&event)) {
    s << "Timer(at " << ToMicros(t->at) << "us, kind " << static_cast<int>(t->timer.kind) << ", "
      << Describe(t->timer.id) << ", gen " << t->timer.generation << ")";
  } else {
    const auto& m = std::get<SendMessage>(event);
    s << "Send(to " << m.to.value << ", ";
    if (const auto* g = std::get_if<Gossip>(&m.message)) {
      s << "GOSSIP " << Describe(g->id) << " round " << g->round << " '" << g->payload << "'";
    } else if (const auto* i = std::get_if<IHave>(&m.message)) {
      s << "IHAVE";
      for (const auto& e : i->entries) s << " " << Describe(e.id) << "@" << e.round;
    } else if (const auto* gr = std::get_if<Graft>(&m.message)) {
      s << "GRAFT";
      for (const auto& e : gr->entries) s << " " << Describe(e.id) << "@" << e.round;
    } else {
      s << "PRUNE";
    }
    s << ")";
  }
  return s.str();
}

std::string Describe(const std::vector<OutEvent>& events) {
  std::string all;
  for (const auto& e : events) all += "  " + Describe(e) + "\n";
  return all;
}

// Compares the whole outbox, printing both lists on mismatch.
void ExpectOutput(const Outbox& got, const std::vector<OutEvent>& want) {
  INFO("got:\n" << Describe(got.events) << "want:\n" << Describe(want));
  CHECK(got.events == want);
}

Timer GraftTimer(MessageId id, std::uint64_t generation) {
  Timer t;
  t.kind = TimerKind::kGraft;
  t.id = id;
  t.generation = generation;
  return t;
}
Timer FlushTimer() {
  Timer t;
  t.kind = TimerKind::kIHaveFlush;
  return t;
}
Timer SweepTimer() {
  Timer t;
  t.kind = TimerKind::kSweep;
  return t;
}

// The scripts below are written for 50 ms IHAVE batches (0 stays 0: no batching).
// Root beacons have scripts of their own (below); elsewhere they would only
// add their timers to every NeighborUp.
PlumtreeConfig Scripted(PlumtreeConfig config) {
  if (config.ihave_flush_interval > Duration::zero()) config.ihave_flush_interval = Millis(50);
  config.root_beacon_interval = Duration::zero();
  return config;
}

// Node 1's Plumtree: feeds it one event at a time, keeps that event's
// output, and checks the invariants after each.
struct Driver {
  explicit Driver(PlumtreeConfig config) : tree(N(1), config) {}
  Outbox& Feed(const InEvent& event, TimePoint now) {
    out.events.clear();
    tree.handle(event, now, out);
    std::string why;
    INFO(why);
    CHECK(tree.CheckInvariants(&why));
    return out;
  }
  Outbox& Receive(std::uint64_t from, Message message, TimePoint now) {
    return Feed(MessageReceived{N(from), std::move(message)}, now);
  }
  Plumtree tree;
  Outbox out;
};

// A node (1) with neighbours 2..5, all eager as HyParView announced them.
struct Fixture : Driver {
  explicit Fixture(PlumtreeConfig config = PaperPlumtreeConfig()) : Driver(Scripted(config)) {
    for (std::uint64_t p = 2; p <= 5; ++p) Feed(NeighborUp{N(p)}, At(0));
    REQUIRE(out.events.empty());
  }
};

TEST_CASE("first GOSSIP is delivered, pushed eagerly to all but the sender and lazily as batched IHAVE") {
  Fixture f;
  f.Receive(5, Prune{}, At(10));  // 5 leaves the tree: it now only gets IHAVEs
  ExpectOutput(f.out, {});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(3), N(4)});
  CHECK(f.tree.lazy_peers() == NodeSet{N(5)});

  const MessageId id = Id(9, 1);
  f.Receive(2, Gossip{id, 3, "x"}, At(1000));
  ExpectOutput(f.out, {
                          Deliver{id, "x", 4, N(2)},
                          SendMessage{N(3), Gossip{id, 4, "x"}},
                          SendMessage{N(4), Gossip{id, 4, "x"}},
                          ScheduleTimer{At(1050), FlushTimer()},
                          ScheduleTimer{At(2000), SweepTimer()},
                      });
  // A second message within the batching interval joins the same IHAVE.
  const MessageId id2 = Id(9, 2);
  f.Receive(3, Gossip{id2, 0, "y"}, At(1020));
  ExpectOutput(f.out, {
                          Deliver{id2, "y", 1, N(3)},
                          SendMessage{N(2), Gossip{id2, 1, "y"}},
                          SendMessage{N(4), Gossip{id2, 1, "y"}},
                      });
  f.Feed(TimerFired{FlushTimer()}, At(1050));
  ExpectOutput(f.out, {SendMessage{N(5), IHave{{IHaveEntry{id, 4}, IHaveEntry{id2, 1}}}}});
  // Nothing left to flush: a second (stale) flush timer is a no-op.
  f.Feed(TimerFired{FlushTimer()}, At(1060));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().delivered == 2);
  CHECK(f.tree.stats().ihave_sent == 1);
  CHECK(f.tree.stats().ihave_entries_sent == 2);
}

TEST_CASE("a duplicate GOSSIP prunes its sender, which becomes lazy") {
  Fixture f;
  const MessageId id = Id(9, 1);
  f.Receive(2, Gossip{id, 0, "x"}, At(100));
  f.Receive(3, Gossip{id, 2, "x"}, At(110));
  ExpectOutput(f.out, {SendMessage{N(3), Prune{}}});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(4), N(5)});
  CHECK(f.tree.lazy_peers() == NodeSet{N(3)});
  CHECK(f.tree.stats().duplicates == 1);
  CHECK(f.tree.stats().delivered == 1);
  // A PRUNE from an eager peer moves it to lazy without an answer.
  f.Receive(4, Prune{}, At(120));
  ExpectOutput(f.out, {});
  CHECK(f.tree.lazy_peers() == NodeSet{N(3), N(4)});
  // The next message goes eagerly to 5 only (2 is the sender) and lazily to 3 and 4.
  const MessageId id2 = Id(9, 2);
  f.Receive(2, Gossip{id2, 0, "z"}, At(130));
  ExpectOutput(f.out, {
                          Deliver{id2, "z", 1, N(2)},
                          SendMessage{N(5), Gossip{id2, 1, "z"}},
                          ScheduleTimer{At(180), FlushTimer()},
                      });
  f.Feed(TimerFired{FlushTimer()}, At(180));
  ExpectOutput(f.out, {
                          SendMessage{N(3), IHave{{IHaveEntry{id2, 1}}}},
                          SendMessage{N(4), IHave{{IHaveEntry{id2, 1}}}},
                      });
}

TEST_CASE("IHAVE for an unknown id: timer, GRAFT, second shorter timeout for the next announcer, payload") {
  Fixture f;
  f.Receive(4, Prune{}, At(0));
  f.Receive(5, Prune{}, At(0));
  const MessageId id = Id(9, 7);
  f.Receive(5, IHave{{IHaveEntry{id, 2}}}, At(1000));
  ExpectOutput(f.out, {ScheduleTimer{At(1400), GraftTimer(id, 1)}});
  CHECK(f.tree.missing_ids() == 1);
  f.Receive(4, IHave{{IHaveEntry{id, 3}}}, At(1100));
  ExpectOutput(f.out, {});  // the timer is already running
  f.Receive(5, IHave{{IHaveEntry{id, 2}}}, At(1150));
  ExpectOutput(f.out, {});  // a repeated announcement is remembered once

  f.Feed(TimerFired{GraftTimer(id, 1)}, At(1400));
  ExpectOutput(f.out, {
                          SendMessage{N(5), Graft{{IHaveEntry{id, 2}}}},
                          ScheduleTimer{At(1600), GraftTimer(id, 2)},
                      });
  CHECK(f.tree.eager_peers().count(N(5)) == 1);
  // The first timer firing again (a duplicate) is stale.
  f.Feed(TimerFired{GraftTimer(id, 1)}, At(1450));
  ExpectOutput(f.out, {});

  // 5 did not answer in time: the second timeout grafts the next announcer.
  f.Feed(TimerFired{GraftTimer(id, 2)}, At(1600));
  ExpectOutput(f.out, {
                          SendMessage{N(4), Graft{{IHaveEntry{id, 3}}}},
                          ScheduleTimer{At(1800), GraftTimer(id, 3)},
                      });
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(3), N(4), N(5)});
  CHECK(f.tree.stats().graft_sent == 2);

  // 4 answers: delivered at hop 4 from 4 and forwarded to every eager peer but
  // 4 (5 is eager again after our GRAFT). The missing entry is gone, so the
  // pending graft timer is stale.
  f.Receive(4, Gossip{id, 3, "p"}, At(1700));
  ExpectOutput(f.out, {
                          Deliver{id, "p", 4, N(4)},
                          SendMessage{N(2), Gossip{id, 4, "p"}},
                          SendMessage{N(3), Gossip{id, 4, "p"}},
                          SendMessage{N(5), Gossip{id, 4, "p"}},
                          ScheduleTimer{At(2700), SweepTimer()},
                      });
  CHECK(f.tree.missing_ids() == 0);
  f.Feed(TimerFired{GraftTimer(id, 3)}, At(1800));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().graft_timeouts == 2);
}

TEST_CASE("announcers of a missing id are not sent IHAVEs once it arrives") {
  Fixture f;
  f.Receive(3, Prune{}, At(0));
  f.Receive(4, Prune{}, At(0));
  f.Receive(5, Prune{}, At(0));
  const MessageId id = Id(9, 1);
  f.Receive(4, IHave{{IHaveEntry{id, 3}}}, At(100));
  ExpectOutput(f.out, {ScheduleTimer{At(500), GraftTimer(id, 1)}});
  f.Receive(2, Gossip{id, 2, "v"}, At(120));
  ExpectOutput(f.out, {
                          Deliver{id, "v", 3, N(2)},
                          ScheduleTimer{At(170), FlushTimer()},
                          ScheduleTimer{At(1120), SweepTimer()},
                      });
  f.Feed(TimerFired{FlushTimer()}, At(170));
  ExpectOutput(f.out, {
                          SendMessage{N(3), IHave{{IHaveEntry{id, 3}}}},
                          SendMessage{N(5), IHave{{IHaveEntry{id, 3}}}},
                      });
}

TEST_CASE("graft attempts walk the announcers in turn and stop at the cap") {
  PlumtreeConfig config = PaperPlumtreeConfig();
  config.max_graft_attempts = 3;
  Fixture f(config);
  f.Receive(4, Prune{}, At(0));
  f.Receive(5, Prune{}, At(0));
  const MessageId id = Id(9, 3);
  f.Receive(4, IHave{{IHaveEntry{id, 1}}}, At(0));
  f.Receive(5, IHave{{IHaveEntry{id, 2}}}, At(0));
  f.Feed(TimerFired{GraftTimer(id, 1)}, At(400));
  ExpectOutput(f.out, {SendMessage{N(4), Graft{{IHaveEntry{id, 1}}}}, ScheduleTimer{At(600), GraftTimer(id, 2)}});
  f.Feed(TimerFired{GraftTimer(id, 2)}, At(600));
  ExpectOutput(f.out, {SendMessage{N(5), Graft{{IHaveEntry{id, 2}}}}, ScheduleTimer{At(800), GraftTimer(id, 3)}});
  // Lost GRAFT or lost reply: back to the first announcer.
  f.Feed(TimerFired{GraftTimer(id, 3)}, At(800));
  ExpectOutput(f.out, {SendMessage{N(4), Graft{{IHaveEntry{id, 1}}}}, ScheduleTimer{At(1000), GraftTimer(id, 4)}});
  f.Feed(TimerFired{GraftTimer(id, 4)}, At(1000));
  ExpectOutput(f.out, {});
  CHECK(f.tree.missing_ids() == 0);
  CHECK(f.tree.stats().missing_dropped == 1);
}

TEST_CASE("a GRAFT makes the peer eager and gets the cached payload with our hop count") {
  Fixture f;
  const MessageId id = Id(9, 4);
  f.Receive(2, Gossip{id, 1, "data"}, At(100));
  f.Receive(3, Gossip{id, 1, "data"}, At(110));  // duplicate: 3 pruned
  REQUIRE(f.tree.lazy_peers() == NodeSet{N(3)});
  f.Receive(3, Graft{{IHaveEntry{id, 2}, IHaveEntry{Id(9, 99), 0}}}, At(200));
  ExpectOutput(f.out, {SendMessage{N(3), Gossip{id, 2, "data"}}});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(3), N(4), N(5)});
  CHECK(f.tree.lazy_peers().empty());
  CHECK(f.tree.stats().graft_unanswerable == 1);  // 9/99 was never seen
  // A pure tree-repair GRAFT (no ids) only changes the link.
  f.Receive(4, Prune{}, At(300));
  f.Receive(4, Graft{}, At(310));
  ExpectOutput(f.out, {});
  CHECK(f.tree.eager_peers().count(N(4)) == 1);
}

TEST_CASE("NeighborDown removes the peer everywhere and forgets ids only it announced") {
  Fixture f;
  f.Receive(4, Prune{}, At(0));
  f.Receive(5, Prune{}, At(0));
  const MessageId only5 = Id(9, 1);
  const MessageId both = Id(9, 2);
  f.Receive(5, IHave{{IHaveEntry{only5, 1}, IHaveEntry{both, 1}}}, At(100));
  ExpectOutput(f.out, {ScheduleTimer{At(500), GraftTimer(only5, 1)}, ScheduleTimer{At(500), GraftTimer(both, 2)}});
  f.Receive(4, IHave{{IHaveEntry{both, 3}}}, At(120));
  CHECK(f.tree.missing_ids() == 2);
  // A queued IHAVE for 5 must not survive its departure either.
  f.Receive(2, Gossip{Id(8, 1), 0, "q"}, At(130));
  f.Feed(NeighborDown{N(5)}, At(140));
  ExpectOutput(f.out, {});
  CHECK(f.tree.missing_ids() == 1);
  CHECK(f.tree.lazy_peers() == NodeSet{N(4)});
  f.Feed(TimerFired{FlushTimer()}, At(180));
  ExpectOutput(f.out, {SendMessage{N(4), IHave{{IHaveEntry{Id(8, 1), 1}}}}});
  f.Feed(TimerFired{GraftTimer(only5, 1)}, At(500));
  ExpectOutput(f.out, {});  // stale: nothing to graft
  f.Feed(TimerFired{GraftTimer(both, 2)}, At(500));
  ExpectOutput(f.out, {SendMessage{N(4), Graft{{IHaveEntry{both, 3}}}}, ScheduleTimer{At(700), GraftTimer(both, 3)}});
  // Messages from a peer that is no longer a neighbour are delivered but do not
  // bring it back into the peer sets.
  f.Receive(5, Gossip{Id(8, 2), 0, "late"}, At(600));
  CHECK(f.out.events.front() == OutEvent{Deliver{Id(8, 2), "late", 1, N(5)}});
  CHECK(f.tree.eager_peers().count(N(5)) == 0);
  CHECK(f.tree.lazy_peers().count(N(5)) == 0);
}

TEST_CASE("payloads and seen ids are evicted by age, and by count") {
  PlumtreeConfig config = PaperPlumtreeConfig();
  config.payload_ttl = Seconds(10);
  config.seen_ttl = Seconds(20);
  config.max_cached_payloads = 2;
  config.max_seen_ids = 3;
  Fixture f(config);
  const MessageId a = Id(1, 1);
  f.Feed(BroadcastRequest{a, "aa"}, At(0));
  ExpectOutput(f.out, {
                          Deliver{a, "aa", 0, N(1)},
                          SendMessage{N(2), Gossip{a, 0, "aa"}},
                          SendMessage{N(3), Gossip{a, 0, "aa"}},
                          SendMessage{N(4), Gossip{a, 0, "aa"}},
                          SendMessage{N(5), Gossip{a, 0, "aa"}},
                          ScheduleTimer{At(1000), SweepTimer()},
                      });
  f.Feed(TimerFired{SweepTimer()}, At(1000));
  ExpectOutput(f.out, {ScheduleTimer{At(2000), SweepTimer()}});  // still something to expire
  CHECK(f.tree.cached_payloads() == 1);

  f.Feed(TimerFired{SweepTimer()}, At(10000));  // payload_ttl reached
  CHECK(f.tree.cached_payloads() == 0);
  CHECK(f.tree.has_seen(a));
  f.Receive(2, Graft{{IHaveEntry{a, 0}}}, At(10001));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().graft_unanswerable == 1);
  f.Receive(3, Gossip{a, 4, "aa"}, At(15000));  // still a duplicate: the id is remembered
  CHECK(f.tree.stats().duplicates == 1);
  f.Feed(TimerFired{SweepTimer()}, At(20000));  // seen_ttl reached
  CHECK_FALSE(f.tree.has_seen(a));
  ExpectOutput(f.out, {});  // nothing left: the sweep stops re-arming

  // Count caps: the oldest go first.
  for (std::uint64_t seq = 2; seq <= 5; ++seq) f.Feed(BroadcastRequest{Id(1, seq), "p"}, At(21000));
  CHECK(f.tree.cached_payloads() == 2);
  CHECK(f.tree.seen_ids() == 3);
  CHECK_FALSE(f.tree.has_seen(Id(1, 2)));
  CHECK(f.tree.has_seen(Id(1, 5)));
  // A repeated BroadcastRequest id is refused (never delivered twice).
  f.Feed(BroadcastRequest{Id(1, 5), "again"}, At(21001));
  ExpectOutput(f.out, {});
}

TEST_CASE("hop-difference optimisation: a much shorter announcer becomes the parent") {
  Fixture f;
  f.Receive(5, Prune{}, At(0));
  const MessageId id = Id(9, 1);
  f.Receive(2, Gossip{id, 6, "m"}, At(100));  // delivered at hop 7
  f.Feed(TimerFired{FlushTimer()}, At(150));
  // 5 has it at hop 4: via 5 we would be at hop 5, only 2 better — below the threshold 3.
  f.Receive(5, IHave{{IHaveEntry{id, 4}}}, At(160));
  ExpectOutput(f.out, {});
  // 5 announces a shorter path for the next message: hop 2 instead of 7.
  const MessageId id2 = Id(9, 2);
  f.Receive(2, Gossip{id2, 6, "n"}, At(200));
  f.Feed(TimerFired{FlushTimer()}, At(250));
  f.Receive(5, IHave{{IHaveEntry{id2, 1}}}, At(260));
  ExpectOutput(f.out, {SendMessage{N(5), Graft{}}, SendMessage{N(2), Prune{}}});
  CHECK(f.tree.eager_peers() == NodeSet{N(3), N(4), N(5)});
  CHECK(f.tree.lazy_peers() == NodeSet{N(2)});
  CHECK(f.tree.stats().hop_optimizations == 1);
  // The same announcement again changes nothing: our path is already short.
  f.Receive(5, IHave{{IHaveEntry{id2, 1}}}, At(270));
  ExpectOutput(f.out, {});
}

TEST_CASE("eager flooding never prunes, never announces, never grafts") {
  PlumtreeConfig config = PaperPlumtreeConfig();
  config.eager_flooding = true;
  Fixture f(config);
  const MessageId id = Id(9, 1);
  f.Receive(2, Gossip{id, 0, "f"}, At(0));
  ExpectOutput(f.out, {
                          Deliver{id, "f", 1, N(2)},
                          SendMessage{N(3), Gossip{id, 1, "f"}},
                          SendMessage{N(4), Gossip{id, 1, "f"}},
                          SendMessage{N(5), Gossip{id, 1, "f"}},
                          ScheduleTimer{At(1000), SweepTimer()},
                      });
  f.Receive(3, Gossip{id, 0, "f"}, At(1));
  ExpectOutput(f.out, {});
  f.Receive(4, Prune{}, At(2));
  f.Receive(5, IHave{{IHaveEntry{Id(9, 2), 0}}}, At(3));
  ExpectOutput(f.out, {});
  CHECK(f.tree.lazy_peers().empty());
  CHECK(f.tree.eager_peers().size() == 4);
}

TEST_CASE("prune_after_duplicates: a link is pruned after a streak of duplicates; a first copy resets it") {
  PlumtreeConfig config = PaperPlumtreeConfig();
  config.prune_after_duplicates = 2;
  Fixture f(config);
  f.Receive(2, Gossip{Id(9, 1), 0, "a"}, At(0));  // 2 carried a first copy
  f.Receive(3, Gossip{Id(9, 2), 0, "b"}, At(1));  // so did 3
  f.Receive(3, Gossip{Id(9, 1), 0, "a"}, At(2));  // duplicate 1 of 2 from 3
  ExpectOutput(f.out, {});
  f.Receive(3, Gossip{Id(9, 3), 0, "c"}, At(3));  // a first copy from 3 resets its streak
  f.Receive(3, Gossip{Id(9, 1), 0, "a"}, At(4));
  ExpectOutput(f.out, {});
  f.Receive(2, Gossip{Id(9, 2), 0, "b"}, At(5));
  ExpectOutput(f.out, {});
  f.Receive(2, Gossip{Id(9, 3), 0, "c"}, At(6));  // second duplicate in a row from 2
  ExpectOutput(f.out, {SendMessage{N(2), Prune{}}});
  f.Receive(4, Gossip{Id(9, 1), 0, "a"}, At(7));  // 4's first duplicate
  ExpectOutput(f.out, {});
  CHECK(f.tree.lazy_peers() == NodeSet{N(2)});
}

TEST_CASE("oversized payloads are neither delivered nor forwarded") {
  PlumtreeConfig config = PaperPlumtreeConfig();
  config.max_payload_bytes = 4;
  Fixture f(config);
  f.Receive(2, Gossip{Id(9, 1), 0, "12345"}, At(0));
  ExpectOutput(f.out, {});
  f.Feed(BroadcastRequest{Id(1, 1), "12345"}, At(0));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().rejected_oversize == 2);
  CHECK_FALSE(f.tree.has_seen(Id(9, 1)));
}


TEST_CASE("origin trees: a frequent origin flags its GOSSIPs and gets its own tree") {
  PlumtreeConfig config;  // origin trees on, promoted at the 3rd broadcast in a burst
  config.max_origin_trees = 64;
  config.origin_tree_min_broadcasts = 3;
  config.origin_tree_idle_timeout = Seconds(60);
  Fixture f(config);
  f.Feed(BroadcastRequest{Id(1, 1), "a"}, At(0));
  f.Feed(BroadcastRequest{Id(1, 2), "b"}, At(10));
  CHECK(f.tree.origin_trees() == 0);
  f.Feed(BroadcastRequest{Id(1, 3), "c"}, At(20));
  ExpectOutput(f.out, {
                          Deliver{Id(1, 3), "c", 0, N(1)},
                          SendMessage{N(2), Gossip{Id(1, 3), 0, "c", true}},
                          SendMessage{N(3), Gossip{Id(1, 3), 0, "c", true}},
                          SendMessage{N(4), Gossip{Id(1, 3), 0, "c", true}},
                          SendMessage{N(5), Gossip{Id(1, 3), 0, "c", true}},
                      });
  CHECK(f.tree.origin_trees() == 1);
  // A PRUNE naming our origin changes our tree only, not the shared one.
  f.Receive(3, Prune{N(1)}, At(30));
  CHECK(f.tree.eager_peers_for(N(1)) == NodeSet{N(2), N(4), N(5)});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(3), N(4), N(5)});
  // After a silence longer than the idle timeout the tree is dropped and the
  // next broadcast starts a new burst on the shared tree.
  f.Feed(BroadcastRequest{Id(1, 4), "d"}, At(70030));
  CHECK(f.tree.origin_trees() == 0);
  CHECK(std::get<Gossip>(std::get<SendMessage>(f.out.events[1]).message).origin_tree == false);
  CHECK(f.tree.stats().origin_trees_evicted == 1);
}

TEST_CASE("origin trees: background broadcasts neither count toward a burst nor use the origin's tree") {
  PlumtreeConfig config;
  config.max_origin_trees = 64;
  config.origin_tree_min_broadcasts = 2;
  Fixture f(config);
  // Background broadcasts in quick succession stay on the shared tree.
  f.Feed(BroadcastRequest{Id(1, 1), "r1", true}, At(0));
  f.Feed(BroadcastRequest{Id(1, 2), "r2", true}, At(10));
  f.Feed(BroadcastRequest{Id(1, 3), "r3", true}, At(20));
  CHECK(f.tree.origin_trees() == 0);
  CHECK(std::get<Gossip>(std::get<SendMessage>(f.out.events[1]).message).origin_tree == false);
  // They did not count: the first ordinary broadcast starts the burst, the second completes it.
  f.Feed(BroadcastRequest{Id(1, 4), "a"}, At(30));
  CHECK(f.tree.origin_trees() == 0);
  f.Feed(BroadcastRequest{Id(1, 5), "b"}, At(40));
  CHECK(f.tree.origin_trees() == 1);
  CHECK(std::get<Gossip>(std::get<SendMessage>(f.out.events[1]).message).origin_tree == true);
  // A background broadcast from an origin with a tree still takes the shared tree.
  f.Feed(BroadcastRequest{Id(1, 6), "r4", true}, At(50));
  CHECK(std::get<Gossip>(std::get<SendMessage>(f.out.events[1]).message).origin_tree == false);
}

TEST_CASE("origin trees are directed: a flagged GOSSIP copies the shared tree; PRUNE/GRAFT name the origin") {
  PlumtreeConfig config;
  config.max_origin_trees = 64;
  config.origin_hop_optimization_threshold = 2;
  Fixture f(config);
  f.Receive(5, Prune{}, At(0));  // shared tree: 5 lazy
  const MessageId id = Id(7, 1);
  f.Receive(2, Gossip{id, 2, "o", true}, At(100));
  ExpectOutput(f.out, {
                          Deliver{id, "o", 3, N(2)},
                          SendMessage{N(3), Gossip{id, 3, "o", true}},
                          SendMessage{N(4), Gossip{id, 3, "o", true}},
                          ScheduleTimer{At(150), FlushTimer()},
                          ScheduleTimer{At(1100), SweepTimer()},
                      });
  CHECK(f.tree.origin_trees() == 1);
  // A duplicate: 3 is told to stop pushing origin 7 to us (at the first
  // duplicate on an origin tree). Our own push set is the PRUNEs we receive.
  f.Receive(3, Gossip{id, 2, "o", true}, At(110));
  ExpectOutput(f.out, {SendMessage{N(3), Prune{N(7)}}});
  CHECK(f.tree.eager_peers_for(N(7)) == NodeSet{N(2), N(3), N(4)});
  f.Receive(4, Prune{N(7)}, At(120));
  CHECK(f.tree.eager_peers_for(N(7)) == NodeSet{N(2), N(3)});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(3), N(4)});  // the shared tree is untouched
  f.Feed(TimerFired{FlushTimer()}, At(150));
  ExpectOutput(f.out, {SendMessage{N(5), IHave{{IHaveEntry{id, 3}}}}});
  // Hop-difference rule with threshold 2: 5 has it at hop 0, so via 5 we would
  // be at hop 1 instead of 3: 5 is asked to push to us, 2 to stop.
  f.Receive(5, IHave{{IHaveEntry{id, 0}}}, At(160));
  ExpectOutput(f.out, {SendMessage{N(5), Graft{{}, N(7)}}, SendMessage{N(2), Prune{N(7)}}});
  // The next message was already on its way down the old branch: its first
  // copy comes from 2, then from 5. 5 is the branch we kept: no PRUNE.
  const MessageId id2 = Id(7, 2);
  f.Receive(2, Gossip{id2, 2, "p", true}, At(200));
  f.Receive(5, Gossip{id2, 0, "p", true}, At(210));
  ExpectOutput(f.out, {});
  // A GRAFT naming the origin makes us push to that peer in that tree only.
  f.Receive(5, Graft{{}, N(7)}, At(220));
  CHECK(f.tree.eager_peers_for(N(7)) == NodeSet{N(2), N(3), N(5)});
  CHECK(f.tree.lazy_peers() == NodeSet{N(5)});
  // NeighborDown and NeighborUp reach every tree.
  f.Feed(NeighborDown{N(3)}, At(230));
  CHECK(f.tree.eager_peers_for(N(7)) == NodeSet{N(2), N(5)});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(4)});
  f.Feed(NeighborUp{N(6)}, At(240));
  CHECK(f.tree.eager_peers_for(N(7)) == NodeSet{N(2), N(5), N(6)});
  CHECK(f.tree.eager_peers() == NodeSet{N(2), N(4), N(6)});
}

TEST_CASE("origin trees: a shorter duplicate after the old parent left prunes nobody") {
  PlumtreeConfig config;
  config.max_origin_trees = 64;
  config.origin_hop_optimization_threshold = 2;
  Fixture f(config);
  const MessageId id = Id(7, 1);
  f.Receive(2, Gossip{id, 5, "o", true}, At(100));  // first copy, hop 6, parent 2
  f.Feed(NeighborDown{N(2)}, At(105));
  // A copy via 3 at hop 1: the shorter branch is kept. The old parent is gone,
  // so there is no link to prune; the fixture checks that eager, lazy and the
  // pruned set still name only neighbours.
  f.Receive(3, Gossip{id, 0, "o", true}, At(110));
  ExpectOutput(f.out, {});
  // The branch via 3 is now this message's parent: a further copy from 4 is
  // a plain duplicate and 4 alone is told to stop.
  f.Receive(4, Gossip{id, 0, "o", true}, At(120));
  INFO("got:\n" << Describe(f.out.events));
  REQUIRE(f.out.events.size() == 1);
  const auto& prune = std::get<SendMessage>(f.out.events[0]);
  CHECK(prune.to == N(4));
  REQUIRE(std::holds_alternative<Prune>(prune.message));
  CHECK(std::get<Prune>(prune.message).origin == N(7));
}

TEST_CASE("lossy mode: ids are announced again to every neighbour not known to hold them") {
  PlumtreeConfig config = PaperPlumtreeConfig();
  config.announce_rounds = 3;
  config.reannounce_interval = Millis(300);
  config.ihave_flush_interval = Duration::zero();  // one IHAVE per announcement, at once
  Fixture f(config);
  f.Receive(5, Prune{}, At(0));
  const MessageId id = Id(9, 1);
  Timer again;
  again.kind = TimerKind::kReannounce;
  again.id = id;
  f.Receive(2, Gossip{id, 0, "r"}, At(100));
  ExpectOutput(f.out, {
                          Deliver{id, "r", 1, N(2)},
                          SendMessage{N(3), Gossip{id, 1, "r"}},
                          SendMessage{N(4), Gossip{id, 1, "r"}},
                          SendMessage{N(5), IHave{{IHaveEntry{id, 1}}}},
                          ScheduleTimer{At(1100), SweepTimer()},
                          ScheduleTimer{At(400), again},
                      });
  f.Receive(4, IHave{{IHaveEntry{id, 1}}}, At(200));  // 4 has it
  f.Feed(TimerFired{again}, At(400));
  // 2 (the sender) and 4 hold it; 3 and 5 might not: eager and lazy alike.
  ExpectOutput(f.out, {
                          SendMessage{N(3), IHave{{IHaveEntry{id, 1}}}},
                          SendMessage{N(5), IHave{{IHaveEntry{id, 1}}}},
                          ScheduleTimer{At(700), again},
                      });
  f.Receive(5, Gossip{id, 3, "r"}, At(500));  // a duplicate also proves 5 holds it
  f.Feed(TimerFired{again}, At(700));
  ExpectOutput(f.out, {SendMessage{N(3), IHave{{IHaveEntry{id, 1}}}}});  // last round: no new timer
  f.Feed(TimerFired{again}, At(1000));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().reannounced == 3);
}

TEST_CASE("a new neighbour is sent the recent ids whose payloads are still cached") {
  PlumtreeConfig config;
  config.link_up_announce_window = Seconds(10);
  config.payload_ttl = Seconds(1);
  Fixture f(config);
  const MessageId old_id = Id(9, 1), recent_id = Id(9, 2);
  f.Receive(2, Gossip{old_id, 0, "a"}, At(1000));
  f.Receive(2, Gossip{recent_id, 1, "b"}, At(5000));
  f.Feed(TimerFired{SweepTimer()}, At(5500));  // the payload of old_id (1 s) is gone, its id is still seen
  CHECK(f.tree.cached_payloads() == 1);
  CHECK(f.tree.has_seen(old_id));
  // 6 links up: one IHAVE with what we could still send it (old_id is within
  // the window, but a GRAFT for it could not be answered).
  f.Feed(NeighborUp{N(6)}, At(5600));
  ExpectOutput(f.out, {SendMessage{N(6), IHave{{IHaveEntry{recent_id, 2}}}}});
  CHECK(f.tree.eager_peers().count(N(6)) == 1);
  // Our own broadcast is announced too, oldest first, in one message.
  const MessageId own = Id(1, 1);
  f.Feed(BroadcastRequest{own, "c"}, At(5700));
  f.Feed(NeighborUp{N(7)}, At(5800));
  ExpectOutput(f.out, {SendMessage{N(7), IHave{{IHaveEntry{recent_id, 2}, IHaveEntry{own, 0}}}}});
  // Ten seconds on, nothing is recent any more.
  f.Feed(NeighborUp{N(8)}, At(15700));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().link_up_announced == 3);

  // The paper's configuration announces nothing to new neighbours.
  Fixture paper;
  paper.Receive(2, Gossip{recent_id, 1, "b"}, At(5000));
  paper.Feed(NeighborUp{N(6)}, At(5100));
  ExpectOutput(paper.out, {});
}

// ---- root beacon ------------------------------------------------------------------

Timer KindTimer(TimerKind kind) {
  Timer t;
  t.kind = kind;
  return t;
}

// The candidacy delay of `id`: RootPriority(id) / 2^64 of the window.
Duration CandidacyDelay(NodeId id, Duration window) {
  return Duration(static_cast<std::int64_t>(((RootPriority(id) >> 32) * static_cast<std::uint64_t>(window.count())) >> 32));
}

// Ids above 1 whose root priority is better (lower) or worse than node 1's.
std::vector<std::uint64_t> IdsRanked(bool better, std::size_t count) {
  std::vector<std::uint64_t> ids;
  for (std::uint64_t v = 2; ids.size() < count; ++v) {
    if ((RootPriority(N(v)) < RootPriority(N(1))) == better) ids.push_back(v);
  }
  return ids;
}

PlumtreeConfig BeaconConfig() {
  PlumtreeConfig config;
  config.ihave_flush_interval = Millis(50);
  config.root_beacon_interval = Seconds(5);
  config.root_beacon_timeout = Seconds(16);
  config.root_election_window = Seconds(5);
  config.root_hop_optimization_threshold = 1;
  return config;
}

struct BeaconFixture : Driver {
  // Node 1 with neighbours `peers` (all eager), linked at time 0.
  explicit BeaconFixture(const std::vector<std::uint64_t>& peers) : Driver(BeaconConfig()) {
    for (std::uint64_t p : peers) {
      Feed(NeighborUp{N(p)}, At(0));
      if (p == peers.front()) {
        // The first neighbour arms the beacon timer and, with no root known,
        // the candidacy.
        ExpectOutput(out, {ScheduleTimer{At(5000), KindTimer(TimerKind::kBeacon)},
                           ScheduleTimer{At(0) + CandidacyDelay(N(1), Seconds(5)), KindTimer(TimerKind::kCandidacy)}});
      } else {
        ExpectOutput(out, {});
      }
    }
  }
};

MessageId BeaconId(std::uint64_t origin, std::uint64_t seq) { return MessageId{N(origin), kBeaconSeqTag | seq}; }

TEST_CASE("root beacon: a node with no root stands at its candidacy time, yields to a better root, elects anew when it goes") {
  const std::uint64_t better = IdsRanked(true, 1)[0];
  const std::vector<std::uint64_t> worse = IdsRanked(false, 2);
  BeaconFixture f({better, worse[0], worse[1]});
  const TimePoint stand = At(0) + CandidacyDelay(N(1), Seconds(5));
  REQUIRE(stand > At(1));
  REQUIRE(stand < At(4000));  // the script's times below assume it (node 1 stands at ~2.8 s)
  CHECK_FALSE(f.tree.root().has_value());

  // Candidacy: node 1 is root and beacons on the shared tree; nothing is delivered.
  f.Feed(TimerFired{KindTimer(TimerKind::kCandidacy)}, stand);
  CHECK(f.tree.root() == N(1));
  const MessageId own = BeaconId(1, static_cast<std::uint64_t>(ToMicros(stand) / 1000));
  // Pushed to every neighbour, in ascending id order (the eager set's).
  std::vector<std::uint64_t> everyone = {better, worse[0], worse[1]};
  std::sort(everyone.begin(), everyone.end());
  auto to_everyone = [&](const MessageId& id) {
    std::vector<OutEvent> sends;
    for (std::uint64_t p : everyone) sends.push_back(SendMessage{N(p), Gossip{id, 0, ""}});
    return sends;
  };
  std::vector<OutEvent> want = to_everyone(own);
  want.push_back(ScheduleTimer{stand + Seconds(1), SweepTimer()});
  ExpectOutput(f.out, want);
  CHECK(f.tree.stats().beacons_sent == 1);
  CHECK(f.tree.stats().delivered == 0);

  // A worse root's beacon is dropped: not forwarded, not followed.
  f.Receive(worse[0], Gossip{BeaconId(worse[0], 7), 0, ""}, At(4000));
  ExpectOutput(f.out, {});
  CHECK(f.tree.root() == N(1));
  CHECK(f.tree.stats().beacons_suppressed == 1);

  // The root's beacon timer: another beacon (the clock gives its sequence).
  f.Feed(TimerFired{KindTimer(TimerKind::kBeacon)}, At(5000));
  const MessageId second = BeaconId(1, 5000);
  want = to_everyone(second);
  want.push_back(ScheduleTimer{At(10000), KindTimer(TimerKind::kBeacon)});
  ExpectOutput(f.out, want);

  // A better root's beacon is followed and forwarded (never delivered).
  const MessageId theirs = BeaconId(better, 1);
  f.Receive(better, Gossip{theirs, 0, ""}, At(6000));
  CHECK(f.tree.root() == N(better));
  ExpectOutput(f.out, {
                          SendMessage{N(worse[0]), Gossip{theirs, 1, ""}},
                          SendMessage{N(worse[1]), Gossip{theirs, 1, ""}},
                      });
  // Node 1 no longer beacons: its timer only re-arms.
  f.Feed(TimerFired{KindTimer(TimerKind::kBeacon)}, At(10000));
  ExpectOutput(f.out, {ScheduleTimer{At(15000), KindTimer(TimerKind::kBeacon)}});

  // A duplicate of the root's beacon prunes its link at once.
  f.Receive(worse[0], Gossip{theirs, 0, ""}, At(10100));
  ExpectOutput(f.out, {SendMessage{N(worse[0]), Prune{}}});
  CHECK(f.tree.lazy_peers() == NodeSet{N(worse[0])});

  // The root falls silent: 16 s after its last beacon it is presumed gone and
  // node 1 stands again after its candidacy delay.
  f.Feed(TimerFired{KindTimer(TimerKind::kBeacon)}, At(15000));
  ExpectOutput(f.out, {ScheduleTimer{At(20000), KindTimer(TimerKind::kBeacon)}});
  f.Feed(TimerFired{KindTimer(TimerKind::kBeacon)}, At(22000));
  CHECK_FALSE(f.tree.root().has_value());
  CHECK(f.tree.stats().roots_lost == 1);
  ExpectOutput(f.out, {ScheduleTimer{At(27000), KindTimer(TimerKind::kBeacon)},
                       ScheduleTimer{At(22000) + CandidacyDelay(N(1), Seconds(5)), KindTimer(TimerKind::kCandidacy)}});
}

TEST_CASE("root beacon: the hop rule moves a node nearer the root; a farther sender's duplicate is kept for it; only beacons prune") {
  const std::uint64_t root = IdsRanked(true, 1)[0];
  const std::vector<std::uint64_t> peers = IdsRanked(false, 3);
  BeaconFixture f({peers[0], peers[1], peers[2]});
  // The root's beacon arrives first down a long branch (hop 6 here)...
  const MessageId id = BeaconId(root, 1);
  f.Receive(peers[0], Gossip{id, 5, ""}, At(100));
  CHECK(f.tree.root() == N(root));
  ExpectOutput(f.out, {
                          SendMessage{N(peers[1]), Gossip{id, 6, ""}},
                          SendMessage{N(peers[2]), Gossip{id, 6, ""}},
                          ScheduleTimer{At(1100), SweepTimer()},
                      });
  // ...then a copy from a peer 2 hops from the root: the shorter branch is
  // kept, the long one pruned.
  f.Receive(peers[1], Gossip{id, 2, ""}, At(150));
  ExpectOutput(f.out, {SendMessage{N(peers[0]), Prune{}}});
  CHECK(f.tree.lazy_peers() == NodeSet{N(peers[0])});
  CHECK(f.tree.stats().hop_optimizations == 1);
  // peers[2] sends its copy, 9 hops from the root (it had it from elsewhere):
  // the copy we pushed it (hop 6, soon 3) makes it take us as parent, so we
  // keep the link.
  f.Receive(peers[2], Gossip{id, 9, ""}, At(160));
  ExpectOutput(f.out, {});
  CHECK(f.tree.eager_peers() == NodeSet{N(peers[1]), N(peers[2])});

  // Next beacon: an IHAVE from a lazy peer 1 hop from the root makes it our
  // parent (GRAFT) and prunes the branch we had it from.
  const MessageId next = BeaconId(root, 2);
  f.Receive(peers[1], Gossip{next, 2, ""}, At(5100));
  f.Receive(peers[0], IHave{{IHaveEntry{next, 0}}}, At(5120));
  ExpectOutput(f.out, {SendMessage{N(peers[0]), Graft{{}, std::nullopt}}, SendMessage{N(peers[1]), Prune{}}});
  CHECK(f.tree.eager_peers() == NodeSet{N(peers[0]), N(peers[2])});

  // With a live root, other origins' duplicates never prune: the next
  // beacon's duplicates cut the cycle (default prune_after_duplicates is 5).
  const MessageId app = Id(42, 1);
  f.Receive(peers[0], Gossip{app, 3, "a"}, At(5200));
  for (std::uint64_t k = 0; k < 6; ++k) {
    f.Receive(peers[2], Gossip{app, 3, "a"}, At(5210 + static_cast<std::int64_t>(k)));
    ExpectOutput(f.out, {});
  }
  CHECK(f.tree.eager_peers().count(N(peers[2])) == 1);

  // Application broadcasts may not use beacon ids.
  f.Feed(BroadcastRequest{BeaconId(1, 1), "x"}, At(6000));
  ExpectOutput(f.out, {});
  CHECK(f.tree.stats().rejected_reserved_id == 1);
}

}  // namespace
}  // namespace gv::broadcast
