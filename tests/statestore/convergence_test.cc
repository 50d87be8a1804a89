// Convergence property: random multi-origin histories (causal reads, concurrent
// writes, deletes, skewed and backwards-jumping clocks) delivered to replicas in
// random orders with duplicates. Every replica must end with the same digest,
// applied vector and conflict flags, and the state must equal an oracle computed
// from the set of writes alone: per key the join of the vectors, the greatest
// (hlc, origin) as winner, conflict iff more than one write is maximal.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "common/prng.h"
#include "statestore/store.h"

using namespace gv;
using namespace gv::statestore;

namespace {

constexpr std::uint64_t kSeeds = 1000;
constexpr std::size_t kReplicas = 4;

struct History {
  std::vector<NodeId> origins;
  std::vector<Delta> deltas;  // in creation order
};

History Generate(std::uint64_t seed) {
  Prng prng(seed);
  History history;
  const std::size_t writers_count = 2 + prng.Index(4);
  const std::size_t key_count = 2 + prng.Index(5);
  const double delete_chance = 0.1 + 0.5 * prng.NextDouble();
  const double read_first_chance = prng.NextDouble();
  const std::size_t steps = 30 + prng.Index(50);
  std::vector<Store> writers;
  std::vector<std::uint64_t> physical_ms;
  for (std::size_t i = 0; i < writers_count; ++i) {
    history.origins.push_back(NodeId(0x1000 + i));
    writers.emplace_back(history.origins.back(), StoreLimits{});
    physical_ms.push_back(1'700'000'000'000 + prng.Uniform(10'000));  // skewed clocks
  }
  for (std::size_t step = 0; step < steps; ++step) {
    const std::size_t w = prng.Index(writers_count);
    Store& writer = writers[w];
    // Causal reads: first learn some of what others wrote (any order; gaps are held back).
    if (!history.deltas.empty() && prng.Chance(read_first_chance)) {
      const std::size_t reads = 1 + prng.Index(history.deltas.size());
      for (std::size_t r = 0; r < reads; ++r) {
        const ApplyResult result = writer.Apply(history.deltas[prng.Index(history.deltas.size())], physical_ms[w]);
        REQUIRE(result.status != ApplyStatus::kRejected);
      }
    }
    if (prng.Chance(0.1)) {
      physical_ms[w] -= prng.Uniform(5'000);  // clock stepped back
    } else {
      physical_ms[w] += prng.Uniform(20);  // often several writes per millisecond
    }
    std::vector<LocalOp> ops;
    const std::size_t op_count = 1 + prng.Index(3);
    std::vector<std::size_t> key_ids;
    for (std::size_t k = 0; k < key_count; ++k) key_ids.push_back(k);
    prng.Shuffle(key_ids);
    for (std::size_t i = 0; i < op_count && i < key_count; ++i) {
      LocalOp op;
      op.key = "key/" + std::to_string(key_ids[i]);
      if (prng.Chance(delete_chance)) {
        op.kind = OpKind::kDelete;
      } else {
        op.kind = OpKind::kPut;
        op.value = "v" + std::to_string(prng.Uniform(1000));  // values may repeat: the digest must still tell
        op.flags = prng.Uniform(3);
      }
      ops.push_back(std::move(op));
    }
    auto delta = writer.MakeLocalDelta(ops, physical_ms[w]);
    REQUIRE_MESSAGE(delta.ok(), delta.status().ToString());
    REQUIRE(writer.Apply(*delta, physical_ms[w]).status == ApplyStatus::kApplied);
    history.deltas.push_back(std::move(*delta));
  }
  return history;
}

struct Write {
  const Delta* delta;
  const Op* op;
};

// The expected state of every key, from the set of writes alone.
std::map<std::string, KeyEntry> Oracle(const History& history) {
  std::map<std::string, std::vector<Write>> writes;
  for (const Delta& delta : history.deltas) {
    for (const Op& op : delta.ops) writes[op.key].push_back(Write{&delta, &op});
  }
  std::map<std::string, KeyEntry> expected;
  for (const auto& [key, list] : writes) {
    KeyEntry entry;
    const Write* winner = nullptr;
    std::size_t maximal = 0;
    for (const Write& w : list) {
      MergeInto(entry.vv, w.op->vv);
      if (winner == nullptr || std::tie(w.delta->hlc, w.delta->origin) > std::tie(winner->delta->hlc, winner->delta->origin)) {
        winner = &w;
      }
      bool dominated = false;
      for (const Write& other : list) {
        if (Compare(other.op->vv, w.op->vv) == VvOrder::kAfter) dominated = true;
      }
      if (!dominated) ++maximal;
    }
    entry.tombstone = winner->op->kind == OpKind::kDelete;
    entry.value = winner->op->value;
    entry.flags = winner->op->flags;
    entry.hlc = winner->delta->hlc;
    entry.origin = winner->delta->origin;
    entry.conflict = maximal > 1;
    expected.emplace(key, std::move(entry));
  }
  return expected;
}

VersionVector ExpectedApplied(const History& history) {
  VersionVector applied;
  for (const Delta& delta : history.deltas) MergeInto(applied, VersionVector{{delta.origin, delta.seq}});
  return applied;
}

// Applies the history in a random order with duplicates; returns the replica.
Store Deliver(const History& history, NodeId self, Prng& prng) {
  std::vector<const Delta*> inbox;
  for (const Delta& delta : history.deltas) {
    inbox.push_back(&delta);
    while (prng.Chance(0.3)) inbox.push_back(&delta);
  }
  prng.Shuffle(inbox);
  Store replica(self, StoreLimits{});
  for (const Delta* delta : inbox) {
    const ApplyResult result = replica.Apply(*delta, 0);
    REQUIRE_MESSAGE(result.status != ApplyStatus::kRejected, result.error.ToString());
  }
  return replica;
}

void CheckAgainstOracle(const Store& replica, const std::map<std::string, KeyEntry>& expected) {
  std::size_t seen = 0;
  replica.VisitAll([&](std::string_view key, const KeyEntry& entry) {
    INFO("key=" << key);
    auto it = expected.find(std::string(key));
    REQUIRE(it != expected.end());
    const KeyEntry& want = it->second;
    CHECK(entry.tombstone == want.tombstone);
    CHECK(entry.value == want.value);
    CHECK(entry.flags == want.flags);
    CHECK(entry.hlc == want.hlc);
    CHECK(entry.origin == want.origin);
    CHECK(entry.vv == want.vv);
    CHECK(entry.conflict == want.conflict);
    ++seen;
    return true;
  });
  CHECK(seen == expected.size());
}

}  // namespace

TEST_CASE("convergence: replicas fed the same deltas in any order, with duplicates, end identical") {
  std::size_t conflicted_keys = 0, tombstones = 0, held_back_seen = 0;
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    INFO("seed=" << seed);
    const History history = Generate(seed);
    const auto expected = Oracle(history);
    const VersionVector expected_applied = ExpectedApplied(history);
    Prng order(seed * 7919 + 1);
    std::vector<DigestBytes> digests;
    for (std::size_t r = 0; r < kReplicas; ++r) {
      Store replica = Deliver(history, NodeId(0x9000 + r), order);
      REQUIRE(replica.HeldBackCount() == 0);
      REQUIRE(replica.Gaps().empty());
      REQUIRE(replica.Applied() == expected_applied);
      CheckAgainstOracle(replica, expected);
      digests.push_back(replica.Digest());
      held_back_seen += replica.Stats().held_back_total;
    }
    for (const DigestBytes& digest : digests) REQUIRE(DigestHex(digest) == DigestHex(digests[0]));
    for (const auto& [key, entry] : expected) {
      conflicted_keys += entry.conflict ? 1 : 0;
      tombstones += entry.tombstone ? 1 : 0;
    }
  }
  // The generator must actually produce the interesting cases.
  CHECK(conflicted_keys > kSeeds / 2);
  CHECK(tombstones > kSeeds / 2);
  CHECK(held_back_seen > kSeeds);
}

TEST_CASE("convergence: the writers themselves converge with fresh replicas once they see everything") {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    INFO("seed=" << seed);
    const History history = Generate(seed);
    Prng order(seed);
    const DigestBytes reference = Deliver(history, NodeId(0x9999), order).Digest();
    // Rebuild each writer's view: its own deltas in order, then the rest shuffled.
    for (NodeId origin : history.origins) {
      Store writer(origin, StoreLimits{});
      std::vector<const Delta*> rest;
      for (const Delta& delta : history.deltas) {
        if (delta.origin == origin) {
          REQUIRE(writer.Apply(delta, 0).status == ApplyStatus::kApplied);
        } else {
          rest.push_back(&delta);
        }
      }
      order.Shuffle(rest);
      for (const Delta* delta : rest) writer.Apply(*delta, 0);
      CHECK(DigestHex(writer.Digest()) == DigestHex(reference));
    }
  }
}

TEST_CASE("convergence: partial deliveries agree on what they share") {
  // Two replicas that applied the same subset of deltas (in different orders)
  // agree at every prefix where their applied vectors match.
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    INFO("seed=" << seed);
    const History history = Generate(seed);
    Prng prng(seed ^ 0xabcdef);
    std::vector<const Delta*> subset;
    for (const Delta& delta : history.deltas) {
      if (prng.Chance(0.6)) subset.push_back(&delta);
    }
    std::vector<const Delta*> order_one = subset, order_two = subset;
    prng.Shuffle(order_one);
    prng.Shuffle(order_two);
    Store one(NodeId(0x9001), StoreLimits{});
    Store two(NodeId(0x9002), StoreLimits{});
    for (const Delta* d : order_one) one.Apply(*d, 0);
    for (const Delta* d : order_two) two.Apply(*d, 0);
    REQUIRE(one.Applied() == two.Applied());
    CHECK(one.Gaps() == two.Gaps());
    CHECK(one.HeldBackCount() == two.HeldBackCount());
    CHECK(DigestHex(one.Digest()) == DigestHex(two.Digest()));
  }
}
