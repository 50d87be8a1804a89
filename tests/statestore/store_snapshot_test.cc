// Store::Capture and Store::Install (issue 5).
//  - A view captured while writes go on equals the state at its capture point
//    exactly (every entry with its local indexes, and the digest), over many
//    seeds, with several views open and released in random orders, through
//    overwrites, deletes, conflicts and tombstone collection.
//  - A reader thread walks and digests a view while the store keeps writing
//    (run under ASan; the copy-on-write rule is in persistent_map.h).
//  - Install in both modes: the state and vector are the snapshot's, the
//    indexes follow the mode, held-back deltas are dropped or released, the
//    clock observes the snapshot's HLC.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "common/prng.h"
#include "statestore/store.h"
#include "tests/statestore/delta_source.h"

using namespace gv;
using namespace gv::statestore;
using namespace gv::statestore::testing;

namespace {

struct HeldView {
  StoreView view;
  EntryList entries;  // the model: a deep copy taken at the capture point
  DigestBytes digest;
  VersionVector applied;
  std::uint64_t index;
  std::size_t live_keys;
};

void CheckView(const HeldView& held) {
  REQUIRE(held.view.entry_count() == held.entries.size());
  REQUIRE(held.view.live_keys() == held.live_keys);
  REQUIRE(held.view.applied() == held.applied);
  REQUIRE(held.view.index() == held.index);
  REQUIRE(SameEntries(CopyEntries(held.view), held.entries));
  REQUIRE(held.view.Digest() == held.digest);
}

LoadedSnapshot ToLoaded(const StoreView& view) {
  LoadedSnapshot loaded;
  loaded.format_version = 1;
  loaded.node = view.node();
  loaded.applied = view.applied();
  loaded.hlc = view.hlc();
  loaded.index = view.index();
  loaded.live_keys = view.live_keys();
  loaded.entries = view.keys().Clone();  // a map of its own, as a decoder's is
  return loaded;
}

// `origin`'s next delta after `view` (seq one past the view's), built by the
// origin's rules: each op's vector is the key's in the view plus this write.
Delta NextDeltaAfter(const StoreView& view, const Delta& last_of_origin) {
  const NodeId origin = last_of_origin.origin;
  Delta next = last_of_origin;
  next.seq = view.applied().at(origin) + 1;
  next.hlc.wall_ms += 10;
  for (Op& op : next.ops) {
    const KeyEntry* current = view.Find(op.key);
    op.vv = current != nullptr ? current->vv : VersionVector{};
    op.vv[origin] = next.seq;
  }
  return next;
}

}  // namespace

TEST_CASE("capture: views equal the state at their capture point while writes go on") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    Prng prng(seed * 31);
    DeltaSource source(seed, 3, seed % 3 == 0 ? 40 : 400);
    Store store(NodeId(99), SmallGcLimits());
    // The same deltas into a store that is never captured: the live state
    // must not depend on whether views were held while it was written (a
    // write copies an entry away from a view, leaving out the value it
    // replaces; a concurrent write that loses must keep the value).
    Store twin(NodeId(99), SmallGcLimits());
    std::vector<HeldView> held;
    std::size_t captured = 0, collected = 0;
    for (int step = 0; step < 400; ++step) {
      const Delta delta = source.Next();
      REQUIRE(store.Apply(delta, source.wall_ms()).status == ApplyStatus::kApplied);
      REQUIRE(twin.Apply(delta, source.wall_ms()).status == ApplyStatus::kApplied);
      if (prng.Chance(0.1)) {
        LocalOp op{prng.Chance(0.3) ? OpKind::kDelete : OpKind::kPut, DeltaSource::Key(prng.Index(50)), "", 0,
                   std::nullopt};
        if (op.kind == OpKind::kPut) op.value = "local" + std::to_string(step);
        Result<Delta> local = store.MakeLocalDelta({op}, source.wall_ms());
        REQUIRE(local.ok());
        REQUIRE(store.Apply(*local, source.wall_ms()).status == ApplyStatus::kApplied);
        REQUIRE(twin.Apply(*local, source.wall_ms()).status == ApplyStatus::kApplied);
      }
      if (prng.Chance(0.05)) {
        collected += store.CollectGarbage(source.wall_ms());
        twin.CollectGarbage(source.wall_ms());
      }
      if (step % 50 == 49) REQUIRE(SameEntries(CopyEntries(store), CopyEntries(twin)));
      if (prng.Chance(0.06)) {
        held.push_back(HeldView{store.Capture(), CopyEntries(store), store.Digest(), store.Applied(), store.Index(),
                                store.KeyCount()});
        ++captured;
      }
      if (!held.empty() && prng.Chance(0.04)) {
        const std::size_t victim = prng.Index(held.size());
        CheckView(held[victim]);
        held.erase(held.begin() + static_cast<long>(victim));
      }
    }
    for (const HeldView& h : held) CheckView(h);
    REQUIRE(SameEntries(CopyEntries(store), CopyEntries(twin)));
    REQUIRE(store.Digest() == twin.Digest());
    REQUIRE(captured > 5);
    if (seed % 3 == 0) REQUIRE(collected > 0);  // the small keyspace churns tombstones out
  }
}

TEST_CASE("capture: with a view held, a winning write replaces the value and a losing concurrent one keeps it") {
  // Node 2's write is the newer; node 3's is concurrent with it and older.
  // Whichever arrives second, the live entry ends with node 2's value and a
  // conflict, and a view taken between the two keeps the first one's entry.
  const auto delta = [](std::uint64_t origin, std::uint64_t wall_ms, const std::string& value) {
    Delta d;
    d.origin = NodeId(origin);
    d.seq = 1;
    d.hlc = Hlc{wall_ms, 0};
    Op op;
    op.key = "config/shared";
    op.value = value;
    op.vv[NodeId(origin)] = 1;
    d.ops.push_back(std::move(op));
    return d;
  };
  const Delta newer = delta(2, 1'700'000'002'000, "from node 2, newer");
  const Delta older = delta(3, 1'700'000'001'000, "from node 3, older");
  for (bool newer_first : {true, false}) {
    CAPTURE(newer_first);
    Store store(NodeId(1), StoreLimits{});
    const std::uint64_t now_ms = 1'700'000'003'000;
    REQUIRE(store.Apply(newer_first ? newer : older, now_ms).status == ApplyStatus::kApplied);
    const StoreView view = store.Capture();
    REQUIRE(store.Apply(newer_first ? older : newer, now_ms).status == ApplyStatus::kApplied);
    const KeyEntry* live = store.Get("config/shared");
    REQUIRE(live != nullptr);
    CHECK(live->value == "from node 2, newer");
    CHECK(live->origin == NodeId(2));
    CHECK(live->conflict);
    CHECK(live->vv == VersionVector{{NodeId(2), 1}, {NodeId(3), 1}});
    const KeyEntry* kept = view.Find("config/shared");
    REQUIRE(kept != nullptr);
    CHECK(kept->value == (newer_first ? "from node 2, newer" : "from node 3, older"));
    CHECK_FALSE(kept->conflict);
  }
}

TEST_CASE("capture: a reader thread walks a view while the store keeps writing") {
  DeltaSource source(77, 3, 3000);
  Store store(NodeId(99), SmallGcLimits());
  for (int i = 0; i < 3000; ++i) store.Apply(source.Next(), source.wall_ms());
  for (int round = 0; round < 4; ++round) {
    const EntryList model = CopyEntries(store);
    const DigestBytes digest = store.Digest();
    StoreView view = store.Capture();
    std::atomic<bool> reader_done{false};
    EntryList seen;
    DigestBytes seen_digest{};
    std::thread reader([&, view_copy = view]() mutable {
      // Copies and destroys views too (reference counts from this thread).
      for (int pass = 0; pass < 3; ++pass) {
        StoreView again = view_copy;
        seen = CopyEntries(again);
        seen_digest = again.Digest();
      }
      reader_done = true;
    });
    view = StoreView();  // the writer side drops its reference while the reader runs
    int writes = 0;
    while (!reader_done || writes < 500) {
      store.Apply(source.Next(), source.wall_ms());
      if (++writes % 100 == 0) store.CollectGarbage(source.wall_ms());
    }
    reader.join();
    REQUIRE(SameEntries(seen, model));
    REQUIRE(seen_digest == digest);
  }
}

TEST_CASE("install: a peer snapshot replaces the state and bumps every index") {
  DeltaSource source(5, 3, 200);
  Store peer(NodeId(50), StoreLimits{});
  std::vector<Delta> deltas;
  for (int i = 0; i < 300; ++i) {
    deltas.push_back(source.Next());
    peer.Apply(deltas.back(), source.wall_ms());
  }
  const StoreView view = peer.Capture();

  Store node(NodeId(60), StoreLimits{});
  // The node has some older state of its own, and held-back deltas: one the
  // snapshot covers, and one that becomes next in order after the install.
  for (int i = 0; i < 40; ++i) node.Apply(deltas[static_cast<std::size_t>(i)], source.wall_ms());
  const std::uint64_t index_before = node.Index();
  const NodeId origin = deltas[0].origin;
  const std::uint64_t covered_seq = view.applied().at(origin);
  std::vector<Delta> of_origin;
  for (const Delta& d : deltas) {
    if (d.origin == origin) of_origin.push_back(d);
  }
  REQUIRE(of_origin.size() == covered_seq);
  // A delta of the origin beyond the snapshot, with a gap before it.
  Delta future1 = of_origin.back(), future2 = of_origin.back();
  future1.seq = covered_seq + 1;
  future2.seq = covered_seq + 2;
  for (Op& op : future1.ops) op.vv[origin] = future1.seq;
  for (Op& op : future2.ops) op.vv[origin] = future2.seq;
  future1.hlc.wall_ms += 5;
  future2.hlc.wall_ms += 6;
  REQUIRE(node.Apply(future2, source.wall_ms()).status == ApplyStatus::kHeldBack);
  // Covered by the snapshot (seq 3 of the origin, ahead of the node's vector if not applied yet).
  Delta covered = of_origin[of_origin.size() / 2];
  const auto before = node.Apply(covered, source.wall_ms()).status;
  REQUIRE((before == ApplyStatus::kHeldBack || before == ApplyStatus::kDuplicate || before == ApplyStatus::kApplied));

  ApplyResult released;
  REQUIRE(node.Install(ToLoaded(view), /*keep_local_indexes=*/false, &released).ok());
  // future2 is still waiting for future1; the covered one is gone.
  REQUIRE(released.applied.empty());
  REQUIRE(node.HeldBackCount() == 1);
  REQUIRE(node.Applied() == view.applied());
  REQUIRE(node.Digest() == peer.Digest());
  REQUIRE(node.Index() == index_before + 1);
  node.VisitAll([&](std::string_view, const KeyEntry& entry) {
    REQUIRE(entry.modify_index == node.Index());
    REQUIRE(entry.create_index == (entry.tombstone ? 0 : node.Index()));
    return true;
  });
  REQUIRE(node.KeyCount() == peer.KeyCount());
  REQUIRE(node.MaxModifyIndexUnderPrefix("no/such/prefix/") == node.Index());
  REQUIRE(node.clock().last() > view.hlc());
  // The view itself is untouched by the install's index rewrite.
  REQUIRE(SameEntries(CopyEntries(view), CopyEntries(peer)));

  // Filling the gap releases the held-back successor.
  const ApplyResult filled = node.Apply(future1, source.wall_ms());
  REQUIRE(filled.status == ApplyStatus::kApplied);
  REQUIRE(filled.applied.size() == 2);
  REQUIRE(node.Applied().at(origin) == covered_seq + 2);
}

TEST_CASE("install: held-back deltas that become next in order are released") {
  DeltaSource source(9, 2, 100);
  Store peer(NodeId(50), StoreLimits{});
  std::vector<Delta> deltas;
  for (int i = 0; i < 100; ++i) {
    deltas.push_back(source.Next());
    peer.Apply(deltas.back(), source.wall_ms());
  }
  const StoreView view = peer.Capture();
  const NodeId origin = deltas.back().origin;
  const std::uint64_t covered = view.applied().at(origin);
  // The delta right after the snapshot's vector, built by the origin's rules.
  const Delta next = NextDeltaAfter(view, deltas.back());
  Store node(NodeId(60), StoreLimits{});
  REQUIRE(node.Apply(next, source.wall_ms()).status == ApplyStatus::kHeldBack);
  ApplyResult released;
  REQUIRE(node.Install(ToLoaded(view), false, &released).ok());
  REQUIRE(released.applied == std::vector<DeltaId>{DeltaId{origin, covered + 1}});
  REQUIRE(node.HeldBackCount() == 0);
  REQUIRE(node.Applied().at(origin) == covered + 1);
  peer.Apply(next, source.wall_ms());
  REQUIRE(node.Digest() == peer.Digest());
}

TEST_CASE("install: our own snapshot at start-up keeps the local indexes") {
  DeltaSource source(11, 2, 150);
  Store original(NodeId(70), SmallGcLimits());
  for (int i = 0; i < 200; ++i) original.Apply(source.Next(), source.wall_ms());
  for (int i = 0; i < 20; ++i) {
    Result<Delta> local = original.MakeLocalDelta(
        {LocalOp{OpKind::kPut, "own/" + std::to_string(i), "v", 0, std::nullopt}}, source.wall_ms());
    REQUIRE(local.ok());
    original.Apply(*local, source.wall_ms());
  }
  original.CollectGarbage(source.wall_ms());
  const StoreView view = original.Capture();
  LoadedSnapshot loaded = ToLoaded(view);

  Store restarted(NodeId(70), SmallGcLimits());
  REQUIRE(restarted.Install(std::move(loaded), /*keep_local_indexes=*/true).ok());
  REQUIRE(restarted.Index() == original.Index());
  REQUIRE(SameEntries(CopyEntries(restarted), CopyEntries(original)));
  REQUIRE(restarted.Digest() == original.Digest());
  REQUIRE(restarted.KeyCount() == original.KeyCount());
  REQUIRE(restarted.clock().last() > original.clock().last());
  // The next own write continues the sequence and supersedes what it saw.
  Result<Delta> next = restarted.MakeLocalDelta({LocalOp{OpKind::kPut, "own/0", "w", 0, std::nullopt}},
                                                source.wall_ms());
  REQUIRE(next.ok());
  REQUIRE(next->seq == original.Applied().at(NodeId(70)) + 1);
  REQUIRE(next->hlc > view.hlc());
}

TEST_CASE("install: a snapshot behind our own writes, then our own tail re-applied, converges") {
  Store node(NodeId(80), StoreLimits{});
  Store peer(NodeId(81), StoreLimits{});
  std::vector<Delta> own;
  for (int i = 0; i < 3; ++i) {
    Result<Delta> local = node.MakeLocalDelta(
        {LocalOp{OpKind::kPut, "k" + std::to_string(i % 2), std::to_string(i), 0, std::nullopt}}, 1000);
    REQUIRE(local.ok());
    node.Apply(*local, 1000);
    own.push_back(*local);
  }
  // The peer has our first two writes and one of its own.
  peer.Apply(own[0], 1000);
  peer.Apply(own[1], 1000);
  Result<Delta> peers = peer.MakeLocalDelta({LocalOp{OpKind::kPut, "p", "x", 0, std::nullopt}}, 1001);
  REQUIRE(peers.ok());
  peer.Apply(*peers, 1001);

  REQUIRE(node.Install(ToLoaded(peer.Capture()), false).ok());
  REQUIRE(node.Applied().at(NodeId(80)) == 2);  // back to the snapshot's
  REQUIRE(node.Apply(own[2], 1002).status == ApplyStatus::kApplied);  // the caller re-applies its tail
  peer.Apply(own[2], 1002);
  REQUIRE(node.Digest() == peer.Digest());
  Result<Delta> next = node.MakeLocalDelta({LocalOp{OpKind::kPut, "k0", "y", 0, std::nullopt}}, 1003);
  REQUIRE(next.ok());
  REQUIRE(next->seq == 4);
  REQUIRE(next->hlc > peers->hlc);
}

TEST_CASE("merge: a snapshot merged into a store equals applying the union of both sides' deltas") {
  // Per seed: deltas from 4 writers (overwrites, conflicts, deletes); store A
  // and the snapshot's store B each hold a random prefix of every origin's
  // deltas; the union store holds the longer prefix of each. A merged with
  // B's snapshot must equal the union, in every replicated field.
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    CAPTURE(seed);
    testing::DeltaSource source(seed, 4, 12);
    std::vector<Delta> deltas;
    for (int i = 0; i < 160; ++i) deltas.push_back(source.Next());
    std::map<NodeId, std::vector<const Delta*>> by_origin;
    for (const Delta& d : deltas) by_origin[d.origin].push_back(&d);
    Prng prng(seed * 7919);
    Store a(NodeId(100), StoreLimits{});
    Store b(NodeId(101), StoreLimits{});
    Store both(NodeId(102), StoreLimits{});
    for (const auto& [origin, list] : by_origin) {
      const std::size_t in_a = prng.Index(list.size() + 1);
      const std::size_t in_b = prng.Index(list.size() + 1);
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (i < in_a) a.Apply(*list[i], 5000);
        if (i < in_b) b.Apply(*list[i], 5000);
        if (i < std::max(in_a, in_b)) both.Apply(*list[i], 5000);
      }
    }
    // Deltas of one origin can depend on others' (a writer saw them first):
    // only prefixes that applied fully are comparable, so compare applied
    // vectors before states.
    const std::uint64_t index_before = a.Index();
    ApplyResult released;
    REQUIRE(a.MergeSnapshot(ToLoaded(b.Capture()), &released).ok());
    CHECK(a.Applied() == both.Applied());
    CHECK(a.HeldBackCount() == both.HeldBackCount());
    CHECK(a.Digest() == both.Digest());
    CHECK(a.Index() >= index_before);
    // Idempotent: merging the same snapshot again changes nothing.
    const DigestBytes merged = a.Digest();
    const std::uint64_t index_merged = a.Index();
    REQUIRE(a.MergeSnapshot(ToLoaded(b.Capture())).ok());
    CHECK(a.Digest() == merged);
    CHECK(a.Index() == index_merged);
  }
}

TEST_CASE("merge: into an empty store (the whole tree taken) equals the key-by-key merge") {
  DeltaSource source(13, 4, 300);
  Store peer(NodeId(50), StoreLimits{});
  std::vector<Delta> deltas;
  for (int i = 0; i < 400; ++i) {
    deltas.push_back(source.Next());
    peer.Apply(deltas.back(), source.wall_ms());
  }
  const StoreView view = peer.Capture();
  const NodeId origin = deltas.back().origin;
  const std::uint64_t covered = view.applied().at(origin);
  const Delta next = NextDeltaAfter(view, deltas.back());  // held back until the merge

  const EntryList view_before = CopyEntries(view);
  // The fast path: no keys yet, one held-back delta.
  Store empty(NodeId(60), StoreLimits{});
  REQUIRE(empty.Apply(next, source.wall_ms()).status == ApplyStatus::kHeldBack);
  ApplyResult released;
  REQUIRE(empty.MergeSnapshot(ToLoaded(view), &released).ok());
  // The reference: the same merge key by key, into a store holding one key
  // the snapshot also has (so the fast path cannot run) — with the same
  // entry, so the merged state is the same.
  Store keyed(NodeId(61), StoreLimits{});
  for (const Delta& d : deltas) {
    if (d.origin != deltas[0].origin || d.seq != 1) continue;
    REQUIRE(keyed.Apply(d, source.wall_ms()).status == ApplyStatus::kApplied);
  }
  REQUIRE(keyed.KeyCount() > 0);
  REQUIRE(keyed.MergeSnapshot(ToLoaded(view)).ok());
  REQUIRE(keyed.Apply(next, source.wall_ms()).status == ApplyStatus::kApplied);

  peer.Apply(next, source.wall_ms());
  CHECK(empty.Digest() == peer.Digest());
  CHECK(empty.Digest() == keyed.Digest());
  CHECK(empty.Applied() == peer.Applied());
  CHECK(empty.KeyCount() == peer.KeyCount());
  CHECK(empty.HeldBackCount() == 0);
  CHECK(released.applied == std::vector<DeltaId>{DeltaId{origin, covered + 1}});
  // Every key of the snapshot is reported changed, at the merge's index or later.
  std::size_t entries = 0;
  view.VisitAll([&](std::string_view key, const KeyEntry&) {
    ++entries;
    CHECK(released.changed.count(std::string(key)) == 1);
    return true;
  });
  CHECK(released.changed.size() == entries);
  empty.VisitAll([&](std::string_view, const KeyEntry& entry) {
    CHECK(entry.modify_index >= 1);
    CHECK(entry.modify_index <= empty.Index());
    if (entry.tombstone) {
      CHECK(entry.create_index == 0);
    } else {
      CHECK(entry.create_index >= 1);
      CHECK(entry.create_index <= entry.modify_index);
    }
    return true;
  });
  // The captured view shares the tree the merge took: stamping indexes must
  // have copied what it changed, leaving the view as it was.
  CHECK(SameEntries(CopyEntries(view), view_before));
}

TEST_CASE("merge: a key deleted here and collected is not brought back by an older snapshot") {
  StoreLimits limits;
  limits.tombstone_gc_ms = 1000;
  Store writer(NodeId(90), limits);
  Store node(NodeId(91), limits);
  Store old_peer(NodeId(92), limits);
  Result<Delta> put = writer.MakeLocalDelta({LocalOp{OpKind::kPut, "gone", "v", 0, std::nullopt}}, 1000);
  REQUIRE(put.ok());
  writer.Apply(*put, 1000);
  Result<Delta> keep = writer.MakeLocalDelta({LocalOp{OpKind::kPut, "kept", "v", 0, std::nullopt}}, 1001);
  REQUIRE(keep.ok());
  writer.Apply(*keep, 1001);
  Result<Delta> del = writer.MakeLocalDelta({LocalOp{OpKind::kDelete, "gone", "", 0, std::nullopt}}, 1002);
  REQUIRE(del.ok());
  writer.Apply(*del, 1002);
  for (const Delta* d : {&*put, &*keep, &*del}) REQUIRE(node.Apply(*d, 1002).status == ApplyStatus::kApplied);
  // The old peer saw only the put: its snapshot holds "gone" alive.
  REQUIRE(old_peer.Apply(*put, 1000).status == ApplyStatus::kApplied);
  REQUIRE(node.CollectGarbage(1002 + 10000) == 1);  // the tombstone is collected here
  REQUIRE(node.KeyCount() == 1);
  REQUIRE(node.MergeSnapshot(ToLoaded(old_peer.Capture())).ok());
  CHECK(node.Get("gone") == nullptr);
  CHECK(node.KeyCount() == 1);
  CHECK(node.Applied().at(NodeId(90)) == 3);
  // A store that never saw the writes takes the key (the merge is not a filter on everything).
  Store fresh(NodeId(93), limits);
  REQUIRE(fresh.MergeSnapshot(ToLoaded(old_peer.Capture())).ok());
  CHECK(fresh.Get("gone") != nullptr);
}

TEST_CASE("merge: our own newer writes survive a snapshot that lacks them; seqs are not reissued") {
  Store node(NodeId(80), StoreLimits{});
  Store peer(NodeId(81), StoreLimits{});
  std::vector<Delta> own;
  for (int i = 0; i < 3; ++i) {
    Result<Delta> local = node.MakeLocalDelta(
        {LocalOp{OpKind::kPut, "k" + std::to_string(i), std::to_string(i), 0, std::nullopt}}, 1000);
    REQUIRE(local.ok());
    node.Apply(*local, 1000);
    own.push_back(*local);
  }
  peer.Apply(own[0], 1000);
  Result<Delta> peers = peer.MakeLocalDelta({LocalOp{OpKind::kPut, "p", "x", 0, std::nullopt}}, 1001);
  REQUIRE(peers.ok());
  peer.Apply(*peers, 1001);
  REQUIRE(node.MergeSnapshot(ToLoaded(peer.Capture())).ok());
  CHECK(node.Applied().at(NodeId(80)) == 3);
  CHECK(node.Applied().at(NodeId(81)) == 1);
  REQUIRE(node.Get("k2") != nullptr);
  REQUIRE(node.Get("p") != nullptr);
  Result<Delta> next = node.MakeLocalDelta({LocalOp{OpKind::kPut, "k0", "y", 0, std::nullopt}}, 1003);
  REQUIRE(next.ok());
  CHECK(next->seq == 4);
}

TEST_CASE("install: refuses a non-canonical vector and leaves the state unchanged") {
  Store node(NodeId(80), StoreLimits{});
  Result<Delta> local = node.MakeLocalDelta({LocalOp{OpKind::kPut, "a", "1", 0, std::nullopt}}, 1000);
  REQUIRE(local.ok());
  node.Apply(*local, 1000);
  const DigestBytes before = node.Digest();
  LoadedSnapshot zero;
  zero.node = NodeId(81);
  zero.applied[NodeId(80)] = 1;
  zero.applied[NodeId(5)] = 0;
  REQUIRE(node.Install(zero, false).code() == StatusCode::kInvalidArgument);
  REQUIRE(node.Digest() == before);
  REQUIRE(node.Index() == 1);
}
