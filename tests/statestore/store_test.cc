// Store semantics: local writes, merge rules on hand-built histories, held-back
// deltas and gaps, limits, CAS, indexes, tombstones and GC, the digest.
#include "statestore/store.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

using namespace gv;
using namespace gv::statestore;

namespace {

const NodeId kA(0xa), kB(0xb), kC(0xc), kR(0x100);

Store MakeStore(NodeId self, StoreLimits limits = {}) {
  auto store = Store::Create(self, limits);
  REQUIRE(store.ok());
  return std::move(store).value();
}

LocalOp Put(std::string key, std::string value, std::uint64_t flags = 0) {
  LocalOp op;
  op.kind = OpKind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.flags = flags;
  return op;
}

LocalOp Del(std::string key) {
  LocalOp op;
  op.kind = OpKind::kDelete;
  op.key = std::move(key);
  return op;
}

// Makes and applies a local write; returns the delta for delivery elsewhere.
Delta Write(Store& store, std::vector<LocalOp> ops, std::uint64_t now_ms) {
  auto delta = store.MakeLocalDelta(ops, now_ms);
  REQUIRE_MESSAGE(delta.ok(), delta.status().ToString());
  ApplyResult applied = store.Apply(*delta, now_ms);
  REQUIRE(applied.status == ApplyStatus::kApplied);
  return *delta;
}

std::string ValueOf(const Store& store, const std::string& key) {
  const KeyEntry* entry = store.Get(key);
  return entry == nullptr ? std::string("<absent>") : entry->value;
}

}  // namespace

TEST_CASE("store: local writes are read back, seq and index advance") {
  Store store = MakeStore(kA);
  CHECK(store.Index() == 0);
  Delta first = Write(store, {Put("a/x", "1", 42), Put("a/y", "2")}, 1000);
  CHECK(first.origin == kA);
  CHECK(first.seq == 1);
  CHECK(first.ops[0].vv == VersionVector{{kA, 1}});
  CHECK(store.Index() == 1);
  const KeyEntry* x = store.Get("a/x");
  REQUIRE(x != nullptr);
  CHECK(x->value == "1");
  CHECK(x->flags == 42);
  CHECK(x->origin == kA);
  CHECK(x->create_index == 1);
  CHECK(x->modify_index == 1);
  CHECK_FALSE(x->conflict);

  Delta second = Write(store, {Put("a/x", "3")}, 1000);
  CHECK(second.seq == 2);
  CHECK(second.hlc > first.hlc);
  CHECK(second.ops[0].vv == VersionVector{{kA, 2}});
  CHECK(store.Get("a/x")->value == "3");
  CHECK(store.Get("a/x")->create_index == 1);
  CHECK(store.Get("a/x")->modify_index == 2);
  CHECK(store.Applied() == VersionVector{{kA, 2}});
  CHECK(store.KeyCount() == 2);
}

TEST_CASE("store: MakeLocalDelta does not change state; re-applying is a duplicate") {
  Store store = MakeStore(kA);
  auto delta = store.MakeLocalDelta({Put("k", "v")}, 5);
  REQUIRE(delta.ok());
  CHECK(store.Get("k") == nullptr);
  CHECK(store.Index() == 0);
  ApplyResult first = store.Apply(*delta, 5);
  CHECK(first.status == ApplyStatus::kApplied);
  CHECK(first.changed == std::map<std::string, std::uint64_t>{{"k", 1}});
  CHECK(first.applied == std::vector<DeltaId>{DeltaId{kA, 1}});
  ApplyResult again = store.Apply(*delta, 5);
  CHECK(again.status == ApplyStatus::kDuplicate);
  CHECK(again.changed.empty());
  CHECK(store.Index() == 1);
  CHECK(store.Stats().duplicates == 1);
}

TEST_CASE("store: a write made after reading a value wins everywhere, even with a slower clock") {
  Store a = MakeStore(kA);
  Store b = MakeStore(kB);
  Delta from_a = Write(a, {Put("cfg", "old")}, 10'000);
  REQUIRE(b.Apply(from_a, 2'000).status == ApplyStatus::kApplied);  // b's clock is 8 s behind
  Delta from_b = Write(b, {Put("cfg", "new")}, 2'000);
  CHECK(from_b.hlc > from_a.hlc);  // observed HLC carried causality across the skew
  CHECK(from_b.ops[0].vv == VersionVector{{kA, 1}, {kB, 1}});

  for (bool a_first : {true, false}) {
    INFO("a_first=" << a_first);
    Store replica = MakeStore(kR);
    if (a_first) {
      replica.Apply(from_a, 0);
      replica.Apply(from_b, 0);
    } else {
      replica.Apply(from_b, 0);
      CHECK(replica.Apply(from_a, 0).changed.empty());  // superseded: no change
    }
    CHECK(ValueOf(replica, "cfg") == "new");
    CHECK_FALSE(replica.Get("cfg")->conflict);
    CHECK(replica.Stats().conflicts == 0);
  }
  a.Apply(from_b, 10'001);
  CHECK(ValueOf(a, "cfg") == "new");
  CHECK(a.Digest() == b.Digest());
}

TEST_CASE("store: concurrent writes are flagged the same way everywhere; a causal write clears the flag") {
  Store a = MakeStore(kA);
  Store b = MakeStore(kB);
  Store c = MakeStore(kC);
  Delta wa = Write(a, {Put("k", "from-a")}, 1000);
  Delta wb = Write(b, {Put("k", "from-b")}, 1000);  // same wall time: tie broken by origin
  c.Apply(wa, 1000);
  c.Apply(wb, 1000);
  REQUIRE(c.Get("k")->conflict);
  CHECK(ValueOf(c, "k") == "from-b");  // (hlc, origin): b > a
  Delta wc = Write(c, {Put("k", "resolved")}, 1000);
  CHECK(wc.ops[0].vv == VersionVector{{kA, 1}, {kB, 1}, {kC, 1}});

  std::vector<Delta> deltas = {wa, wb, wc};
  std::vector<int> order = {0, 1, 2};
  std::set<std::string> digests_before_c, digests_after;
  do {
    Store replica = MakeStore(kR);
    bool saw_c = false;
    for (int i : order) {
      replica.Apply(deltas[i], 0);
      if (i == 2) saw_c = true;
      if (!saw_c && replica.Get("k") != nullptr && replica.Applied().size() == 2) {
        CHECK(replica.Get("k")->conflict);
        CHECK(ValueOf(replica, "k") == "from-b");
        digests_before_c.insert(DigestHex(replica.Digest()));
      }
    }
    CHECK(ValueOf(replica, "k") == "resolved");
    CHECK_FALSE(replica.Get("k")->conflict);
    digests_after.insert(DigestHex(replica.Digest()));
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(digests_before_c.size() == 1);
  CHECK(digests_after.size() == 1);
  c.Apply(wc, 1000);
  CHECK(DigestHex(c.Digest()) == *digests_after.begin());
}

TEST_CASE("store: the higher HLC wins a conflict, whatever the origin order") {
  Store a = MakeStore(kA);
  Store b = MakeStore(kB);
  Delta wa = Write(a, {Put("k", "later")}, 2000);
  Delta wb = Write(b, {Put("k", "earlier")}, 1000);
  for (bool a_first : {true, false}) {
    Store replica = MakeStore(kR);
    replica.Apply(a_first ? wa : wb, 0);
    replica.Apply(a_first ? wb : wa, 0);
    CHECK(ValueOf(replica, "k") == "later");
    CHECK(replica.Get("k")->origin == kA);
    CHECK(replica.Get("k")->conflict);
    CHECK(replica.Get("k")->vv == VersionVector{{kA, 1}, {kB, 1}});
    CHECK(replica.Stats().conflicts == 1);
  }
}

TEST_CASE("store: deletes stay deleted under reordering and re-delivery") {
  Store a = MakeStore(kA);
  Store b = MakeStore(kB);
  Delta put = Write(a, {Put("svc/web", "10.0.0.1")}, 1000);
  b.Apply(put, 1000);
  Delta del = Write(b, {Del("svc/web")}, 1000);
  CHECK(b.Get("svc/web") == nullptr);
  CHECK(b.KeyCount() == 0);

  Store forward = MakeStore(kR);
  forward.Apply(put, 0);
  forward.Apply(del, 0);
  Store backward = MakeStore(kR);
  backward.Apply(del, 0);
  ApplyResult late_put = backward.Apply(put, 0);
  CHECK(late_put.status == ApplyStatus::kApplied);
  CHECK(late_put.changed.empty());
  for (Store* replica : {&forward, &backward}) {
    CHECK(replica->Get("svc/web") == nullptr);
    CHECK(replica->Apply(put, 0).status == ApplyStatus::kDuplicate);
    CHECK(replica->Apply(del, 0).status == ApplyStatus::kDuplicate);
    CHECK(replica->Get("svc/web") == nullptr);
    CHECK(replica->KeysUnderPrefix("svc/").empty());
    CHECK(replica->Stats().tombstones == 1);
  }
  CHECK(forward.Digest() == backward.Digest());
  // A put made after the delete (it saw the tombstone) brings the key back.
  a.Apply(del, 1000);
  Delta again = Write(a, {Put("svc/web", "10.0.0.2")}, 1000);
  backward.Apply(again, 0);
  CHECK(ValueOf(backward, "svc/web") == "10.0.0.2");
  CHECK(backward.Get("svc/web")->create_index == backward.Index());
}

TEST_CASE("store: tombstone GC drops only tombstones older than tombstone_gc") {
  StoreLimits limits;
  limits.tombstone_gc_ms = 1000;
  Store store = MakeStore(kA, limits);
  Write(store, {Put("old-live", "v"), Put("old-dead", "v")}, 10'000);
  Write(store, {Del("old-dead")}, 10'000);
  Write(store, {Put("new-dead", "v")}, 10'500);
  Write(store, {Del("new-dead")}, 10'500);
  const std::uint64_t max_index = store.MaxModifyIndexUnderPrefix("");
  CHECK(store.Stats().tombstones == 2);
  CHECK(store.CollectGarbage(10'900) == 0);  // nothing older than 1 s yet
  CHECK(store.CollectGarbage(11'001) == 1);  // old-dead's HLC wall time is 10'000
  CHECK(store.Stats().tombstones == 1);
  CHECK(store.Get("old-live") != nullptr);
  CHECK(store.CollectGarbage(11'501) == 1);
  CHECK(store.Stats().tombstones == 0);
  CHECK(store.Stats().tombstones_collected == 2);
  CHECK(store.KeyCount() == 1);
  CHECK(store.CollectGarbage(1'000'000) == 0);  // live keys are never collected
  // A blocking read on the deleted key's prefix still sees its last change.
  CHECK(store.MaxModifyIndexUnderPrefix("new-") == max_index);
}

TEST_CASE("store: out-of-order deltas are held back, gaps reported, released in order") {
  Store origin = MakeStore(kA);
  std::vector<Delta> deltas;
  for (int i = 0; i < 6; ++i) deltas.push_back(Write(origin, {Put("k" + std::to_string(i), "v")}, 100));

  Store replica = MakeStore(kR);
  CHECK(replica.Apply(deltas[2], 0).status == ApplyStatus::kHeldBack);  // seq 3
  CHECK(replica.Apply(deltas[4], 0).status == ApplyStatus::kHeldBack);  // seq 5
  CHECK(replica.Apply(deltas[4], 0).status == ApplyStatus::kDuplicate);
  CHECK(replica.HeldBackCount() == 2);
  CHECK(replica.Gaps() == std::vector<Gap>{Gap{kA, 1, 2}, Gap{kA, 4, 4}});
  CHECK(replica.Get("k2") == nullptr);  // held back: invisible

  ApplyResult one = replica.Apply(deltas[0], 0);
  CHECK(one.status == ApplyStatus::kApplied);
  CHECK(one.applied == std::vector<DeltaId>{DeltaId{kA, 1}});
  CHECK(replica.Gaps() == std::vector<Gap>{Gap{kA, 2, 2}, Gap{kA, 4, 4}});

  ApplyResult two = replica.Apply(deltas[1], 0);
  CHECK(two.applied == std::vector<DeltaId>{DeltaId{kA, 2}, DeltaId{kA, 3}});
  CHECK(two.changed.count("k1") == 1);
  CHECK(two.changed.count("k2") == 1);
  CHECK(replica.Applied().at(kA) == 3);
  CHECK(replica.Gaps() == std::vector<Gap>{Gap{kA, 4, 4}});

  ApplyResult four = replica.Apply(deltas[3], 0);
  CHECK(four.applied == std::vector<DeltaId>{DeltaId{kA, 4}, DeltaId{kA, 5}});
  CHECK(replica.Applied().at(kA) == 5);
  CHECK(replica.HeldBackCount() == 0);
  CHECK(replica.Gaps().empty());
  CHECK(replica.Apply(deltas[2], 0).status == ApplyStatus::kDuplicate);
  replica.Apply(deltas[5], 0);
  CHECK(replica.Digest() == origin.Digest());
}

TEST_CASE("store: a full held-back queue refuses with an error naming the limit") {
  StoreLimits limits;
  limits.max_held_back_deltas = 2;
  Store origin = MakeStore(kA);
  std::vector<Delta> deltas;
  for (int i = 0; i < 5; ++i) deltas.push_back(Write(origin, {Put("k", std::to_string(i))}, 100));
  Store replica = MakeStore(kR, limits);
  CHECK(replica.Apply(deltas[1], 0).status == ApplyStatus::kHeldBack);
  CHECK(replica.Apply(deltas[2], 0).status == ApplyStatus::kHeldBack);
  ApplyResult full = replica.Apply(deltas[3], 0);
  CHECK(full.status == ApplyStatus::kRejected);
  CHECK(full.error.code() == StatusCode::kUnavailable);
  CHECK(full.error.message().find("max_held_back_deltas=2") != std::string::npos);
  CHECK(replica.HeldBackCount() == 2);
  // Filling the gap drains the queue; the refused delta is accepted on retry.
  CHECK(replica.Apply(deltas[0], 0).applied.size() == 3);
  CHECK(replica.Apply(deltas[3], 0).status == ApplyStatus::kApplied);
  CHECK(replica.Apply(deltas[4], 0).status == ApplyStatus::kApplied);
  CHECK(ValueOf(replica, "k") == "4");
  CHECK(replica.Stats().rejected == 1);
}

TEST_CASE("store: limits produce errors that name the limit") {
  Store store = MakeStore(kA);
  auto check_error = [&](std::vector<LocalOp> ops, StatusCode code, const std::string& fragment) {
    auto delta = store.MakeLocalDelta(ops, 1);
    REQUIRE_FALSE(delta.ok());
    CHECK(delta.status().code() == code);
    CHECK_MESSAGE(delta.status().message().find(fragment) != std::string::npos, delta.status().message());
  };
  check_error({Put("", "v")}, StatusCode::kInvalidArgument, "key is empty");
  check_error({Put(std::string(1025, 'k'), "v")}, StatusCode::kTooLarge, "key limit of 1024");
  check_error({Put(std::string("a\0b", 3), "v")}, StatusCode::kInvalidArgument, "NUL");
  check_error({Put("k", std::string(64 * 1024 + 1, 'v'))}, StatusCode::kTooLarge, "max_value_bytes=65536");
  check_error({}, StatusCode::kInvalidArgument, "at least one op");
  check_error({Put("k", "1"), Put("k", "2")}, StatusCode::kInvalidArgument, "written twice");
  LocalOp del_with_value = Del("k");
  del_with_value.value = "x";
  check_error({del_with_value}, StatusCode::kInvalidArgument, "carries a value");
  CHECK(store.MakeLocalDelta({Put(std::string(1024, 'k'), std::string(64 * 1024, 'v'))}, 1).ok());
  CHECK(store.Index() == 0);

  StoreLimits few_ops;
  few_ops.max_ops_per_delta = 2;
  Store small = MakeStore(kA, few_ops);
  auto too_many = small.MakeLocalDelta({Put("a", ""), Put("b", ""), Put("c", "")}, 1);
  REQUIRE_FALSE(too_many.ok());
  CHECK(too_many.status().message().find("max_ops_per_delta=2") != std::string::npos);

  StoreLimits big;
  big.max_value_bytes = 1024 * 1024;
  Store large = MakeStore(kA, big);
  CHECK(large.MakeLocalDelta({Put("k", std::string(1024 * 1024, 'v'))}, 1).ok());
  big.max_value_bytes = 1024 * 1024 + 1;
  auto refused = Store::Create(kA, big);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("max_value_bytes=1048577") != std::string::npos);
  CHECK_FALSE(Store::Create(NodeId(), StoreLimits{}).ok());
  StoreLimits no_hold;
  no_hold.max_held_back_deltas = 0;
  CHECK_FALSE(Store::Create(kA, no_hold).ok());
}

TEST_CASE("store: received deltas are checked against protocol caps, not local limits") {
  StoreLimits big;
  big.max_value_bytes = 512 * 1024;
  Store writer = MakeStore(kA, big);
  Delta large = Write(writer, {Put("blob", std::string(300 * 1024, 'x'))}, 1);
  Store reader = MakeStore(kR);  // default 64 KiB for its own writes
  CHECK(reader.Apply(large, 1).status == ApplyStatus::kApplied);
  CHECK(reader.Get("blob")->value.size() == 300 * 1024);
}

TEST_CASE("store: malformed remote deltas are rejected and change nothing") {
  Store writer = MakeStore(kA);
  const Delta good = Write(writer, {Put("k", "v")}, 1);
  struct Case {
    const char* name;
    Delta delta;
  };
  std::vector<Case> cases;
  auto mutate = [&](const char* name, auto change) {
    Delta d = good;
    change(d);
    cases.push_back({name, d});
  };
  mutate("zero origin", [](Delta& d) { d.origin = NodeId(); });
  mutate("seq 0", [](Delta& d) { d.seq = 0; });
  mutate("no ops", [](Delta& d) { d.ops.clear(); });
  mutate("vv without own entry", [](Delta& d) { d.ops[0].vv = {{kB, 1}}; });
  mutate("vv own entry wrong", [](Delta& d) { d.ops[0].vv[kA] = 2; });
  mutate("vv zero counter", [](Delta& d) { d.ops[0].vv[kB] = 0; });
  mutate("vv zero node", [](Delta& d) { d.ops[0].vv[NodeId()] = 3; });
  mutate("bad key", [](Delta& d) { d.ops[0].key.clear(); });
  mutate("value over cap", [](Delta& d) { d.ops[0].value.assign(kMaxValueBytesCap + 1, 'v'); });
  mutate("hlc wall over 48 bits", [](Delta& d) { d.hlc.wall_ms = Hlc::kMaxWallMs + 1; });
  mutate("unknown op kind", [](Delta& d) { d.ops[0].kind = static_cast<OpKind>(7); });
  for (const Case& c : cases) {
    INFO(c.name);
    Store replica = MakeStore(kR);
    ApplyResult result = replica.Apply(c.delta, 1);
    CHECK(result.status == ApplyStatus::kRejected);
    CHECK_FALSE(result.error.ok());
    CHECK(replica.Applied().empty());
    CHECK(replica.Index() == 0);
  }
}

TEST_CASE("store: a delta from too far in the future is refused for now, accepted later") {
  StoreLimits limits;
  limits.max_clock_drift_ms = 60'000;
  Store writer = MakeStore(kA);
  Delta future = Write(writer, {Put("k", "v")}, 1'000'000);
  Store replica = MakeStore(kR, limits);
  ApplyResult refused = replica.Apply(future, 900'000);
  CHECK(refused.status == ApplyStatus::kRejected);
  CHECK(refused.error.code() == StatusCode::kUnavailable);
  CHECK(refused.error.message().find("max_clock_drift_ms=60000") != std::string::npos);
  CHECK(replica.Apply(future, 950'000).status == ApplyStatus::kApplied);
}

TEST_CASE("store: CAS on the local modify_index; cas=0 means only if absent") {
  Store store = MakeStore(kA);
  auto cas_put = [](std::string key, std::string value, std::uint64_t cas) {
    LocalOp op = Put(std::move(key), std::move(value));
    op.cas = cas;
    return op;
  };
  Write(store, {cas_put("lock", "me", 0)}, 1);
  const std::uint64_t version = store.Get("lock")->modify_index;
  auto taken = store.MakeLocalDelta({cas_put("lock", "you", 0)}, 1);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.status().code() == StatusCode::kConflict);
  auto stale = store.MakeLocalDelta({cas_put("lock", "you", version + 7)}, 1);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().code() == StatusCode::kConflict);
  CHECK(stale.status().message().find("is at version " + std::to_string(version)) != std::string::npos);
  Write(store, {Put("other", "x")}, 1);  // another key's change does not move lock's version
  Write(store, {cas_put("lock", "you", version)}, 1);
  CHECK(ValueOf(store, "lock") == "you");
  auto replay = store.MakeLocalDelta({cas_put("lock", "again", version)}, 1);
  CHECK_FALSE(replay.ok());
  LocalOp cas_delete = Del("lock");
  cas_delete.cas = store.Get("lock")->modify_index;
  Write(store, {cas_delete}, 1);
  CHECK(store.CheckCas("lock", 0).ok());  // deleted counts as absent
  CHECK(store.CheckCas("lock", 1).code() == StatusCode::kConflict);
  Write(store, {cas_put("lock", "fresh", 0)}, 1);
  CHECK(ValueOf(store, "lock") == "fresh");
}

TEST_CASE("store: prefix iteration is ordered, skips tombstones; indexes track changes") {
  Store store = MakeStore(kA);
  Write(store, {Put("b/2", "x"), Put("a/1", "x"), Put("b/1", "x"), Put("c", "x"), Put("b/3", "x")}, 1);
  Write(store, {Del("b/2")}, 1);
  CHECK(store.KeysUnderPrefix("b/") == std::vector<std::string>{"b/1", "b/3"});
  CHECK(store.KeysUnderPrefix("") == std::vector<std::string>{"a/1", "b/1", "b/3", "c"});
  CHECK(store.KeysUnderPrefix("b/", 1) == std::vector<std::string>{"b/1"});
  CHECK(store.KeysUnderPrefix("z").empty());
  int visited = 0;
  store.VisitPrefix("b", [&](std::string_view key, const KeyEntry& entry) {
    CHECK(key.substr(0, 1) == "b");
    CHECK_FALSE(entry.tombstone);
    ++visited;
    return true;
  });
  CHECK(visited == 2);
  CHECK(store.Index() == 2);
  CHECK(store.MaxModifyIndexUnderPrefix("b/") == 2);  // the delete counts
  CHECK(store.MaxModifyIndexUnderPrefix("a/") == 1);
  CHECK(store.MaxModifyIndexUnderPrefix("zz") == 0);
  Write(store, {Put("a/1", "y")}, 1);
  CHECK(store.MaxModifyIndexUnderPrefix("a/") == 3);
  CHECK(store.MaxModifyIndexUnderPrefix("b/") == 2);
  CHECK(store.KeyCount() == 4);
}

TEST_CASE("store: the digest covers replicated state only") {
  Store a = MakeStore(kA);
  Store b = MakeStore(kB);
  Delta d1 = Write(a, {Put("k", "v")}, 1);
  Delta d2 = Write(a, {Put("j", "w")}, 1);
  Delta e1 = Write(b, {Put("z", "u")}, 1);
  Store one = MakeStore(kR);
  Store two = MakeStore(kC);
  one.Apply(d1, 0);
  one.Apply(d2, 0);
  one.Apply(e1, 0);
  two.Apply(e1, 0);
  two.Apply(d2, 0);  // held back: a different local history
  two.Apply(d1, 0);
  CHECK(one.Digest() == two.Digest());
  CHECK(one.Get("k")->modify_index != two.Get("k")->modify_index);  // local indexes differ, the digest does not
  Store partial = MakeStore(kR);
  partial.Apply(d1, 0);
  partial.Apply(e1, 0);
  CHECK(partial.Digest() != one.Digest());
  Store flags_differ = MakeStore(kR);
  Delta d1_flags = d1;
  d1_flags.ops[0].flags = 9;
  flags_differ.Apply(d1_flags, 0);
  Store plain = MakeStore(kR);
  plain.Apply(d1, 0);
  CHECK(flags_differ.Digest() != plain.Digest());
  CHECK(DigestHex(one.Digest()).size() == 64);
}
