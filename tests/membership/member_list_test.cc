// MemberList (membership/member_list.h): scripted inputs with the WHOLE
// output (broadcasts and changes) compared as text, and the merge properties
// (order independence, idempotence) over seeds.
#include "membership/member_list.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "common/prng.h"

using namespace gv;
using namespace gv::membership;

namespace {

constexpr std::uint64_t kStart = 1'000'000;  // node 1's start incarnation (its wall ms)

LocatorClock At(std::int64_t now_ms, std::uint64_t wall_ms) { return LocatorClock{TimeFromMicros(now_ms * 1000), wall_ms}; }

std::string Render(const MemberRecord& r) {
  std::ostringstream s;
  s << "n" << r.node.value << " " << r.name << " inc=" << r.incarnation << " epoch=" << r.epoch << " "
    << MemberStatusName(r.status) << " by n" << r.reporter.value << " since=" << r.status_since_wall_ms;
  return s.str();
}

// The outbox as lines: "broadcast <record>" then "change nX before->after".
std::string Render(const MemberOutbox& out) {
  std::ostringstream s;
  for (const MemberRecord& r : out.broadcasts) s << "broadcast " << Render(r) << "\n";
  for (const MemberChange& c : out.changes) {
    s << "change n" << c.node.value << " " << (c.before ? MemberStatusName(*c.before) : "-") << "->"
      << (c.after ? MemberStatusName(*c.after) : "-") << "\n";
  }
  return s.str();
}

MemberRecord Alive(std::uint64_t node, std::uint64_t incarnation, std::uint64_t since = 0) {
  MemberRecord r;
  r.node = NodeId(node);
  r.name = "node" + std::to_string(node);
  r.address = "127.0.0.1:" + std::to_string(7400 + node);
  r.incarnation = incarnation;
  r.epoch = incarnation;
  r.status = MemberStatus::kAlive;
  r.reporter = NodeId(node);
  r.status_since_wall_ms = since;
  return r;
}

MemberRecord With(MemberRecord r, MemberStatus status, std::uint64_t reporter, std::uint64_t since) {
  r.status = status;
  r.reporter = NodeId(reporter);
  r.status_since_wall_ms = since;
  return r;
}

MemberList MakeList(MemberListConfig config = {}) {
  LocalMember local{NodeId(1), "node1", "127.0.0.1:7401", "127.0.0.1:8401", "127.0.0.1:9401", {{"role", "web"}}};
  return MemberList(local, kStart, config);
}

}  // namespace

TEST_CASE("member list: start, a neighbour's failure, suspicion timeout, failed broadcast by the reporter") {
  MemberList list = MakeList();
  MemberOutbox out;
  list.Announce(At(0, 5000), out);
  CHECK(Render(out) == "broadcast n1 node1 inc=1000000 epoch=1000000 alive by n1 since=5000\n");

  out = {};
  CHECK(list.Merge(Alive(2, 700, 4000), At(10, 5010), out) == MergeOutcome::kApplied);
  CHECK(Render(out) == "change n2 -->alive\n");

  out = {};
  list.PeerFailed(NodeId(2), At(100, 5100), out);
  CHECK(Render(out) ==
        "broadcast n2 node2 inc=700 epoch=700 suspect by n1 since=5100\n"
        "change n2 alive->suspect\n");
  // A second loss report of the same incarnation raises nothing.
  out = {};
  list.PeerFailed(NodeId(2), At(150, 5150), out);
  CHECK(Render(out) == "");

  out = {};
  list.Tick(At(1099, 6099), out);
  CHECK(Render(out) == "");
  list.Tick(At(1100, 6100), out);
  CHECK(Render(out) ==
        "broadcast n2 node2 inc=700 epoch=700 failed by n1 since=6100\n"
        "change n2 suspect->failed\n");
  CHECK(list.metrics().suspicions_raised == 1);
  CHECK(list.metrics().failures_declared == 1);
}

TEST_CASE("member list: a refutation with a higher incarnation beats the suspicion before its timeout") {
  MemberList list = MakeList();
  MemberOutbox out;
  list.Merge(Alive(2, 700), At(0, 5000), out);
  // Node 3 suspects node 2; we hold the suspicion, but do not broadcast it.
  out = {};
  CHECK(list.Merge(With(Alive(2, 700), MemberStatus::kSuspect, 3, 5000), At(0, 5000), out) == MergeOutcome::kApplied);
  CHECK(Render(out) == "change n2 alive->suspect\n");
  out = {};
  CHECK(list.Merge(Alive(2, 701, 5200), At(200, 5200), out) == MergeOutcome::kApplied);
  CHECK(Render(out) == "change n2 suspect->alive\n");
  // The timer of the refuted suspicion is gone: nothing fails later.
  out = {};
  list.Tick(At(5000, 10000), out);
  CHECK(Render(out) == "");
  CHECK(list.Find(NodeId(2))->status == MemberStatus::kAlive);
  CHECK(list.metrics().suspicions_refuted == 1);
  // The old suspicion arriving late is stale.
  CHECK(list.Merge(With(Alive(2, 700), MemberStatus::kSuspect, 3, 5000), At(5000, 10000), out) == MergeOutcome::kStale);
  // Nothing was declared failed.
  CHECK(list.metrics().failures_declared == 0);
}

TEST_CASE("member list: a node hearing suspect, failed or left about itself refutes with incarnation + 1") {
  MemberList list = MakeList();
  MemberRecord me = list.self();
  MemberOutbox out;
  CHECK(list.Merge(With(me, MemberStatus::kSuspect, 2, 7000), At(0, 7000), out) == MergeOutcome::kRefuted);
  CHECK(Render(out) ==
        "broadcast n1 node1 inc=1000001 epoch=1000000 alive by n1 since=7000\n"
        "change n1 alive->alive\n");
  out = {};
  // A failed record of a later incarnation (a stale table after several
  // refutations elsewhere) is refuted above it.
  MemberRecord failed = With(me, MemberStatus::kFailed, 3, 7100);
  failed.incarnation = 1000005;
  CHECK(list.Merge(failed, At(10, 7100), out) == MergeOutcome::kRefuted);
  CHECK(Render(out) ==
        "broadcast n1 node1 inc=1000006 epoch=1000000 alive by n1 since=7100\n"
        "change n1 alive->alive\n");
  // Our own record echoed back is not news.
  out = {};
  CHECK(list.Merge(list.self(), At(20, 7200), out) == MergeOutcome::kStale);
  CHECK(Render(out) == "");
  CHECK(list.metrics().refutations == 2);
  // After a graceful leave nothing is refuted.
  list.Leave(At(30, 7300), out);
  CHECK(Render(out) ==
        "broadcast n1 node1 inc=1000006 epoch=1000000 left by n1 since=7300\n"
        "change n1 alive->left\n");
  out = {};
  MemberRecord suspect = With(list.self(), MemberStatus::kSuspect, 2, 7400);
  suspect.incarnation = 1000010;
  CHECK(list.Merge(suspect, At(40, 7400), out) == MergeOutcome::kStale);
  CHECK(Render(out) == "");
}

TEST_CASE("member list: precedence — incarnation first, then left > failed > suspect > alive") {
  const MemberRecord alive = Alive(2, 10, 100);
  const MemberRecord suspect = With(alive, MemberStatus::kSuspect, 3, 100);
  const MemberRecord failed = With(alive, MemberStatus::kFailed, 3, 100);
  const MemberRecord left = With(alive, MemberStatus::kLeft, 2, 100);
  CHECK(CompareMemberPrecedence(suspect, alive) > 0);
  CHECK(CompareMemberPrecedence(failed, suspect) > 0);
  CHECK(CompareMemberPrecedence(left, failed) > 0);
  CHECK(CompareMemberPrecedence(Alive(2, 11, 0), left) > 0);
  CHECK(CompareMemberPrecedence(alive, alive) == 0);
  // Two suspicions of one incarnation by different reporters are ordered (no tie).
  CHECK(CompareMemberPrecedence(With(alive, MemberStatus::kSuspect, 4, 100), suspect) > 0);
}

TEST_CASE("member list: records breaking the rules are refused and change nothing") {
  MemberList list = MakeList();
  MemberOutbox out;
  MemberRecord other_says_alive = Alive(2, 10);
  other_says_alive.reporter = NodeId(3);
  MemberRecord self_suspect = With(Alive(2, 10), MemberStatus::kSuspect, 2, 0);
  MemberRecord zero = Alive(2, 10);
  zero.node = NodeId(0);
  MemberRecord bad_name = Alive(2, 10);
  bad_name.name = "no spaces";
  MemberRecord big_tags = Alive(2, 10);
  big_tags.tags["k"] = std::string(4096, 'v');
  MemberRecord epoch_above = Alive(2, 10);
  epoch_above.epoch = 11;
  for (const MemberRecord& r : {other_says_alive, self_suspect, zero, bad_name, big_tags, epoch_above}) {
    CHECK(list.Merge(r, At(0, 0), out) == MergeOutcome::kRefused);
  }
  CHECK(Render(out) == "");
  CHECK(list.members().size() == 1);
  CHECK(list.metrics().records_refused == 6);
}

TEST_CASE("member list: failed and left members are reaped and never come back, except by a new incarnation") {
  MemberListConfig config;
  config.reap_after_ms = 60'000;
  MemberList list = MakeList(config);
  MemberOutbox out;
  list.Merge(With(Alive(2, 10), MemberStatus::kFailed, 3, 1000), At(0, 1000), out);
  list.Merge(With(Alive(4, 10), MemberStatus::kLeft, 4, 30'000), At(0, 30'000), out);
  out = {};
  list.Tick(At(0, 60'999), out);
  CHECK(Render(out) == "");
  list.Tick(At(0, 61'000), out);
  CHECK(Render(out) == "change n2 failed->-\n");
  out = {};
  list.Tick(At(0, 90'000), out);
  CHECK(Render(out) == "change n4 left->-\n");
  CHECK(list.Find(NodeId(2)) == nullptr);
  // A slow peer's table still holding the old records does not revive them.
  out = {};
  CHECK(list.Merge(With(Alive(2, 10), MemberStatus::kFailed, 3, 1000), At(0, 90'000), out) == MergeOutcome::kStale);
  CHECK(list.Find(NodeId(2)) == nullptr);
  // An old alive record of it would (the record carries no age); the node
  // itself restarting announces a higher incarnation, which always wins.
  CHECK(list.Merge(Alive(2, 95'000, 95'000), At(0, 95'000), out) == MergeOutcome::kApplied);
  CHECK(list.Find(NodeId(2))->status == MemberStatus::kAlive);
  CHECK(list.metrics().reaped == 2);
}

TEST_CASE("member list: nodes holding the same suspicion declare the same failed record") {
  MemberList a = MakeList();
  LocalMember local_b{NodeId(5), "node5", "127.0.0.1:7405", "", "", {}};
  MemberList b(local_b, 2'000'000);
  MemberOutbox out;
  const MemberRecord suspect = With(Alive(2, 10), MemberStatus::kSuspect, 3, 4000);
  a.Merge(suspect, At(0, 4000), out);
  b.Merge(suspect, At(300, 4300), out);  // later, on its own clocks
  a.Tick(At(1000, 5000), out);
  b.Tick(At(1300, 5300), out);
  REQUIRE(a.Find(NodeId(2)) != nullptr);
  CHECK(a.Find(NodeId(2))->status == MemberStatus::kFailed);
  CHECK(*a.Find(NodeId(2)) == *b.Find(NodeId(2)));
  // Neither is the reporter: neither broadcast it.
  CHECK(out.broadcasts.empty());
}

TEST_CASE("member list: a full list refuses new members, not updates") {
  MemberListConfig config;
  config.max_members = 3;
  MemberList list = MakeList(config);
  MemberOutbox out;
  CHECK(list.Merge(Alive(2, 10), At(0, 0), out) == MergeOutcome::kApplied);
  CHECK(list.Merge(Alive(3, 10), At(0, 0), out) == MergeOutcome::kApplied);
  CHECK(list.Merge(Alive(4, 10), At(0, 0), out) == MergeOutcome::kRefused);
  CHECK(list.Merge(Alive(3, 11), At(0, 0), out) == MergeOutcome::kApplied);
  CHECK(list.members().size() == 3);
}

TEST_CASE("member list: merging is order-independent and idempotent (100 seeds)") {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    INFO("seed " << seed);
    Prng prng(seed);
    // Records about nodes 2..6 from several asserters, some incarnations apart.
    std::vector<MemberRecord> records;
    for (int i = 0; i < 40; ++i) {
      const std::uint64_t node = 2 + prng.Uniform(5);
      MemberRecord r = Alive(node, 10 + prng.Uniform(3), prng.Uniform(3));
      switch (prng.Uniform(4)) {
        case 0: break;
        case 1: r = With(r, MemberStatus::kSuspect, 7 + prng.Uniform(3), prng.Uniform(3)); break;
        case 2: r = With(r, MemberStatus::kFailed, 7 + prng.Uniform(3), prng.Uniform(3)); break;
        default: r = With(r, MemberStatus::kLeft, node, prng.Uniform(3)); break;
      }
      if (prng.Chance(0.2)) r.tags["t"] = std::to_string(prng.Uniform(2));
      records.push_back(r);
    }
    auto replay = [&](std::vector<MemberRecord> order) {
      MemberList list = MakeList();
      MemberOutbox out;
      for (const MemberRecord& r : order) list.Merge(r, At(0, 10), out);
      return list.members();
    };
    const auto reference = replay(records);
    for (int round = 0; round < 5; ++round) {
      std::vector<MemberRecord> shuffled = records;
      // Duplicates too.
      for (int d = 0; d < 10; ++d) shuffled.push_back(records[prng.Index(records.size())]);
      prng.Shuffle(shuffled);
      CHECK(replay(shuffled) == reference);
    }
  }
}
