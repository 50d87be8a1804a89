// Snapshot files: a crash (MemFileSystem) at every operation of
// WriteSnapshotFile, in every crash mode, leaves the previous snapshot
// loadable and LoadNewestValidSnapshot returns the old or the new state, never
// a broken one; a damaged newest file is skipped loudly for the previous one;
// the streaming sink verifies before writing; prune, list, inspect; and a
// round trip on the real file system.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fs/mem_file_system.h"
#include "fs/posix_file_system.h"
#include "snapshot/files.h"
#include "tests/snapshot/snapshot_test_util.h"

using namespace gv;
using namespace gv::snapshot;
using namespace gv::snapshot::testing;

namespace {

const std::string kDir = "data/snapshots";

void MakeDataDir(fs::FileSystem& fs) {
  REQUIRE(fs.CreateDir("data").ok());
  REQUIRE(fs.SyncDir(".").ok());
}

statestore::DigestBytes DigestOfLoaded(statestore::LoadedSnapshot loaded) {
  statestore::Store store(NodeId(1234), statestore::StoreLimits{});
  REQUIRE(store.Install(std::move(loaded), true).ok());
  return store.Digest();
}

void Corrupt(fs::FileSystem& fs, const std::string& path, std::uint64_t offset) {
  auto file = fs.Open(path, fs::OpenMode::kReadWrite);
  REQUIRE(file.ok());
  char byte = 0;
  REQUIRE((*file)->ReadAt(offset, 1, &byte).ok());
  byte = static_cast<char>(byte ^ 0x10);
  REQUIRE((*file)->WriteAt(offset, std::string_view(&byte, 1)).ok());
  REQUIRE((*file)->Sync().ok());
}

std::uint64_t FileSize(fs::FileSystem& fs, const std::string& path) {
  auto file = fs.Open(path, fs::OpenMode::kReadOnly);
  REQUIRE(file.ok());
  auto size = (*file)->Size();
  REQUIRE(size.ok());
  return *size;
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/gv-snapshot-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("snapshot files: a crash at every operation leaves the old or the new snapshot, never a broken one") {
  statestore::Store store = MakeStore(11, 400);
  for (bool had_previous : {true, false}) {
    CAPTURE(had_previous);
    fs::MemFileSystem base;
    MakeDataDir(base);
    std::optional<statestore::DigestBytes> old_digest;
    if (had_previous) {
      REQUIRE(WriteSnapshotFile(base, kDir, store.Capture(), 1, 1).ok());
      old_digest = store.Digest();
    }
    statestore::Store newer = MakeStore(12, 500);
    const statestore::DigestBytes new_digest = newer.Digest();

    // How many mutating operations a complete write takes.
    auto probe = base.Clone();
    REQUIRE(WriteSnapshotFile(*probe, kDir, newer.Capture(), 2, 2).ok());
    const std::uint64_t operations = probe->operation_count();
    REQUIRE(operations >= 4);  // create, write, sync, rename, dir sync (+ mkdir without a previous one)

    int outcomes_old = 0, outcomes_new = 0, outcomes_none = 0;
    for (std::uint64_t k = 1; k <= operations + 1; ++k) {
      for (auto mode : {fs::CrashMode::kDropUnsynced, fs::CrashMode::kKeepUnsyncedPrefix,
                        fs::CrashMode::kKeepUnsyncedSectors}) {
        auto crashed = base.Clone();
        crashed->CrashAtOperation(k);
        CAPTURE(k);
        CAPTURE(crashed->DescribeOperation(k));
        auto written = WriteSnapshotFile(*crashed, kDir, newer.Capture(), 2, 2);
        REQUIRE(written.ok() == (k > operations));
        crashed->SimulateCrash(mode, k);

        std::vector<std::string> skipped;
        auto loaded = LoadNewestValidSnapshot(*crashed, kDir, &skipped);
        REQUIRE(skipped.empty());  // a final name only ever holds a complete, durable file
        if (!loaded.ok()) {
          REQUIRE(loaded.status().IsNotFound());
          REQUIRE_FALSE(had_previous);
          REQUIRE_FALSE(written.ok());
          ++outcomes_none;
        } else {
          const auto digest = DigestOfLoaded(std::move(*loaded));
          if (written.ok()) REQUIRE(digest == new_digest);  // acknowledged: durable
          REQUIRE((digest == new_digest || (old_digest && digest == *old_digest)));
          (digest == new_digest ? outcomes_new : outcomes_old)++;
        }
        // Recovery: leftover temp files go, and the next write works.
        auto cleaned = CleanTempFiles(*crashed, kDir);
        REQUIRE(cleaned.ok());
        REQUIRE(WriteSnapshotFile(*crashed, kDir, newer.Capture(), 3, 3).ok());
        auto names = crashed->ListDir(kDir);
        REQUIRE(names.ok());
        for (const std::string& name : *names) REQUIRE(name.find(".tmp") == std::string::npos);
        auto again = LoadNewestValidSnapshot(*crashed, kDir, nullptr);
        REQUIRE(again.ok());
        REQUIRE(again->created_wall_ms == 3);
      }
    }
    REQUIRE(outcomes_new > 0);
    REQUIRE(outcomes_old + outcomes_none > 0);
  }
}

TEST_CASE("snapshot files: a damaged newest snapshot is skipped, reported, and the previous one loads") {
  fs::MemFileSystem fs;
  MakeDataDir(fs);
  statestore::Store store = MakeStore(21, 300);
  auto first = WriteSnapshotFile(fs, kDir, store.Capture(), 10, 100);
  REQUIRE(first.ok());
  const auto first_digest = store.Digest();
  statestore::Store later = MakeStore(22, 300);
  auto second = WriteSnapshotFile(fs, kDir, later.Capture(), 20, 200);
  REQUIRE(second.ok());
  REQUIRE(second->path > first->path);  // names sort by creation
  REQUIRE(second->bytes == FileSize(fs, second->path));

  SUBCASE("bit flip in the middle") { Corrupt(fs, second->path, second->bytes / 2); }
  SUBCASE("truncated") {
    auto file = fs.Open(second->path, fs::OpenMode::kReadWrite);
    REQUIRE(file.ok());
    REQUIRE((*file)->Truncate(second->bytes - 10).ok());
  }
  SUBCASE("emptied") {
    auto file = fs.Open(second->path, fs::OpenMode::kReadWrite);
    REQUIRE(file.ok());
    REQUIRE((*file)->Truncate(0).ok());
  }
  auto direct = ReadSnapshotFile(fs, second->path);
  REQUIRE(direct.status().IsCorruption());
  CHECK(direct.status().message().find(second->path) != std::string::npos);
  CHECK(direct.status().message().find("snapshot chunk") != std::string::npos);

  std::vector<std::string> skipped;
  auto loaded = LoadNewestValidSnapshot(fs, kDir, &skipped);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->wal_lsn == 100);
  REQUIRE(DigestOfLoaded(std::move(*loaded)) == first_digest);
  REQUIRE(skipped.size() == 1);
  CHECK_MESSAGE(skipped[0].rfind(second->path + ": corruption: snapshot chunk ", 0) == 0, skipped[0]);

  // Both damaged: NotFound, and both reported.
  Corrupt(fs, first->path, first->bytes / 3);
  skipped.clear();
  auto none = LoadNewestValidSnapshot(fs, kDir, &skipped);
  REQUIRE(none.status().IsNotFound());
  REQUIRE(skipped.size() == 2);
}

TEST_CASE("snapshot files: list, names, prune, and an empty or missing directory") {
  fs::MemFileSystem fs;
  MakeDataDir(fs);
  REQUIRE(ListSnapshotFiles(fs, kDir)->empty());
  REQUIRE(LoadNewestValidSnapshot(fs, kDir, nullptr).status().IsNotFound());
  statestore::Store store = MakeStore(31, 50);
  std::vector<std::string> written;
  for (int i = 0; i < 4; ++i) {
    auto info = WriteSnapshotFile(fs, kDir, store.Capture(), static_cast<std::uint64_t>(i), 0);
    REQUIRE(info.ok());
    written.push_back(info->path);
  }
  REQUIRE(written[0] == kDir + "/00000000000000000001.snap");
  REQUIRE(written[3] == kDir + "/00000000000000000004.snap");
  // A temp file and a foreign file are not snapshots.
  REQUIRE(fs.Open(kDir + "/00000000000000000009.snap.tmp", fs::OpenMode::kCreateNew).ok());
  REQUIRE(fs.Open(kDir + "/notes.txt", fs::OpenMode::kCreateNew).ok());
  auto listed = ListSnapshotFiles(fs, kDir);
  REQUIRE(listed.ok());
  REQUIRE(*listed == std::vector<std::string>{written[3], written[2], written[1], written[0]});
  // The next name is past the temp file too (never reuses a name a crash left behind).
  auto fifth = WriteSnapshotFile(fs, kDir, store.Capture(), 5, 0);
  REQUIRE(fifth.ok());
  REQUIRE(fifth->path == kDir + "/00000000000000000010.snap");
  REQUIRE(*CleanTempFiles(fs, kDir) == 1);

  REQUIRE(PruneSnapshots(fs, kDir, 2).ok());
  REQUIRE(*ListSnapshotFiles(fs, kDir) == std::vector<std::string>{fifth->path, written[3]});
  REQUIRE(PruneSnapshots(fs, kDir, 0).ok());  // keeps at least one
  REQUIRE(*ListSnapshotFiles(fs, kDir) == std::vector<std::string>{fifth->path});
  REQUIRE(*fs.Exists(kDir + "/notes.txt"));
}

TEST_CASE("snapshot files: the sink verifies a stream before writing it") {
  fs::MemFileSystem fs;
  MakeDataDir(fs);
  statestore::Store store = MakeStore(41, 300);
  const std::string stream = EncodeSnapshot(store.Capture(), 7, 8, 1000);

  SUBCASE("a good stream in pieces commits") {
    auto sink = SnapshotFileSink::Create(fs, kDir);
    REQUIRE(sink.ok());
    for (std::size_t offset = 0; offset < stream.size(); offset += 777) {
      REQUIRE(sink->Append(std::string_view(stream).substr(offset, 777)).ok());
    }
    REQUIRE(sink->decoder().complete());
    auto info = sink->Commit();
    REQUIRE(info.ok());
    REQUIRE(info->bytes == stream.size());
    REQUIRE(info->entries == store.Capture().entry_count());
    auto loaded = ReadSnapshotFile(fs, info->path);
    REQUIRE(loaded.ok());
    REQUIRE(DigestOfLoaded(std::move(*loaded)) == store.Digest());
  }
  SUBCASE("a damaged stream is refused and leaves nothing behind") {
    std::string damaged = stream;
    damaged[damaged.size() / 2] = static_cast<char>(damaged[damaged.size() / 2] ^ 4);
    auto sink = SnapshotFileSink::Create(fs, kDir);
    REQUIRE(sink.ok());
    REQUIRE(sink->Append(damaged).IsCorruption());
    REQUIRE_FALSE(sink->Commit().ok());
    sink->Abort();
    REQUIRE(fs.ListDir(kDir)->empty());
  }
  SUBCASE("an incomplete stream does not commit; dropping the sink removes the temp file") {
    {
      auto sink = SnapshotFileSink::Create(fs, kDir);
      REQUIRE(sink.ok());
      REQUIRE(sink->Append(std::string_view(stream).substr(0, stream.size() - 5)).ok());
      REQUIRE_FALSE(sink->decoder().complete());
      auto committed = sink->Commit();
      REQUIRE(committed.status().IsCorruption());
    }
    REQUIRE(fs.ListDir(kDir)->empty());
  }
}

TEST_CASE("snapshot files: inspect reads past a bad chunk and counts") {
  fs::MemFileSystem fs;
  MakeDataDir(fs);
  statestore::Store store = MakeStore(51, 300);
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2, 1000);
  const std::vector<std::size_t> offsets = ChunkOffsets(stream);
  const std::uint64_t chunks = offsets.size() - 1;
  auto write = [&](const std::string& bytes) {
    auto sink = SnapshotFileSink::Create(fs, kDir);
    REQUIRE(sink.ok());
    REQUIRE(sink->Append(bytes).ok());
    auto info = sink->Commit();
    REQUIRE(info.ok());
    return info->path;
  };
  const std::string path = write(stream);
  auto good = InspectSnapshotFile(fs, path);
  REQUIRE(good.ok());
  REQUIRE(good->header_ok);
  REQUIRE(good->complete);
  REQUIRE(good->first_error.empty());
  REQUIRE(good->chunks == chunks);
  REQUIRE(good->chunks_bad == 0);
  REQUIRE(good->entries == store.Capture().entry_count());
  REQUIRE(good->meta.index == store.Index());

  // Damage chunk 2's body: it is counted bad, the others still count.
  Corrupt(fs, path, offsets[2] + kFrameHeaderBytes + 5);
  auto bad = InspectSnapshotFile(fs, path);
  REQUIRE(bad.ok());
  REQUIRE(bad->header_ok);
  REQUIRE_FALSE(bad->complete);
  REQUIRE(bad->chunks == chunks);
  REQUIRE(bad->chunks_bad == 1);
  REQUIRE(bad->entries < store.Capture().entry_count());
  REQUIRE(bad->entries > 0);
  CHECK(bad->first_error.find("snapshot chunk 2: checksum mismatch") != std::string::npos);
}

TEST_CASE("snapshot files: round trip on the real file system") {
  TempDir tmp;
  fs::PosixFileSystem fs;
  const std::string dir = tmp.path + "/snapshots";
  statestore::Store store = MakeStore(61, 500);
  auto info = WriteSnapshotFile(fs, dir, store.Capture(), 1, 2);
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  REQUIRE(std::filesystem::file_size(info->path) == info->bytes);
  auto loaded = LoadNewestValidSnapshot(fs, dir, nullptr);
  REQUIRE(loaded.ok());
  REQUIRE(DigestOfLoaded(std::move(*loaded)) == store.Digest());
}

TEST_CASE("snapshot files: writers in one directory at the same time get their own names") {
  fs::MemFileSystem fs;
  MakeDataDir(fs);
  statestore::Store store = MakeStore(71, 100);
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2);
  auto first = SnapshotFileSink::Create(fs, kDir);
  auto second = SnapshotFileSink::Create(fs, kDir);  // sees the first's temp file
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  auto written = WriteSnapshotFile(fs, kDir, store.Capture(), 3, 4);  // while both are open
  REQUIRE(written.ok());
  REQUIRE(first->Append(stream).ok());
  REQUIRE(second->Append(stream).ok());
  auto a = first->Commit();
  auto b = second->Commit();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(a->path == kDir + "/00000000000000000001.snap");
  REQUIRE(b->path == kDir + "/00000000000000000002.snap");
  REQUIRE(written->path == kDir + "/00000000000000000003.snap");
  REQUIRE(ListSnapshotFiles(fs, kDir)->size() == 3);
  std::vector<std::string> skipped;
  REQUIRE(LoadNewestValidSnapshot(fs, kDir, &skipped).ok());
  REQUIRE(skipped.empty());
}

namespace {

// A store whose snapshot spans many of WriteSnapshotFile's write batches
// (about 1 MiB each): 240 keys with 60 KiB values, about 14 MiB.
statestore::Store MakeLargeStore() {
  statestore::Store store(NodeId(5), statestore::StoreLimits{});
  for (int i = 0; i < 240; ++i) {
    const std::string value(60 * 1024, static_cast<char>('a' + i % 26));
    auto delta = store.MakeLocalDelta(
        {statestore::LocalOp{statestore::OpKind::kPut, "big/" + std::to_string(1000 + i), value, 0, std::nullopt}},
        1'700'000'000'000 + static_cast<std::uint64_t>(i));
    REQUIRE(delta.ok());
    REQUIRE(store.Apply(*delta, 1'700'000'000'000 + static_cast<std::uint64_t>(i)).status ==
            statestore::ApplyStatus::kApplied);
  }
  return store;
}

}  // namespace

TEST_CASE("snapshot files: a file written across many batches holds exactly the encoded stream, in order") {
  statestore::Store store = MakeLargeStore();
  fs::MemFileSystem fs;
  MakeDataDir(fs);
  auto written = WriteSnapshotFile(fs, kDir, store.Capture(), 4, 5);
  REQUIRE(written.ok());
  REQUIRE(fs.count(fs::MemOp::kWrite) >= 3);  // several 4 MiB blocks, so their order is checked below
  const std::string expected = EncodeSnapshot(store.Capture(), 4, 5);
  auto bytes = fs::ReadFileToString(fs, written->path, kMaxSnapshotFileBytes);
  REQUIRE(bytes.ok());
  REQUIRE(bytes->size() == expected.size());
  REQUIRE(*bytes == expected);
  REQUIRE(written->bytes == expected.size());
  REQUIRE(written->entries == 240);
  auto loaded = ReadSnapshotFile(fs, written->path);
  REQUIRE(loaded.ok());
  REQUIRE(DigestOfLoaded(std::move(*loaded)) == store.Digest());
}

TEST_CASE("snapshot files: a write failing mid-file removes the temp file and keeps the previous snapshot") {
  statestore::Store store = MakeLargeStore();
  for (std::uint64_t failing_write : {1, 2, 4}) {
    CAPTURE(failing_write);
    fs::MemFileSystem fs;
    MakeDataDir(fs);
    REQUIRE(WriteSnapshotFile(fs, kDir, MakeStore(3, 50).Capture(), 1, 1).ok());
    fs.FailNth(fs::MemOp::kWrite, failing_write);
    auto written = WriteSnapshotFile(fs, kDir, store.Capture(), 2, 2);
    REQUIRE_FALSE(written.ok());
    REQUIRE(written.status().code() == StatusCode::kIOError);
    // Nothing was renamed into place: only the previous snapshot is listed.
    REQUIRE(fs.count(fs::MemOp::kRename) == 1);
    auto names = fs.ListDir(kDir);
    REQUIRE(names.ok());
    REQUIRE(names->size() == 1);
    REQUIRE((*names)[0].find(".tmp") == std::string::npos);
    auto loaded = LoadNewestValidSnapshot(fs, kDir, nullptr);
    REQUIRE(loaded.ok());
    REQUIRE(loaded->created_wall_ms == 1);
    fs.ClearFaults();
    REQUIRE(WriteSnapshotFile(fs, kDir, store.Capture(), 3, 3).ok());
  }
}
