// Group commit: concurrent appenders share fdatasyncs, and every record is
// present with the LSN its Append returned.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "fs/posix_file_system.h"
#include "tests/wal/wal_test_util.h"

using namespace gv;
using namespace gv::wal;
using namespace gv::wal::testing;

namespace {

struct Appended {
  std::vector<std::pair<Lsn, std::string>> by_thread;
};

// Runs `threads` appenders of `per_thread` records each; checks that each
// thread's LSNs increase and returns them.
std::vector<Appended> RunAppenders(Wal& wal, int threads, int per_thread) {
  std::vector<Appended> out(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i) + "-" +
                              std::string(static_cast<std::size_t>((t * 31 + i * 7) % 90), 'p');
        auto lsn = wal.Append(payload);
        if (!lsn.ok()) {
          ++failures;
          return;
        }
        out[static_cast<std::size_t>(t)].by_thread.emplace_back(*lsn, std::move(payload));
      }
    });
  }
  for (auto& w : workers) w.join();
  REQUIRE(failures == 0);
  return out;
}

void CheckAllPresent(const std::vector<Appended>& appended, const Replayed& replayed) {
  std::map<Lsn, std::string> by_lsn;
  for (const auto& [lsn, payload] : replayed.records) by_lsn[lsn] = payload;
  std::size_t total = 0;
  for (const auto& a : appended) {
    Lsn prev = 0;
    for (const auto& [lsn, payload] : a.by_thread) {
      CHECK(lsn > prev);  // a thread's records are ordered as it appended them
      prev = lsn;
      auto it = by_lsn.find(lsn);
      REQUIRE(it != by_lsn.end());
      CHECK(it->second == payload);
    }
    total += a.by_thread.size();
  }
  CHECK(by_lsn.size() == total);  // and nothing else is in the log
  CHECK(replayed.records.size() == total);
}

}  // namespace

TEST_CASE("group commit: writers queued behind a sync share the next one (deterministic)") {
  QuietLogs();
  constexpr int kThreads = 8;
  auto fs = NewMemFs();
  Replayed replayed;
  WalOptions o = SmallOptions();
  o.segment_bytes = 1 << 20;
  auto wal = OpenInto(*fs, o, replayed);
  REQUIRE(wal.ok());
  // The first data sync waits until every other writer is queued behind the
  // leader; they must then all go out in one group with one sync.
  std::atomic<bool> first{true};
  std::atomic<bool> all_queued{false};
  Wal* w = wal->get();
  fs->SetSyncHook([&] {
    if (!first.exchange(false)) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (w->queued_writers() < kThreads && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    all_queued = w->queued_writers() == kThreads;
  });
  const WalStats before = w->stats();
  const auto appended = RunAppenders(*w, kThreads, 1);
  fs->SetSyncHook(nullptr);
  REQUIRE(all_queued);
  const WalStats after = w->stats();
  CHECK(after.records - before.records == kThreads);
  CHECK(after.syncs - before.syncs == 2);  // the first writer's, then one for the other seven
  CHECK(after.groups - before.groups == 2);
  REQUIRE((*wal)->Close().ok());
  wal->reset();
  fs->SimulateCrash();
  auto reopened = OpenInto(*fs, o, replayed);
  REQUIRE(reopened.ok());
  CheckAllPresent(appended, replayed);
}

TEST_CASE("group commit: many threads on the real disk, with rotation and background preparation") {
  QuietLogs();
  std::string tmpl = (std::filesystem::temp_directory_path() / "gv-wal-gc-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const std::string root = tmpl;
  fs::PosixFileSystem fs;
  WalOptions o;
  o.dir = fs::JoinPath(root, "wal");
  o.segment_bytes = 64 << 10;
  o.max_record_bytes = 1024;
  o.durability = Durability::kSync;
  o.prepare_segments_in_background = true;
  std::vector<Appended> appended;
  WalStats stats;
  {
    Replayed replayed;
    auto wal = OpenInto(fs, o, replayed);
    REQUIRE_MESSAGE(wal.ok(), wal.status().ToString());
    appended = RunAppenders(**wal, 16, 150);
    stats = (*wal)->stats();
    REQUIRE((*wal)->Close().ok());
  }
  CHECK(stats.records == 16 * 150);
  CHECK(stats.segments_created >= 3);
  MESSAGE("16 threads x 150 durable appends: " << stats.syncs << " fdatasyncs in " << stats.groups << " groups");
  Replayed replayed;
  auto wal = OpenInto(fs, o, replayed);
  REQUIRE(wal.ok());
  CHECK((*wal)->recovery().temp_files_removed == 0);  // Close removed the unused prepared segment
  CheckAllPresent(appended, replayed);
  wal->reset();
  std::filesystem::remove_all(root);
}

TEST_CASE("interval mode under concurrent appends keeps every record") {
  QuietLogs();
  auto fs = NewMemFs();
  Replayed replayed;
  WalOptions o = SmallOptions();
  o.durability = Durability::kInterval;
  o.sync_interval_ms = 1;
  auto wal = OpenInto(*fs, o, replayed);
  REQUIRE(wal.ok());
  const auto appended = RunAppenders(**wal, 4, 100);
  REQUIRE((*wal)->Close().ok());
  wal->reset();
  fs->SimulateCrash();
  auto reopened = OpenInto(*fs, o, replayed);
  REQUIRE(reopened.ok());
  CheckAllPresent(appended, replayed);
}
