// Randomized model test: many seeds of random operation sequences (appends,
// batches, syncs, compaction, injected crashes and faults, torn crash modes,
// sync and none durability) checked against a model of what must survive.
// The seed is printed on failure (CAPTURE) and reproduces the run exactly.
#include <set>

#include "tests/wal/wal_test_util.h"

using namespace gv;
using namespace gv::wal;
using namespace gv::wal::testing;

namespace {

struct Model {
  // Every payload handed to the log, by the LSN it would get. A failed append
  // may still have reached the disk, and a later attempt reuses its LSN, so
  // an LSN can have several candidates until a crash settles it.
  std::map<Lsn, std::set<std::string>> attempted;
  Lsn durable = 0;    // every record up to here must survive a crash
  Lsn compacted = 0;  // RemoveSegmentsBefore(compacted) was called: records below may be gone
};

void RunSeed(std::uint64_t seed) {
  CAPTURE(seed);
  Prng prng(seed);
  auto fs = NewMemFs();
  WalOptions o = SmallOptions();
  o.segment_bytes = 512 + 128 * prng.Index(8);
  o.max_record_bytes = 200;
  // Not kInterval: its flusher thread would make the operation count, and so
  // the injected faults, differ between runs of the same seed.
  o.durability = prng.Chance(0.5) ? Durability::kSync : Durability::kNone;
  const bool sync_mode = o.durability == Durability::kSync;
  Model model;
  Replayed replayed;
  auto opened = OpenInto(*fs, o, replayed);
  REQUIRE(opened.ok());
  std::unique_ptr<Wal> wal = std::move(*opened);
  Lsn next = 1;

  for (int step = 0; step < 300; ++step) {
    CAPTURE(step);
    const std::uint64_t dice = prng.Index(100);
    if (dice < 55) {
      const std::size_t n = dice < 40 ? 1 : 1 + prng.Index(6);
      std::vector<std::string> owned;
      for (std::size_t i = 0; i < n; ++i) owned.push_back(Payload(seed, next + i, 1 + prng.Index(200)));
      for (std::size_t i = 0; i < n; ++i) model.attempted[next + i].insert(owned[i]);
      const std::vector<std::string_view> batch(owned.begin(), owned.end());
      auto first = n == 1 ? wal->Append(batch[0]) : wal->AppendBatch(batch);
      if (first.ok()) {
        REQUIRE(*first == next);
        next += n;
        if (sync_mode) model.durable = next - 1;
      }
    } else if (dice < 65) {
      if (wal->Sync().ok()) model.durable = next - 1;
    } else if (dice < 70) {
      const Lsn before = 1 + prng.Index(next);
      // Even a failed call may have removed some of the segments.
      (void)wal->RemoveSegmentsBefore(before);
      model.compacted = std::max(model.compacted, before);
    } else if (dice < 78) {
      // A fault or a crash lands within the next few operations.
      const std::uint64_t k = fs->operation_count() + 1 + prng.Index(6);
      if (prng.Chance(0.5)) {
        fs->CrashAtOperation(k);
      } else {
        const fs::MemOp ops[] = {fs::MemOp::kWrite, fs::MemOp::kSync, fs::MemOp::kSyncDir, fs::MemOp::kRename};
        fs->FailNth(ops[prng.Index(4)], 1 + prng.Index(3));
      }
    } else if (dice < 90 || !wal->health().ok()) {
      // Crash and restart.
      if (prng.Chance(0.3)) {
        if (wal->Close().ok()) model.durable = next - 1;
      }
      wal.reset();
      const fs::CrashMode crash_modes[] = {fs::CrashMode::kDropUnsynced, fs::CrashMode::kKeepUnsyncedPrefix,
                                           fs::CrashMode::kKeepUnsyncedSectors};
      fs->SimulateCrash(crash_modes[prng.Index(3)], prng.NextU64());
      auto reopened = OpenInto(*fs, o, replayed);
      REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
      wal = std::move(*reopened);
      // Contiguous, each record exactly what was handed in for its LSN.
      for (std::size_t i = 0; i < replayed.records.size(); ++i) {
        const auto& [lsn, payload] = replayed.records[i];
        if (i > 0) REQUIRE(lsn == replayed.records[i - 1].first + 1);
        auto it = model.attempted.find(lsn);
        REQUIRE(it != model.attempted.end());
        REQUIRE(it->second.count(payload) == 1);
      }
      const Lsn first = replayed.records.empty() ? 0 : replayed.records.front().first;
      const Lsn last = replayed.records.empty() ? 0 : replayed.records.back().first;
      // Everything durable survived (except what compaction was allowed to drop).
      if (model.durable > 0 && model.durable >= std::max<Lsn>(model.compacted, 1)) {
        REQUIRE(last >= model.durable);
        REQUIRE(first <= std::max<Lsn>(model.compacted, 1));
      }
      // Records after the recovered end are gone; their LSNs will be reused.
      // Recovered records are settled: one candidate each.
      next = wal->last_lsn() + 1;
      REQUIRE(next >= last + 1);
      model.attempted.erase(model.attempted.lower_bound(next), model.attempted.end());
      for (const auto& [lsn, payload] : replayed.records) model.attempted[lsn] = {payload};
      model.durable = std::min(model.durable, next - 1);
    }
  }
  (void)wal->Close();
}

}  // namespace

TEST_CASE("model: random operations, faults and crashes over many seeds") {
  QuietLogs();
  for (std::uint64_t seed = 1; seed <= 300; ++seed) RunSeed(seed);
}
