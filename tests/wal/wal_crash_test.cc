// Crash injection with MemFileSystem: the scenario (open, appends across
// several segment rotations, compaction) is run once per mutating
// file-system operation K, crashing at K (so K fails and K-1 was the last to
// happen: "before and after" every write, fsync, rename and directory fsync).
// The crash then drops unsynced data, or keeps a random torn part of it. The
// log must always open, every acknowledged record must survive intact, and
// appending after recovery then reopening must show exactly the old prefix
// plus the new records (nothing stale resurrected).
#include "tests/wal/wal_test_util.h"

using namespace gv;
using namespace gv::wal;
using namespace gv::wal::testing;

namespace {

constexpr std::uint64_t kSeed = 5;
constexpr Lsn kAppends = 40;
constexpr Lsn kCompactBefore = 20;  // RemoveSegmentsBefore after append 25

struct Outcome {
  Lsn acked = 0;          // highest LSN whose Append returned ok
  bool compacted = false;  // RemoveSegmentsBefore was attempted
};

// Runs the scenario until the first failure, like a process that dies there.
Outcome RunScenario(fs::MemFileSystem& fs, Durability durability) {
  Outcome out;
  WalOptions o = SmallOptions();
  o.durability = durability;
  Replayed ignored;
  auto wal = OpenInto(fs, o, ignored);
  if (!wal.ok()) return out;
  for (Lsn lsn = 1; lsn <= kAppends; ++lsn) {
    auto appended = (*wal)->Append(Payload(kSeed, lsn));
    if (!appended.ok()) return out;
    REQUIRE(*appended == lsn);
    out.acked = lsn;
    if (lsn == 25) {
      out.compacted = true;
      if (!(*wal)->RemoveSegmentsBefore(kCompactBefore).ok()) return out;
    }
  }
  (void)(*wal)->Close();
  return out;
}

void CheckAfterCrash(fs::MemFileSystem& fs, const Outcome& out, Durability durability, const std::string& what) {
  CAPTURE(what);
  WalOptions o = SmallOptions();
  o.durability = durability;
  Replayed replayed;
  auto wal = OpenInto(fs, o, replayed);
  REQUIRE_MESSAGE(wal.ok(), wal.status().ToString());
  // Contiguous LSNs, each record exactly the payload written with that LSN
  // (an unacknowledged record may appear: its write may have landed).
  for (std::size_t i = 0; i < replayed.records.size(); ++i) {
    const auto& [lsn, payload] = replayed.records[i];
    if (i > 0) REQUIRE(lsn == replayed.records[i - 1].first + 1);
    REQUIRE(lsn <= kAppends);
    REQUIRE(payload == Payload(kSeed, lsn));
  }
  const Lsn first = replayed.records.empty() ? 0 : replayed.records.front().first;
  const Lsn last = replayed.records.empty() ? 0 : replayed.records.back().first;
  if (durability == Durability::kSync) {
    // Every acknowledged record survived (compaction may drop those below
    // kCompactBefore, and only once it was attempted).
    if (out.acked > 0) {
      REQUIRE(last >= out.acked);
      REQUIRE(first <= (out.compacted ? kCompactBefore : 1));
    }
  }
  if (!out.compacted && !replayed.records.empty()) REQUIRE(first == 1);

  // New records continue the log; after another crash they follow the old
  // prefix exactly.
  const Lsn next = last == 0 ? (*wal)->last_lsn() + 1 : last + 1;
  std::vector<std::string> fresh;
  for (int i = 0; i < 3; ++i) {
    fresh.push_back(Payload(kSeed + 1, next + static_cast<Lsn>(i)));
    auto lsn = (*wal)->Append(fresh.back());
    REQUIRE_MESSAGE(lsn.ok(), lsn.status().ToString());
    REQUIRE(*lsn == next + static_cast<Lsn>(i));
  }
  REQUIRE((*wal)->Sync().ok());
  wal->reset();
  fs.SimulateCrash();
  const auto before = replayed.records;
  auto again = OpenInto(fs, o, replayed);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  REQUIRE(replayed.records.size() == before.size() + fresh.size());
  for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(replayed.records[i] == before[i]);
  for (std::size_t i = 0; i < fresh.size(); ++i) REQUIRE(replayed.records[before.size() + i].second == fresh[i]);
}

}  // namespace

TEST_CASE("crash at every file-system operation of open, append, rotation and compaction") {
  QuietLogs();
  for (Durability durability : {Durability::kSync, Durability::kNone}) {
    // A dry run counts the operations and checks the scenario rotates.
    auto dry = NewMemFs();
    const std::uint64_t start = dry->operation_count();
    const Outcome full = RunScenario(*dry, durability);
    REQUIRE(full.acked == kAppends);
    const std::uint64_t total = dry->operation_count();
    REQUIRE(dry->count(fs::MemOp::kRename) >= 4);
    REQUIRE(dry->count(fs::MemOp::kRemove) >= 1);
    for (std::uint64_t k = start + 1; k <= total + 1; ++k) {
      for (fs::CrashMode mode :
           {fs::CrashMode::kDropUnsynced, fs::CrashMode::kKeepUnsyncedPrefix, fs::CrashMode::kKeepUnsyncedSectors}) {
        auto fs = NewMemFs();
        fs->CrashAtOperation(k);
        const Outcome out = RunScenario(*fs, durability);
        const std::string what = std::string(DurabilityName(durability)) + ": crash at operation " +
                                 std::to_string(k) + " (" + dry->DescribeOperation(k) + "), mode " +
                                 std::to_string(static_cast<int>(mode)) + ", acked " + std::to_string(out.acked);
        fs->SimulateCrash(mode, k * 7 + static_cast<std::uint64_t>(mode));
        CheckAfterCrash(*fs, out, durability, what);
      }
    }
  }
}

TEST_CASE("a failed fsync fails the writer and the log for good (no retry-and-pretend)") {
  QuietLogs();
  for (fs::MemOp op : {fs::MemOp::kSync, fs::MemOp::kWrite, fs::MemOp::kSyncDir, fs::MemOp::kRename}) {
    // 60 appends rotate segments four times or more.
    const std::uint64_t max_nth = op == fs::MemOp::kSync || op == fs::MemOp::kWrite ? 8 : 4;
    for (std::uint64_t nth = 1; nth <= max_nth; ++nth) {
      CAPTURE(std::string(fs::MemOpName(op)));
      CAPTURE(nth);
      auto fs = NewMemFs();
      Replayed replayed;
      auto wal = OpenInto(*fs, SmallOptions(), replayed);
      REQUIRE(wal.ok());
      fs->FailNth(op, nth);
      Lsn acked = 0;
      Status first_error;
      for (Lsn lsn = 1; lsn <= 60; ++lsn) {
        auto appended = (*wal)->Append(Payload(9, lsn));
        if (!appended.ok()) {
          first_error = appended.status();
          break;
        }
        acked = lsn;
      }
      REQUIRE_FALSE(first_error.ok());
      CHECK(first_error.IsIOError());
      CHECK(first_error.message().find("injected") != std::string::npos);
      // The file system works again, but the log stays failed and says so.
      Status health = (*wal)->health();
      CHECK(health.IsIOError());
      CHECK(health.message().find("has failed") != std::string::npos);
      CHECK((*wal)->Append("later").status().message() == health.message());
      CHECK_FALSE((*wal)->Sync().ok());
      CHECK_FALSE((*wal)->Close().ok());
      wal->reset();
      fs->SimulateCrash();
      auto reopened = OpenInto(*fs, SmallOptions(), replayed);
      REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
      REQUIRE(replayed.records.size() >= acked);
      for (const auto& [lsn, payload] : replayed.records) CHECK(payload == Payload(9, lsn));
    }
  }
}
