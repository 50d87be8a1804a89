// The replicated key/value state of one node (DESIGN.md §3). Sans-IO: time
// arrives as physical_wall_ms arguments; the caller owns persistence.
//
// Merge rule for an op with vector W on a key whose merged vector is VV:
//   W <= VV       no change (a duplicate, or superseded by a write already merged)
//   W >  VV       the op replaces the value; VV = W; conflict = false
//   concurrent    VV = VV ∨ W; winner = max by (hlc, origin); conflict = true
// Because every writer's HLC exceeds every HLC it has observed (the store
// observes every applied delta's HLC before writing), a superseded write always
// has a smaller HLC than its successor. Hence after any set of ops, in any
// order, with duplicates: VV is the join of their vectors, the winner is their
// greatest (hlc, origin), and conflict == "more than one maximal write" — the
// merge is commutative, associative and idempotent.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "statestore/delta.h"
#include "statestore/hlc.h"
#include "statestore/persistent_map.h"

namespace gv::statestore {

struct StoreLimits {
  // Local writes only; received deltas are checked against the protocol caps
  // (delta.h) so differently configured nodes still converge.
  std::size_t max_value_bytes = kDefaultMaxValueBytes;  // <= kMaxValueBytesCap (1 MiB)
  std::size_t max_ops_per_delta = 1024;                 // <= kMaxOpsPerDeltaCap
  // Out-of-order deltas kept until their gap fills.
  std::size_t max_held_back_deltas = 4096;
  // Tombstones whose HLC wall time is older than this are dropped by CollectGarbage.
  std::uint64_t tombstone_gc_ms = 24ull * 3600 * 1000;
  // Refuse a remote delta whose HLC is this far ahead of local physical time (0: off).
  std::uint64_t max_clock_drift_ms = 0;

  // InvalidArgument naming the offending field.
  Status Validate() const;
};

// One key's state. Replicated fields converge; create/modify indexes are local.
// The two flags come last so that they share one word of padding: the entry
// is 112 bytes, and with the map's epoch its item is one 128-byte malloc
// chunk (docs/benchmarks.md, "a flat version vector").
struct KeyEntry {
  std::string value;       // empty for a tombstone
  Hlc hlc;                 // the winning write's
  NodeId origin;           // the winning write's
  std::uint64_t flags = 0;
  VersionVector vv;        // join of every merged write's vector
  // Local: Index() when the key last became live, and when it last changed.
  // modify_index is the "version" of ?cas=.
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
  bool tombstone = false;  // deleted; invisible to readers until GC drops it
  bool conflict = false;   // more than one maximal (concurrent) write
};
static_assert(sizeof(KeyEntry) <= 112, "KeyEntry grew: see the comment above");

// A local write request (the HTTP layer's PUT/DELETE).
struct LocalOp {
  OpKind kind = OpKind::kPut;
  std::string key;
  std::string value;
  std::uint64_t flags = 0;
  // Compare-and-set on the local modify_index: 0 = only if absent (or deleted),
  // N = only if the live key's modify_index is N. nullopt = unconditional.
  std::optional<std::uint64_t> cas;
};

enum class ApplyStatus { kApplied, kDuplicate, kHeldBack, kRejected };
const char* ApplyStatusName(ApplyStatus status);

struct DeltaId {
  NodeId origin;
  std::uint64_t seq = 0;
  auto operator<=>(const DeltaId&) const = default;
};

struct ApplyResult {
  ApplyStatus status = ApplyStatus::kRejected;
  Status error;                   // why, when kRejected
  std::vector<DeltaId> applied;   // this delta and any held-back ones it released, in order
  // Keys whose state changed, with their new modify_index (for blocking reads and watchers).
  std::map<std::string, std::uint64_t> changed;
};

// Missing deltas of one origin: seqs first_missing..last_missing (inclusive)
// are absent while a later one is held back. The daemon asks a peer for them.
struct Gap {
  NodeId origin;
  std::uint64_t first_missing = 0;
  std::uint64_t last_missing = 0;
  bool operator==(const Gap&) const = default;
};

struct StoreStats {
  std::size_t live_keys = 0;
  std::size_t tombstones = 0;
  std::size_t held_back = 0;
  std::uint64_t deltas_applied = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t held_back_total = 0;  // deltas that arrived before a predecessor
  std::uint64_t rejected = 0;
  std::uint64_t conflicts = 0;   // merges that found concurrent writes
  std::uint64_t tombstones_collected = 0;
};

using DigestBytes = std::array<std::uint8_t, 32>;  // BLAKE2b-256
std::string DigestHex(const DigestBytes& digest);

// The key map: a persistent B+-tree (persistent_map.h). Copying it is O(1)
// and the copy is an immutable point-in-time state (copy-on-write).
using KeyMap = PersistentMap<KeyEntry>;

// A snapshot decoded and verified by snapshot/ (or built by a test), ready
// for Store::Install. Lives here so the store does not depend on snapshot/.
struct LoadedSnapshot {
  std::uint32_t format_version = 0;
  NodeId node;              // the node that captured it
  VersionVector applied;    // its applied vector at capture
  Hlc hlc;                  // its clock's latest HLC at capture (>= every entry's hlc)
  std::uint64_t index = 0;  // its Index() at capture (>= every entry's modify_index)
  std::uint64_t live_keys = 0;
  std::uint64_t created_wall_ms = 0;
  std::uint64_t wal_lsn = 0;  // opaque to the store (the agent's WAL position)
  KeyMap entries;             // keys in order, tombstones included
};

// An immutable point-in-time state of a Store (Store::Capture). Cheap to copy
// (shared pointers only); safe to read, copy and destroy on any thread while
// the Store keeps changing on its own thread (persistent_map.h says why).
class StoreView {
 public:
  StoreView() = default;

  NodeId node() const { return node_; }
  const VersionVector& applied() const { return applied_ ? *applied_ : EmptyVector(); }
  Hlc hlc() const { return hlc_; }
  std::uint64_t index() const { return index_; }
  std::size_t entry_count() const { return keys_.size(); }
  std::size_t live_keys() const { return live_keys_; }

  // (key, const KeyEntry&) in key order, tombstones included, until visit returns false.
  template <typename Visit>
  void VisitAll(Visit&& visit) const {
    for (auto cursor = keys_.Begin(); cursor.valid(); cursor.Next()) {
      if (!visit(std::string_view(cursor.key()), cursor.value())) break;
    }
  }
  // The entry (live or tombstone), or nullptr.
  const KeyEntry* Find(std::string_view key) const { return keys_.Find(key); }
  const KeyMap& keys() const { return keys_; }
  // Store::Digest() of the store at capture.
  DigestBytes Digest() const;

 private:
  friend class Store;
  static const VersionVector& EmptyVector();

  NodeId node_;
  std::shared_ptr<const VersionVector> applied_;
  Hlc hlc_;
  std::uint64_t index_ = 0;
  std::size_t live_keys_ = 0;
  KeyMap keys_;
};

class Store {
 public:
  // The key map: every access goes through Store's methods (and StoreView).
  using KeyMap = statestore::KeyMap;

  // Validates the limits first.
  static Result<Store> Create(NodeId self, StoreLimits limits);
  // `limits` must pass Validate(); a broken one aborts (use Create to get a Status).
  Store(NodeId self, StoreLimits limits);

  Store(Store&&) = default;
  Store& operator=(Store&&) = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  NodeId self() const { return self_; }
  const StoreLimits& limits() const { return limits_; }

  // ---- Writes ----
  // Builds the next local delta: checks limits and CAS conditions, assigns
  // seq = applied[self] + 1, an HLC from the clock, and per-op vectors from the
  // current key state. Does not change the state: Apply() the delta (after
  // logging it) before making the next one, or the two would share a seq.
  Result<Delta> MakeLocalDelta(const std::vector<LocalOp>& ops, std::uint64_t physical_wall_ms);
  // The checks MakeLocalDelta makes of each op on its own (key rules, a
  // delete without value, max_value_bytes, ?cas against the current state),
  // so a caller grouping several requests into one delta can refuse one
  // request without failing the others.
  Status CheckLocalOp(const LocalOp& op) const;

  // Merges a delta (local or remote). Duplicates and held-back deltas are
  // normal outcomes; kRejected carries a Status (invalid delta, held-back queue
  // full, or clock drift) and leaves the state unchanged.
  ApplyResult Apply(const Delta& delta, std::uint64_t physical_wall_ms);

  // Drops tombstones whose HLC wall time is older than tombstone_gc_ms; returns how many.
  std::size_t CollectGarbage(std::uint64_t physical_wall_ms);

  // ---- Reads ----
  // The live entry, or nullptr for an absent or deleted key. Valid until the next mutating call.
  const KeyEntry* Get(std::string_view key) const;
  // OK if `expected` matches (see LocalOp::cas), Conflict naming both versions otherwise.
  Status CheckCas(std::string_view key, std::uint64_t expected) const;

  // Visits live entries whose key starts with `prefix`, in key order, until
  // `visit(key, entry)` returns false.
  template <typename Visit>
  void VisitPrefix(std::string_view prefix, Visit&& visit) const {
    for (auto cursor = keys_.LowerBound(prefix); cursor.valid(); cursor.Next()) {
      if (cursor.key().compare(0, prefix.size(), prefix) != 0) break;
      if (cursor.value().tombstone) continue;
      if (!visit(std::string_view(cursor.key()), cursor.value())) break;
    }
  }
  // Every entry including tombstones, in key order (snapshots, tests).
  template <typename Visit>
  void VisitAll(Visit&& visit) const {
    for (auto cursor = keys_.Begin(); cursor.valid(); cursor.Next()) {
      if (!visit(std::string_view(cursor.key()), cursor.value())) break;
    }
  }
  std::vector<std::string> KeysUnderPrefix(std::string_view prefix, std::size_t max_keys = SIZE_MAX) const;

  // The local change counter: +1 per applied delta that changed any key.
  std::uint64_t Index() const { return index_; }
  // Highest modify_index of any entry (tombstones included) under `prefix`;
  // never less than that of a tombstone already collected, so a blocking read
  // cannot miss a delete. 0 if nothing under the prefix ever changed.
  std::uint64_t MaxModifyIndexUnderPrefix(std::string_view prefix) const;
  std::size_t KeyCount() const { return live_keys_; }

  // Per origin, the highest seq such that 1..seq are all applied.
  const VersionVector& Applied() const { return applied_; }
  std::size_t HeldBackCount() const { return held_count_; }
  std::vector<Gap> Gaps() const;

  const HlcClock& clock() const { return clock_; }
  StoreStats Stats() const;

  // BLAKE2b-256 over the replicated state (keys in order with value or
  // tombstone, hlc, origin, flags, vv, conflict) and the applied vector. Local
  // indexes, held-back deltas and counters are excluded: equal digests mean
  // equal replicated state.
  DigestBytes Digest() const;

  // ---- Snapshots (issue 5) ----
  // An immutable point-in-time state: O(1) in the number of keys (pins the
  // tree's current epoch and copies the applied vector). Later writes never
  // wait for a view's readers (only, for a moment, for the map's mutex while
  // another thread drops a view); memory grows only with what is written
  // while the view is held.
  StoreView Capture() const;

  // Replaces the replicated state with a snapshot's (keys incl. tombstones,
  // applied vector); the clock observes its HLC. Held-back deltas the new
  // vector covers are dropped; the rest stay and are released if now in order
  // (into *released when given: applied ids and changed keys).
  // keep_local_indexes=true (our own snapshot at start-up): entries keep their
  //   create/modify indexes and Index() becomes max(Index(), the snapshot's).
  // false (a peer's snapshot or a restore): Index() advances by one and every
  //   entry gets create/modify index = the new Index(), so blocking reads and
  //   watchers see a change (MaxModifyIndexUnderPrefix of every prefix too,
  //   since keys may have disappeared).
  // A snapshot may be behind this store's own writes (a peer lacked some of
  // them, or an older backup): Applied()[self()] then goes back to the
  // snapshot's, and the caller MUST re-apply its own deltas after that seq
  // (from its WAL) before MakeLocalDelta, or it would reissue sequence numbers
  // that peers already hold for other writes.
  // InvalidArgument (state unchanged) for a non-canonical vector or an HLC
  // beyond 48 bits. The rvalue overload installs the entries without copying
  // when they are a map of their own (a decoder's); a view of another map
  // (a copy) is copied item by item on its first write (persistent_map.h).
  Status Install(const LoadedSnapshot& snapshot, bool keep_local_indexes, ApplyResult* released = nullptr);
  // Merges a snapshot into the state instead of replacing it: every entry
  // goes through the per-key merge rule (as if the writes it summarizes were
  // applied) and the applied vector becomes the pointwise max — each side
  // holds all of 1..its counter per origin, so the union holds 1..max. Nothing
  // this store had is lost, and Applied()[self()] never goes back, so no seq
  // can be reissued. Keys that changed get the new Index() (one more). An
  // entry absent here whose writes this store had all applied is skipped: it
  // was deleted here and its tombstone collected. Not for
  // a node away longer than tombstone_gc: a key deleted there and collected in
  // the snapshot would survive here (Install then).
  // InvalidArgument (state unchanged) for a non-canonical vector or an HLC beyond 48 bits.
  // *released (when given) gets the changed keys and the held-back deltas
  // released; without it the changed keys are not collected.
  Status MergeSnapshot(LoadedSnapshot snapshot, ApplyResult* released = nullptr);
  Status Install(LoadedSnapshot&& snapshot, bool keep_local_indexes, ApplyResult* released = nullptr);

 private:
  Status InstallEntries(const LoadedSnapshot& meta, KeyMap entries, bool keep_local_indexes, ApplyResult* released);
  // After applied_ jumped ahead (a snapshot installed or merged): drops the
  // held-back deltas it now covers and applies those that became next in order.
  void ReleaseHeldAfterVectorJump(ApplyResult& result);
  // Merges one validated delta whose seq is applied[origin] + 1.
  void ApplyInOrder(const Delta& delta, std::uint64_t physical_wall_ms, ApplyResult& result);
  // Merges one op; true if the key's state changed (it then gets candidate_index).
  bool MergeOp(const Delta& delta, const Op& op, std::uint64_t candidate_index);

  NodeId self_;
  StoreLimits limits_;
  HlcClock clock_;
  KeyMap keys_;
  std::size_t live_keys_ = 0;
  VersionVector applied_;
  // Deltas that arrived before their predecessors: origin -> seq -> delta.
  std::map<NodeId, std::map<std::uint64_t, Delta>> held_;
  std::size_t held_count_ = 0;
  std::uint64_t index_ = 0;
  std::uint64_t collected_tombstone_index_ = 0;  // max modify_index of a dropped tombstone
  StoreStats stats_;
};

}  // namespace gv::statestore
