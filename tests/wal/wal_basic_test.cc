// Basic behaviour of the WAL on the in-memory file system: append, reopen,
// rotation, batches, limits, compaction, durability modes, temp files.
#include <chrono>
#include <thread>

#include "tests/wal/wal_test_util.h"

using namespace gv;
using namespace gv::wal;
using namespace gv::wal::testing;

namespace {

std::unique_ptr<Wal> MustOpen(fs::FileSystem& fs, const WalOptions& options, Replayed& out) {
  auto wal = OpenInto(fs, options, out);
  REQUIRE_MESSAGE(wal.ok(), wal.status().ToString());
  return std::move(*wal);
}

std::vector<std::string> SegmentNames(fs::FileSystem& fs) {
  auto names = fs.ListDir(kWalDir);
  REQUIRE(names.ok());
  return *names;
}

}  // namespace

TEST_CASE("wal: records appended are replayed in order after reopen, across rotations") {
  QuietLogs();
  auto fs = NewMemFs();
  Replayed replayed;
  auto wal = MustOpen(*fs, SmallOptions(), replayed);
  CHECK(replayed.records.empty());
  CHECK(wal->recovery().segments == 1);
  for (Lsn lsn = 1; lsn <= 100; ++lsn) {
    auto appended = wal->Append(Payload(1, lsn));
    REQUIRE(appended.ok());
    CHECK(*appended == lsn);
  }
  const WalStats stats = wal->stats();
  CHECK(stats.records == 100);
  CHECK(stats.appends == 100);
  CHECK(stats.syncs == 100);
  CHECK(stats.segments > 3);
  CHECK(stats.segments == stats.segments_created);
  CHECK(stats.last_lsn == 100);
  REQUIRE(wal->Close().ok());
  wal.reset();

  // Every segment is named by its first LSN and no record spans segments:
  // each segment's size is within its preallocated size.
  for (const auto& name : SegmentNames(*fs)) {
    CHECK(ParseSegmentFileName(name).has_value());
    auto content = fs::ReadFileToString(*fs, fs::JoinPath(kWalDir, name), 1 << 20);
    REQUIRE(content.ok());
    CHECK(content->size() == SmallOptions().segment_bytes);
    auto first = DecodeSegmentHeader(*content);
    REQUIRE(first.ok());
    CHECK(name == SegmentFileName(*first));
  }

  fs->SimulateCrash();
  wal = MustOpen(*fs, SmallOptions(), replayed);
  REQUIRE(replayed.records.size() == 100);
  for (Lsn lsn = 1; lsn <= 100; ++lsn) {
    CHECK(replayed.records[lsn - 1].first == lsn);
    CHECK(replayed.records[lsn - 1].second == Payload(1, lsn));
  }
  CHECK(wal->recovery().records == 100);
  CHECK(wal->recovery().first_lsn == 1);
  CHECK(wal->recovery().last_lsn == 100);
  CHECK_FALSE(wal->recovery().tail_cut);
  auto next = wal->Append("after");
  REQUIRE(next.ok());
  CHECK(*next == 101);
}

TEST_CASE("wal: AppendBatch gives consecutive LSNs; limits and bad options are errors") {
  QuietLogs();
  auto fs = NewMemFs();
  Replayed replayed;
  auto wal = MustOpen(*fs, SmallOptions(), replayed);
  std::vector<std::string> owned;
  for (Lsn lsn = 1; lsn <= 30; ++lsn) owned.push_back(Payload(2, lsn));
  const std::vector<std::string_view> batch(owned.begin(), owned.end());
  auto first = wal->AppendBatch(batch);
  REQUIRE(first.ok());
  CHECK(*first == 1);
  CHECK(wal->last_lsn() == 30);
  CHECK(wal->stats().syncs < 30);  // one batch, one sync per segment it filled
  CHECK(wal->Append(std::string(201, 'x')).status().code() == StatusCode::kTooLarge);
  CHECK(wal->AppendBatch({}).status().code() == StatusCode::kInvalidArgument);
  CHECK(wal->health().ok());  // a rejected record does not fail the log
  REQUIRE(wal->Close().ok());
  CHECK(wal->Append("x").status().code() == StatusCode::kAborted);
  wal.reset();

  wal = MustOpen(*fs, SmallOptions(), replayed);
  REQUIRE(replayed.records.size() == 30);
  for (Lsn lsn = 1; lsn <= 30; ++lsn) CHECK(replayed.records[lsn - 1].second == owned[lsn - 1]);

  WalOptions bad = SmallOptions();
  bad.segment_bytes = 200;  // cannot hold a 200-byte record plus headers
  CHECK(Wal::Open(*fs, bad, replayed.Fn()).status().code() == StatusCode::kInvalidArgument);
  bad = SmallOptions();
  bad.max_record_bytes = kMaxRecordPayloadBytes + 1;
  CHECK(Wal::Open(*fs, bad, replayed.Fn()).status().code() == StatusCode::kInvalidArgument);
  bad = SmallOptions();
  bad.dir = "";
  CHECK(Wal::Open(*fs, bad, replayed.Fn()).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("wal: a replay callback error aborts Open; replay_from_lsn skips older records") {
  QuietLogs();
  auto fs = NewMemFs();
  Replayed replayed;
  {
    auto wal = MustOpen(*fs, SmallOptions(), replayed);
    for (Lsn lsn = 1; lsn <= 20; ++lsn) REQUIRE(wal->Append(Payload(3, lsn)).ok());
  }
  auto failing = Wal::Open(*fs, SmallOptions(), [](Lsn lsn, std::string_view) {
    return lsn == 5 ? Status::Corruption("cannot decode delta 5") : Status::Ok();
  });
  CHECK(failing.status().IsCorruption());
  CHECK(failing.status().message() == "cannot decode delta 5");

  WalOptions from = SmallOptions();
  from.replay_from_lsn = 15;
  auto wal = MustOpen(*fs, from, replayed);
  REQUIRE(replayed.records.size() == 6);
  CHECK(replayed.records.front().first == 15);
  CHECK(wal->recovery().records == 20);
  CHECK(wal->recovery().replayed == 6);
}

TEST_CASE("wal: RemoveSegmentsBefore deletes only segments wholly below the LSN, never the current one") {
  QuietLogs();
  auto fs = NewMemFs();
  Replayed replayed;
  auto wal = MustOpen(*fs, SmallOptions(), replayed);
  for (Lsn lsn = 1; lsn <= 100; ++lsn) REQUIRE(wal->Append(Payload(4, lsn)).ok());
  std::vector<Lsn> firsts;
  for (const auto& name : SegmentNames(*fs)) firsts.push_back(*ParseSegmentFileName(name));
  REQUIRE(firsts.size() >= 4);
  // Keep the segment holding firsts[2]; the two before it go.
  REQUIRE(wal->RemoveSegmentsBefore(firsts[2] + 1).ok());
  std::vector<Lsn> left;
  for (const auto& name : SegmentNames(*fs)) left.push_back(*ParseSegmentFileName(name));
  CHECK(left == std::vector<Lsn>(firsts.begin() + 2, firsts.end()));
  CHECK(wal->stats().segments_removed == 2);
  REQUIRE(wal->RemoveSegmentsBefore(1000).ok());
  CHECK(SegmentNames(*fs).size() == 1);  // the current segment stays
  REQUIRE(wal->Append("more").ok());
  REQUIRE(wal->Close().ok());
  wal.reset();
  fs->SimulateCrash();  // removals were made durable

  wal = MustOpen(*fs, SmallOptions(), replayed);
  REQUIRE_FALSE(replayed.records.empty());
  CHECK(replayed.records.front().first == firsts.back());
  CHECK(replayed.records.back().first == 101);
  CHECK(replayed.records.back().second == "more");
}

TEST_CASE("wal: leftover temp files are removed on open; unknown files are left alone") {
  QuietLogs();
  auto fs = NewMemFs();
  Replayed replayed;
  { auto wal = MustOpen(*fs, SmallOptions(), replayed); }
  for (const char* name : {"data/wal/segment-1.wal.tmp", "data/wal/00000000000000000099.wal.tmp", "data/wal/notes.txt"}) {
    auto f = fs->Open(name, fs::OpenMode::kCreateNew);
    REQUIRE(f.ok());
    REQUIRE((*f)->WriteAt(0, "junk").ok());
  }
  auto wal = MustOpen(*fs, SmallOptions(), replayed);
  CHECK(wal->recovery().temp_files_removed == 2);
  CHECK(SegmentNames(*fs) == std::vector<std::string>{"00000000000000000001.wal", "notes.txt"});
}

TEST_CASE("wal: durability none does not sync appends; interval syncs in the background") {
  QuietLogs();
  SUBCASE("none") {
    auto fs = NewMemFs();
    Replayed replayed;
    WalOptions o = SmallOptions();
    o.durability = Durability::kNone;
    auto wal = MustOpen(*fs, o, replayed);
    for (Lsn lsn = 1; lsn <= 5; ++lsn) REQUIRE(wal->Append(Payload(5, lsn)).ok());
    CHECK(wal->stats().syncs == 0);
    auto crashed = fs->Clone();
    crashed->SimulateCrash();
    REQUIRE(wal->Sync().ok());
    CHECK(wal->stats().syncs == 1);
    auto synced = fs->Clone();
    synced->SimulateCrash();
    wal.reset();
    auto reopened = MustOpen(*crashed, o, replayed);
    CHECK(replayed.records.empty());  // never synced: lost in the crash
    reopened = MustOpen(*synced, o, replayed);
    CHECK(replayed.records.size() == 5);
  }
  SUBCASE("interval") {
    auto fs = NewMemFs();
    Replayed replayed;
    WalOptions o = SmallOptions();
    o.durability = Durability::kInterval;
    o.sync_interval_ms = 5;
    auto wal = MustOpen(*fs, o, replayed);
    for (Lsn lsn = 1; lsn <= 5; ++lsn) REQUIRE(wal->Append(Payload(6, lsn)).ok());
    // Wait for the background flush (a condition, bounded so a broken
    // flusher fails the test instead of hanging it).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (wal->stats().syncs == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(wal->stats().syncs >= 1);
    auto crashed = fs->Clone();
    crashed->SimulateCrash();
    wal.reset();
    auto reopened = MustOpen(*crashed, o, replayed);
    CHECK(replayed.records.size() == 5);
  }
}

TEST_CASE("wal: durability names parse") {
  CHECK(*ParseDurability("sync") == Durability::kSync);
  CHECK(*ParseDurability("interval") == Durability::kInterval);
  CHECK(*ParseDurability("none") == Durability::kNone);
  CHECK(ParseDurability("fast").status().code() == StatusCode::kInvalidArgument);
  CHECK(std::string(DurabilityName(Durability::kInterval)) == "interval");
}

TEST_CASE("wal: fallocate and no preallocation give the same log") {
  QuietLogs();
  for (Preallocation p : {Preallocation::kFallocate, Preallocation::kNone}) {
    auto fs = NewMemFs();
    Replayed replayed;
    WalOptions o = SmallOptions();
    o.preallocation = p;
    {
      auto wal = MustOpen(*fs, o, replayed);
      for (Lsn lsn = 1; lsn <= 40; ++lsn) REQUIRE(wal->Append(Payload(7, lsn)).ok());
    }
    fs->SimulateCrash();
    auto wal = MustOpen(*fs, o, replayed);
    REQUIRE(replayed.records.size() == 40);
    for (Lsn lsn = 1; lsn <= 40; ++lsn) CHECK(replayed.records[lsn - 1].second == Payload(7, lsn));
  }
}
