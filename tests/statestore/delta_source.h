// Test support: a seeded stream of realistic deltas from several writers.
// Writers are real Stores that catch up on each other's deltas at random, so
// the stream holds causally ordered overwrites, concurrent writes (conflicts),
// deletes (tombstones) and multi-op deltas. Shared by tests/statestore and
// tests/snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/prng.h"
#include "statestore/store.h"

namespace gv::statestore::testing {

inline StoreLimits SmallGcLimits() {
  StoreLimits limits;
  limits.tombstone_gc_ms = 30;  // tombstones expire within a test's run
  return limits;
}

class DeltaSource {
 public:
  DeltaSource(std::uint64_t seed, std::size_t writers, std::size_t keyspace, std::uint64_t first_node = 1)
      : prng_(seed), keyspace_(keyspace), seen_(writers, std::vector<std::size_t>(writers, 0)), log_(writers) {
    for (std::size_t i = 0; i < writers; ++i) writers_.emplace_back(NodeId(first_node + i), StoreLimits{});
  }

  std::uint64_t wall_ms() const { return wall_ms_; }

  // A new delta by a random writer, which first catches up on a random part
  // of the others' deltas (in order per origin).
  Delta Next() {
    const std::size_t w = prng_.Index(writers_.size());
    for (std::size_t o = 0; o < writers_.size(); ++o) {
      if (o == w || !prng_.Chance(0.5)) continue;
      const std::size_t pending = log_[o].size() - seen_[w][o];
      for (std::size_t n = prng_.Index(pending + 1); n > 0; --n) {
        writers_[w].Apply(log_[o][seen_[w][o]++], wall_ms_);
      }
    }
    std::vector<LocalOp> ops;
    const std::size_t count = 1 + prng_.Index(3);
    for (std::size_t i = 0; i < count; ++i) {
      LocalOp op;
      op.key = Key(prng_.Index(keyspace_));
      bool duplicate = false;
      for (const LocalOp& other : ops) duplicate = duplicate || other.key == op.key;
      if (duplicate) continue;
      op.kind = prng_.Chance(0.25) ? OpKind::kDelete : OpKind::kPut;
      if (op.kind == OpKind::kPut) {
        op.value = std::string(prng_.Index(41), static_cast<char>('a' + prng_.Index(26)));
        op.flags = prng_.Uniform(3);
      }
      ops.push_back(std::move(op));
    }
    wall_ms_ += prng_.Uniform(3);
    Result<Delta> delta = writers_[w].MakeLocalDelta(ops, wall_ms_);
    Delta made = std::move(delta.value());
    writers_[w].Apply(made, wall_ms_);
    log_[w].push_back(made);
    seen_[w][w] = log_[w].size();
    return made;
  }

  static std::string Key(std::size_t i) { return "k/" + std::to_string(i % 7) + "/" + std::to_string(i); }

 private:
  Prng prng_;
  std::size_t keyspace_;
  std::uint64_t wall_ms_ = 1'700'000'000'000;
  std::vector<Store> writers_;
  std::vector<std::vector<std::size_t>> seen_;  // seen_[w][o]: deltas of o applied at w
  std::vector<std::vector<Delta>> log_;
};

// Every field, local indexes included.
inline bool SameEntry(const KeyEntry& a, const KeyEntry& b) {
  return a.value == b.value && a.tombstone == b.tombstone && a.hlc == b.hlc && a.origin == b.origin &&
         a.flags == b.flags && a.vv == b.vv && a.conflict == b.conflict && a.create_index == b.create_index &&
         a.modify_index == b.modify_index;
}

using EntryList = std::vector<std::pair<std::string, KeyEntry>>;

template <typename Source>
EntryList CopyEntries(const Source& source) {
  EntryList out;
  source.VisitAll([&](std::string_view key, const KeyEntry& entry) {
    out.emplace_back(std::string(key), entry);
    return true;
  });
  return out;
}

inline bool SameEntries(const EntryList& a, const EntryList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !SameEntry(a[i].second, b[i].second)) return false;
  }
  return true;
}

}  // namespace gv::statestore::testing
