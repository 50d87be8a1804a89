#include "statestore/store.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <utility>

namespace gv::statestore {

Status StoreLimits::Validate() const {
  if (max_value_bytes > kMaxValueBytesCap) {
    return Status::InvalidArgument("max_value_bytes=" + std::to_string(max_value_bytes) + " is above the 1 MiB cap (" +
                                   std::to_string(kMaxValueBytesCap) + " bytes)");
  }
  if (max_ops_per_delta == 0 || max_ops_per_delta > kMaxOpsPerDeltaCap) {
    return Status::InvalidArgument("max_ops_per_delta=" + std::to_string(max_ops_per_delta) + " must be in 1.." +
                                   std::to_string(kMaxOpsPerDeltaCap));
  }
  if (max_held_back_deltas == 0) return Status::InvalidArgument("max_held_back_deltas must be at least 1");
  if (tombstone_gc_ms == 0) return Status::InvalidArgument("tombstone_gc_ms must be positive");
  return Status::Ok();
}

const char* ApplyStatusName(ApplyStatus status) {
  switch (status) {
    case ApplyStatus::kApplied: return "applied";
    case ApplyStatus::kDuplicate: return "duplicate";
    case ApplyStatus::kHeldBack: return "held_back";
    case ApplyStatus::kRejected: return "rejected";
  }
  return "unknown";
}

std::string DigestHex(const DigestBytes& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (std::uint8_t byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

Result<Store> Store::Create(NodeId self, StoreLimits limits) {
  if (!self.valid()) return Status::InvalidArgument("store node id is zero");
  GV_RETURN_IF_ERROR(limits.Validate());
  return Store(self, limits);
}

Store::Store(NodeId self, StoreLimits limits) : self_(self), limits_(limits), clock_(limits.max_clock_drift_ms) {
  const Status valid = limits_.Validate();
  if (!self_.valid() || !valid.ok()) {
    std::fprintf(stderr, "statestore::Store: %s\n", self_.valid() ? valid.ToString().c_str() : "zero node id");
    std::abort();
  }
}

const KeyEntry* Store::Get(std::string_view key) const {
  const KeyEntry* entry = keys_.Find(key);
  if (entry == nullptr || entry->tombstone) return nullptr;
  return entry;
}

Status Store::CheckCas(std::string_view key, std::uint64_t expected) const {
  const KeyEntry* entry = Get(key);
  if (expected == 0) {
    if (entry == nullptr) return Status::Ok();
    return Status::Conflict("cas=0 requires key '" + std::string(key) + "' to be absent, but it exists at version " +
                            std::to_string(entry->modify_index));
  }
  if (entry == nullptr) {
    return Status::Conflict("cas=" + std::to_string(expected) + " but key '" + std::string(key) + "' is absent");
  }
  if (entry->modify_index != expected) {
    return Status::Conflict("cas=" + std::to_string(expected) + " but key '" + std::string(key) + "' is at version " +
                            std::to_string(entry->modify_index));
  }
  return Status::Ok();
}

Status Store::CheckLocalOp(const LocalOp& local) const {
  GV_RETURN_IF_ERROR(ValidateKey(local.key));
  if (local.kind == OpKind::kDelete && !local.value.empty()) {
    return Status::InvalidArgument("delete of '" + local.key + "' carries a value");
  }
  if (local.value.size() > limits_.max_value_bytes) {
    return Status::TooLarge("value of '" + local.key + "' is " + std::to_string(local.value.size()) +
                            " bytes, over max_value_bytes=" + std::to_string(limits_.max_value_bytes));
  }
  if (local.cas.has_value()) GV_RETURN_IF_ERROR(CheckCas(local.key, *local.cas));
  return Status::Ok();
}

Result<Delta> Store::MakeLocalDelta(const std::vector<LocalOp>& ops, std::uint64_t physical_wall_ms) {
  if (ops.empty()) return Status::InvalidArgument("a write needs at least one op");
  if (ops.size() > limits_.max_ops_per_delta) {
    return Status::TooLarge("write has " + std::to_string(ops.size()) + " ops, over max_ops_per_delta=" +
                            std::to_string(limits_.max_ops_per_delta));
  }
  Delta delta;
  delta.origin = self_;
  auto applied = applied_.find(self_);
  delta.seq = (applied == applied_.end() ? 0 : applied->second) + 1;
  delta.ops.reserve(ops.size());
  for (const LocalOp& local : ops) {
    GV_RETURN_IF_ERROR(CheckLocalOp(local));
    Op op;
    op.kind = local.kind;
    op.key = local.key;
    op.value = local.value;
    op.flags = local.flags;
    // What this node has seen of the key (live or tombstone), plus this write.
    // Ahead of the write: Apply's copy of a leaf shared with a snapshot then
    // finds it in cache.
    if (const KeyEntry* existing = keys_.FindAheadOfWrite(local.key); existing != nullptr) op.vv = existing->vv;
    op.vv[self_] = delta.seq;
    delta.ops.push_back(std::move(op));
  }
  GV_RETURN_IF_ERROR(ValidateDelta(delta, DeltaLimits{limits_.max_value_bytes, limits_.max_ops_per_delta}));
  // Last, so a refused write does not advance the clock. Greater than every
  // HLC observed so far: this write supersedes everything it has seen.
  Result<Hlc> hlc = clock_.Now(physical_wall_ms);
  if (!hlc.ok()) return hlc.status();
  delta.hlc = *hlc;
  return delta;
}

ApplyResult Store::Apply(const Delta& delta, std::uint64_t physical_wall_ms) {
  ApplyResult result;
  // Protocol caps, not local limits: see StoreLimits.
  if (Status valid = ValidateDelta(delta); !valid.ok()) {
    ++stats_.rejected;
    result.status = ApplyStatus::kRejected;
    result.error = std::move(valid);
    return result;
  }
  auto applied_it = applied_.find(delta.origin);
  const std::uint64_t applied = applied_it == applied_.end() ? 0 : applied_it->second;
  if (delta.seq <= applied) {
    ++stats_.duplicates;
    result.status = ApplyStatus::kDuplicate;
    return result;
  }
  if (delta.origin != self_) {
    if (Status drift = clock_.CheckDrift(delta.hlc, physical_wall_ms); !drift.ok()) {
      ++stats_.rejected;
      result.status = ApplyStatus::kRejected;
      result.error = Status::Unavailable("delta " + delta.origin.ToString() + "/" + std::to_string(delta.seq) +
                                         " refused for now: " + drift.message());
      return result;
    }
  }
  if (delta.seq > applied + 1) {
    auto& pending = held_[delta.origin];
    if (pending.count(delta.seq) != 0) {
      ++stats_.duplicates;
      result.status = ApplyStatus::kDuplicate;
      return result;
    }
    if (held_count_ >= limits_.max_held_back_deltas) {
      if (pending.empty()) held_.erase(delta.origin);
      ++stats_.rejected;
      result.status = ApplyStatus::kRejected;
      result.error = Status::Unavailable("held-back queue full (max_held_back_deltas=" +
                                         std::to_string(limits_.max_held_back_deltas) + "): delta " +
                                         delta.origin.ToString() + "/" + std::to_string(delta.seq) +
                                         " arrived before seq " + std::to_string(applied + 1));
      return result;
    }
    pending.emplace(delta.seq, delta);
    ++held_count_;
    ++stats_.held_back_total;
    result.status = ApplyStatus::kHeldBack;
    return result;
  }

  result.status = ApplyStatus::kApplied;
  ApplyInOrder(delta, physical_wall_ms, result);
  // Release the held-back successors this delta unblocked.
  if (auto held = held_.find(delta.origin); held != held_.end()) {
    auto& pending = held->second;
    while (!pending.empty() && pending.begin()->first == applied_[delta.origin] + 1) {
      Delta next = std::move(pending.begin()->second);
      pending.erase(pending.begin());
      --held_count_;
      ApplyInOrder(next, physical_wall_ms, result);
    }
    if (pending.empty()) held_.erase(held);
  }
  return result;
}

void Store::ApplyInOrder(const Delta& delta, std::uint64_t physical_wall_ms, ApplyResult& result) {
  // Every applied delta's HLC is observed, so later local writes exceed it.
  // This can only fail at the 48-bit limit of wall time (validated deltas stay
  // within it); the clock then stays at its maximum and the next local write
  // reports the exhaustion, while merging stays correct.
  (void)clock_.ObserveUnchecked(delta.hlc, physical_wall_ms);
  const std::uint64_t candidate_index = index_ + 1;
  bool changed_any = false;
  for (const Op& op : delta.ops) {
    if (MergeOp(delta, op, candidate_index)) {
      result.changed[op.key] = candidate_index;
      changed_any = true;
    }
  }
  if (changed_any) index_ = candidate_index;
  applied_[delta.origin] = delta.seq;
  ++stats_.deltas_applied;
  result.applied.push_back(DeltaId{delta.origin, delta.seq});
}

namespace {
// A held snapshot's entry copied for the live tree, less the value that the
// write about to be taken replaces: copying that value would cost a malloc
// and a read of cold memory for nothing, on the write path's tail while a
// snapshot is held (issue 5).
KeyEntry CopyWithoutValue(const KeyEntry& shared) {
  // Nine fields: one added to KeyEntry fails to compile here until it is
  // copied below.
  [[maybe_unused]] const auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9] = shared;
  KeyEntry copy;
  copy.hlc = shared.hlc;
  copy.origin = shared.origin;
  copy.flags = shared.flags;
  copy.vv = shared.vv;
  copy.create_index = shared.create_index;
  copy.modify_index = shared.modify_index;
  copy.tombstone = shared.tombstone;
  copy.conflict = shared.conflict;
  return copy;
}

void TakeWrite(KeyEntry& entry, const Delta& delta, const Op& op) {
  entry.tombstone = op.kind == OpKind::kDelete;
  entry.value = entry.tombstone ? std::string() : op.value;
  entry.flags = op.flags;
  entry.hlc = delta.hlc;
  entry.origin = delta.origin;
}
}  // namespace

bool Store::MergeOp(const Delta& delta, const Op& op, std::uint64_t candidate_index) {
  KeyMap::Path path;
  const KeyEntry* existing = keys_.Find(op.key, &path);
  if (existing == nullptr) {
    // A delete of a key never seen still leaves a tombstone: it carries the
    // vector that keeps older puts of the key from resurrecting it.
    KeyEntry fresh;
    TakeWrite(fresh, delta, op);
    fresh.vv = op.vv;
    fresh.modify_index = candidate_index;
    if (!fresh.tombstone) {
      fresh.create_index = candidate_index;
      ++live_keys_;
    }
    keys_.InsertAt(path, op.key, std::move(fresh));
    return true;
  }
  const bool was_live = !existing->tombstone;
  const VvOrder order = Compare(op.vv, existing->vv);
  // Only a write that changes the entry copies it (and its tree path) away
  // from a held snapshot.
  if (order == VvOrder::kEqual || order == VvOrder::kBefore) return false;  // already merged, or superseded
  // A later write replaces the entry's value; of concurrent ones the
  // greatest (hlc, origin) does.
  const bool takes_write =
      order == VvOrder::kAfter || std::tie(delta.hlc, delta.origin) > std::tie(existing->hlc, existing->origin);
  KeyEntry* entry = takes_write ? keys_.MutableAt(path, op.key, CopyWithoutValue) : keys_.MutableAt(path, op.key);
  switch (order) {
    case VvOrder::kEqual:
    case VvOrder::kBefore:
      break;  // handled above
    case VvOrder::kAfter:
      TakeWrite(*entry, delta, op);
      entry->vv = op.vv;
      entry->conflict = false;
      break;
    case VvOrder::kConcurrent:
      ++stats_.conflicts;
      MergeInto(entry->vv, op.vv);
      if (takes_write) TakeWrite(*entry, delta, op);
      entry->conflict = true;
      break;
  }
  entry->modify_index = candidate_index;
  const bool is_live = !entry->tombstone;
  if (is_live && !was_live) {
    entry->create_index = candidate_index;
    ++live_keys_;
  } else if (!is_live && was_live) {
    --live_keys_;
  }
  return true;
}

std::size_t Store::CollectGarbage(std::uint64_t physical_wall_ms) {
  if (physical_wall_ms <= limits_.tombstone_gc_ms) return 0;
  const std::uint64_t cutoff_ms = physical_wall_ms - limits_.tombstone_gc_ms;
  std::vector<std::string> expired;
  for (auto cursor = keys_.Begin(); cursor.valid(); cursor.Next()) {
    const KeyEntry& entry = cursor.value();
    if (entry.tombstone && entry.hlc.wall_ms < cutoff_ms) {
      collected_tombstone_index_ = std::max(collected_tombstone_index_, entry.modify_index);
      expired.emplace_back(cursor.key());
    }
  }
  // Erased after the scan: erasing invalidates cursors.
  for (const std::string& key : expired) keys_.Erase(key);
  stats_.tombstones_collected += expired.size();
  return expired.size();
}

std::vector<std::string> Store::KeysUnderPrefix(std::string_view prefix, std::size_t max_keys) const {
  std::vector<std::string> keys;
  VisitPrefix(prefix, [&](std::string_view key, const KeyEntry&) {
    if (keys.size() >= max_keys) return false;
    keys.emplace_back(key);
    return true;
  });
  return keys;
}

std::uint64_t Store::MaxModifyIndexUnderPrefix(std::string_view prefix) const {
  // Collected tombstones are gone from the map; their highest index is kept
  // (for all prefixes: conservative, a reader may wake once for nothing).
  std::uint64_t max_index = collected_tombstone_index_;
  for (auto cursor = keys_.LowerBound(prefix); cursor.valid(); cursor.Next()) {
    if (cursor.key().compare(0, prefix.size(), prefix) != 0) break;
    max_index = std::max(max_index, cursor.value().modify_index);
  }
  return max_index;
}

std::vector<Gap> Store::Gaps() const {
  std::vector<Gap> gaps;
  for (const auto& [origin, pending] : held_) {
    auto applied = applied_.find(origin);
    std::uint64_t next_missing = (applied == applied_.end() ? 0 : applied->second) + 1;
    for (const auto& entry : pending) {
      const std::uint64_t seq = entry.first;
      if (seq > next_missing) gaps.push_back(Gap{origin, next_missing, seq - 1});
      next_missing = seq + 1;
    }
  }
  return gaps;
}

StoreStats Store::Stats() const {
  StoreStats stats = stats_;
  stats.live_keys = live_keys_;
  stats.tombstones = keys_.size() - live_keys_;
  stats.held_back = held_count_;
  return stats;
}

namespace {
// Feeds a canonical, unambiguous byte encoding into the hash: integers as
// 8-byte little endian, strings length-prefixed.
class DigestWriter {
 public:
  DigestWriter() {
    // Idempotent and thread-safe; selects libsodium's implementations. The
    // BLAKE2b output does not depend on which one is chosen.
    if (sodium_init() < 0) {
      std::fprintf(stderr, "statestore: sodium_init failed\n");
      std::abort();
    }
    crypto_generichash_init(&state_, nullptr, 0, crypto_generichash_BYTES);
  }
  void U64(std::uint64_t v) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(v >> (8 * i));
    crypto_generichash_update(&state_, bytes, sizeof(bytes));
  }
  void Bytes(std::string_view s) {
    U64(s.size());
    crypto_generichash_update(&state_, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  }
  void Vector(const VersionVector& vv) {
    U64(vv.size());
    for (const auto& [node, counter] : vv) {
      U64(node.value);
      U64(counter);
    }
  }
  DigestBytes Finish() {
    static_assert(crypto_generichash_BYTES == std::tuple_size_v<DigestBytes>);
    DigestBytes out{};
    crypto_generichash_final(&state_, out.data(), out.size());
    return out;
  }

 private:
  crypto_generichash_state state_;
};

DigestBytes DigestOf(const KeyMap& keys, const VersionVector& applied) {
  DigestWriter writer;
  writer.U64(keys.size());
  for (auto cursor = keys.Begin(); cursor.valid(); cursor.Next()) {
    const std::string_view key = cursor.key();
    const KeyEntry& entry = cursor.value();
    writer.Bytes(key);
    writer.U64(entry.tombstone ? 1 : 0);
    writer.Bytes(entry.value);
    writer.U64(entry.hlc.Pack());
    writer.U64(entry.origin.value);
    writer.U64(entry.flags);
    writer.U64(entry.conflict ? 1 : 0);
    writer.Vector(entry.vv);
  }
  writer.Vector(applied);
  return writer.Finish();
}

}  // namespace

DigestBytes Store::Digest() const { return DigestOf(keys_, applied_); }

DigestBytes StoreView::Digest() const { return DigestOf(keys_, applied()); }

const VersionVector& StoreView::EmptyVector() {
  static const VersionVector empty;
  return empty;
}

StoreView Store::Capture() const {
  StoreView view;
  view.node_ = self_;
  view.applied_ = std::make_shared<const VersionVector>(applied_);
  view.hlc_ = clock_.last();
  view.index_ = index_;
  view.live_keys_ = live_keys_;
  view.keys_ = keys_;  // O(1): shares the tree; later writes copy the paths they touch
  return view;
}

namespace {
// What Install and MergeSnapshot refuse before they change anything.
Status CheckSnapshotMeta(const LoadedSnapshot& snapshot) {
  for (const auto& [node, counter] : snapshot.applied) {
    if (!node.valid() || counter == 0) {
      return Status::InvalidArgument("snapshot applied vector is not canonical: " + ToString(snapshot.applied));
    }
  }
  if (snapshot.hlc.wall_ms > Hlc::kMaxWallMs) return Status::InvalidArgument("snapshot HLC exceeds 48 bits");
  return Status::Ok();
}
}  // namespace

Status Store::Install(const LoadedSnapshot& snapshot, bool keep_local_indexes, ApplyResult* released) {
  // Checked before the O(n) copy below, so a refused snapshot costs nothing.
  GV_RETURN_IF_ERROR(CheckSnapshotMeta(snapshot));
  // A copy of the entries would be a read-only view, copied item by item at
  // the first write; take a map of our own now instead.
  return InstallEntries(snapshot, snapshot.entries.Clone(), keep_local_indexes, released);
}

Status Store::Install(LoadedSnapshot&& snapshot, bool keep_local_indexes, ApplyResult* released) {
  KeyMap entries = std::move(snapshot.entries);
  return InstallEntries(snapshot, std::move(entries), keep_local_indexes, released);
}

Status Store::MergeSnapshot(LoadedSnapshot snapshot, ApplyResult* released) {
  GV_RETURN_IF_ERROR(CheckSnapshotMeta(snapshot));
  // Validated; from here on nothing fails.
  (void)clock_.ObserveUnchecked(snapshot.hlc, 0);
  const std::uint64_t candidate_index = index_ + 1;
  bool changed_any = false;
  ApplyResult local_result;
  ApplyResult& result = released != nullptr ? *released : local_result;
  result.status = ApplyStatus::kApplied;
  // Changed keys are reported only to a caller that asks: a catch-up merges
  // a million keys, and the agent resets its watchers instead.
  auto note_changed = [&](std::string_view key) {
    if (released != nullptr) result.changed[std::string(key)] = candidate_index;
  };
  // What this node had seen before the merge: an entry it lacks although it
  // applied every write the entry summarizes was deleted here and its
  // tombstone collected — taking it would bring the key back.
  const VersionVector applied_before = applied_;
  if (keys_.empty() && applied_.empty()) {
    // Nothing to merge with and nothing seen: every entry is new. Take the
    // tree whole (a decoder's map is our own, so the stamping below changes
    // it in place; a view would be copied first) instead of inserting key by
    // key — the same result, several times faster.
    KeyMap entries = std::move(snapshot.entries);
    std::size_t live = 0;
    entries.ForEachMutable([&](std::string_view key, KeyEntry& entry) {
      entry.modify_index = candidate_index;
      entry.create_index = entry.tombstone ? 0 : candidate_index;
      if (!entry.tombstone) ++live;
      note_changed(key);
    });
    changed_any = !entries.empty();
    keys_ = std::move(entries);
    live_keys_ = live;
  }
  // Empty after the fast path (moved from), so this loop then does nothing.
  for (auto cursor = snapshot.entries.Begin(); cursor.valid(); cursor.Next()) {
    const std::string_view key = cursor.key();
    const KeyEntry& theirs = cursor.value();
    KeyMap::Path path;
    const KeyEntry* existing = keys_.Find(key, &path);
    if (existing == nullptr) {
      if (Dominates(applied_before, theirs.vv)) continue;  // deleted and collected here
      KeyEntry fresh = theirs;
      fresh.modify_index = candidate_index;
      fresh.create_index = fresh.tombstone ? 0 : candidate_index;
      if (!fresh.tombstone) ++live_keys_;
      keys_.InsertAt(path, key, std::move(fresh));
      note_changed(key);
      changed_any = true;
      continue;
    }
    // The same rule as MergeOp, with an entry (the summary of the writes
    // merged into it) in place of one write: dominated → nothing; dominating
    // → taken whole (its conflict flag too); concurrent → vectors joined,
    // the greatest (hlc, origin) wins, and there are now two maximal writes.
    const VvOrder order = Compare(theirs.vv, existing->vv);
    if (order == VvOrder::kEqual || order == VvOrder::kBefore) continue;
    const bool was_live = !existing->tombstone;
    KeyEntry* entry = keys_.MutableAt(path, key);
    if (order == VvOrder::kAfter) {
      const std::uint64_t create_index = entry->create_index;
      *entry = theirs;
      entry->create_index = create_index;
    } else {
      ++stats_.conflicts;
      MergeInto(entry->vv, theirs.vv);
      if (std::tie(theirs.hlc, theirs.origin) > std::tie(entry->hlc, entry->origin)) {
        entry->value = theirs.value;
        entry->tombstone = theirs.tombstone;
        entry->hlc = theirs.hlc;
        entry->origin = theirs.origin;
        entry->flags = theirs.flags;
      }
      entry->conflict = true;
    }
    entry->modify_index = candidate_index;
    const bool is_live = !entry->tombstone;
    if (is_live && !was_live) {
      entry->create_index = candidate_index;
      ++live_keys_;
    } else if (!is_live && was_live) {
      --live_keys_;
    }
    note_changed(key);
    changed_any = true;
  }
  MergeInto(applied_, snapshot.applied);  // one pass, not an insertion per new node
  if (changed_any) index_ = candidate_index;
  ReleaseHeldAfterVectorJump(result);
  return Status::Ok();
}

Status Store::InstallEntries(const LoadedSnapshot& meta, KeyMap entries, bool keep_local_indexes,
                             ApplyResult* released) {
  GV_RETURN_IF_ERROR(CheckSnapshotMeta(meta));

  // One pass: count live keys, and in the peer/restore mode stamp the new
  // local index on every entry (in place when `entries` is a map of its
  // own, not a view).
  const std::uint64_t new_index = keep_local_indexes ? std::max(index_, meta.index) : index_ + 1;
  std::size_t live = 0;
  if (keep_local_indexes) {
    for (auto cursor = entries.Begin(); cursor.valid(); cursor.Next()) live += cursor.value().tombstone ? 0 : 1;
  } else {
    entries.ForEachMutable([&](std::string_view, KeyEntry& entry) {
      live += entry.tombstone ? 0 : 1;
      entry.create_index = entry.tombstone ? 0 : new_index;
      entry.modify_index = new_index;
    });
  }

  // Validated; from here on nothing fails.
  (void)clock_.ObserveUnchecked(meta.hlc, 0);
  keys_ = std::move(entries);
  live_keys_ = live;
  applied_ = meta.applied;
  index_ = new_index;
  // Keys absent from the snapshot vanished without a tombstone: every prefix
  // counts as changed at the new index, so no blocking read misses that.
  collected_tombstone_index_ = std::max(collected_tombstone_index_, new_index);

  ApplyResult local_result;
  ApplyResult& result = released != nullptr ? *released : local_result;
  result.status = ApplyStatus::kApplied;
  ReleaseHeldAfterVectorJump(result);
  return Status::Ok();
}

void Store::ReleaseHeldAfterVectorJump(ApplyResult& result) {
  for (auto held = held_.begin(); held != held_.end();) {
    auto& pending = held->second;
    const auto applied_it = applied_.find(held->first);
    const std::uint64_t covered = applied_it == applied_.end() ? 0 : applied_it->second;
    while (!pending.empty() && pending.begin()->first <= covered) {
      pending.erase(pending.begin());
      --held_count_;
    }
    // Release the deltas that are now next in order (each advances applied_).
    for (std::uint64_t next_seq = covered + 1; !pending.empty() && pending.begin()->first == next_seq; ++next_seq) {
      Delta next = std::move(pending.begin()->second);
      pending.erase(pending.begin());
      --held_count_;
      // Admitted once already (drift-checked on arrival); no physical time here.
      ApplyInOrder(next, 0, result);
    }
    held = pending.empty() ? held_.erase(held) : std::next(held);
  }
}

}  // namespace gv::statestore
