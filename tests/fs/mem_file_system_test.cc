#include "fs/mem_file_system.h"

#include <doctest/doctest.h>

using namespace gv;
using namespace gv::fs;

namespace {

std::string Read(FileSystem& fs, const std::string& path) {
  auto r = ReadFileToString(fs, path, 1 << 20);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

std::unique_ptr<File> Create(FileSystem& fs, const std::string& path) {
  auto f = fs.Open(path, OpenMode::kCreateNew);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return std::move(*f);
}

bool Exists(FileSystem& fs, const std::string& path) {
  auto r = fs.Exists(path);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("mem fs: unsynced data and unsynced directory entries are lost in a crash") {
  MemFileSystem fs;
  REQUIRE(fs.CreateDir("d").ok());
  REQUIRE(fs.SyncDir(".").ok());
  auto f = Create(fs, "d/a");
  REQUIRE(f->WriteAt(0, "hello").ok());
  REQUIRE(f->Sync().ok());
  fs.SimulateCrash();
  // The file's data was synced but its directory entry was not.
  CHECK_FALSE(Exists(fs, "d/a"));

  f = Create(fs, "d/a");
  REQUIRE(f->WriteAt(0, "hello").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(fs.SyncDir("d").ok());
  REQUIRE(f->WriteAt(5, " world").ok());
  CHECK(Read(fs, "d/a") == "hello world");
  fs.SimulateCrash();
  CHECK(Read(fs, "d/a") == "hello");
  // Handles from before the crash are dead.
  CHECK_FALSE(f->WriteAt(0, "x").ok());
}

TEST_CASE("mem fs: starting writeback makes nothing durable and is no crash point") {
  MemFileSystem fs;
  auto f = Create(fs, "a");
  REQUIRE(f->Sync().ok());
  REQUIRE(fs.SyncDir(".").ok());
  REQUIRE(f->WriteAt(0, "hello").ok());
  CHECK(f->StartWriteback(0, 5).ok());
  fs.SimulateCrash();
  CHECK(Read(fs, "a").empty());  // only Sync makes data durable
  CHECK_FALSE(f->StartWriteback(0, 5).ok());  // a handle from before the crash is dead
}

TEST_CASE("mem fs: a directory created without syncing its parent disappears") {
  MemFileSystem fs;
  REQUIRE(fs.CreateDir("d").ok());
  fs.SimulateCrash();
  CHECK_FALSE(Exists(fs, "d"));
  REQUIRE(fs.CreateDir("d").ok());
  REQUIRE(fs.SyncDir(".").ok());
  fs.SimulateCrash();
  CHECK(Exists(fs, "d"));
}

TEST_CASE("mem fs: rename and remove are durable only after SyncDir") {
  MemFileSystem fs;
  auto f = Create(fs, "a.tmp");
  REQUIRE(f->WriteAt(0, "v1").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(fs.SyncDir(".").ok());
  REQUIRE(fs.Rename("a.tmp", "a").ok());
  CHECK(Exists(fs, "a"));
  CHECK_FALSE(Exists(fs, "a.tmp"));
  fs.SimulateCrash();
  CHECK(Exists(fs, "a.tmp"));
  CHECK_FALSE(Exists(fs, "a"));

  REQUIRE(fs.Rename("a.tmp", "a").ok());
  REQUIRE(fs.SyncDir(".").ok());
  REQUIRE(fs.Remove("a").ok());
  fs.SimulateCrash();
  CHECK(Read(fs, "a") == "v1");
  REQUIRE(fs.Remove("a").ok());
  REQUIRE(fs.SyncDir(".").ok());
  fs.SimulateCrash();
  CHECK_FALSE(Exists(fs, "a"));
  auto names = fs.ListDir(".");
  REQUIRE(names.ok());
  CHECK(names->empty());
}

TEST_CASE("mem fs: positional I/O, allocate, truncate, size, list") {
  MemFileSystem fs;
  auto f = Create(fs, "f");
  REQUIRE(f->Allocate(0, 16).ok());
  auto size = f->Size();
  REQUIRE(size.ok());
  CHECK(*size == 16);
  CHECK(Read(fs, "f") == std::string(16, '\0'));
  REQUIRE(f->WriteAt(20, "xy").ok());
  CHECK(*f->Size() == 22);
  char buf[8];
  auto n = f->ReadAt(19, 8, buf);
  REQUIRE(n.ok());
  CHECK(*n == 3);
  CHECK(std::string(buf, 3) == std::string("\0xy", 3));
  REQUIRE(f->Truncate(4).ok());
  CHECK(*f->Size() == 4);
  CHECK(fs.Open("f", OpenMode::kCreateNew).status().IsIOError());
  CHECK(fs.Open("missing", OpenMode::kReadOnly).status().IsNotFound());
  auto ro = fs.Open("f", OpenMode::kReadOnly);
  REQUIRE(ro.ok());
  CHECK_FALSE((*ro)->WriteAt(0, "z").ok());
  REQUIRE(fs.CreateDir("sub").ok());
  auto names = fs.ListDir(".");
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"f", "sub"});
}

TEST_CASE("mem fs: torn crash modes keep only part of the unsynced writes, deterministically per seed") {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    CAPTURE(seed);
    for (CrashMode mode : {CrashMode::kKeepUnsyncedPrefix, CrashMode::kKeepUnsyncedSectors}) {
      MemFileSystem fs;
      auto f = Create(fs, "f");
      REQUIRE(f->WriteAt(0, std::string(1024, 'a')).ok());
      REQUIRE(f->Sync().ok());
      REQUIRE(fs.SyncDir(".").ok());
      REQUIRE(f->WriteAt(1024, std::string(1500, 'b')).ok());
      REQUIRE(f->WriteAt(0, std::string(600, 'c')).ok());
      auto twin = fs.Clone();
      fs.SimulateCrash(mode, seed);
      twin->SimulateCrash(mode, seed);
      const std::string after = Read(fs, "f");
      CHECK(after == Read(*twin, "f"));
      // Synced data is never lost; every byte is either its synced value or
      // the value of a write that was issued.
      REQUIRE(after.size() >= 1024);
      REQUIRE(after.size() <= 2524);
      for (std::size_t i = 0; i < after.size(); ++i) {
        const char c = after[i];
        if (i < 600) {
          CHECK((c == 'a' || c == 'c'));
        } else if (i < 1024) {
          CHECK(c == 'a');
        } else {
          CHECK((c == 'b' || c == '\0'));
        }
      }
      if (mode == CrashMode::kKeepUnsyncedPrefix) {
        // A prefix: the later write to [0,600) survives (even torn) only if
        // the earlier one survived whole.
        if (after[0] == 'c') CHECK((after.size() == 2524 && after.substr(1024) == std::string(1500, 'b')));
      }
    }
  }
}

TEST_CASE("mem fs: crash at operation K fails K and everything after until SimulateCrash") {
  MemFileSystem fs;
  auto f = Create(fs, "f");  // operation 1
  REQUIRE(fs.operation_count() == 1);
  fs.CrashAtOperation(3);
  REQUIRE(f->WriteAt(0, "a").ok());  // 2
  Status s = f->Sync();              // 3: crash
  CHECK(s.IsIOError());
  CHECK(s.message().find("crash injected at operation 3") != std::string::npos);
  CHECK(fs.crashed());
  CHECK_FALSE(f->WriteAt(1, "b").ok());
  CHECK_FALSE(fs.ListDir(".").ok());
  CHECK(fs.DescribeOperation(3) == "sync f");
  fs.SimulateCrash();
  CHECK_FALSE(fs.crashed());
  // Neither the unsynced write nor the unsynced creation survived.
  CHECK_FALSE(Exists(fs, "f"));
  CHECK(fs.Open("g", OpenMode::kCreateNew).ok());
}

TEST_CASE("mem fs: FailNth fails exactly the n-th operation of a kind, once, without effect") {
  MemFileSystem fs;
  auto f = Create(fs, "f");
  fs.FailNth(MemOp::kSync, 2);
  REQUIRE(f->WriteAt(0, "a").ok());
  CHECK(f->Sync().ok());
  REQUIRE(f->WriteAt(1, "b").ok());
  Status s = f->Sync();
  CHECK(s.IsIOError());
  CHECK(s.message().find("injected sync failure") != std::string::npos);
  CHECK(f->Sync().ok());
  fs.FailNth(MemOp::kWrite, 1);
  CHECK_FALSE(f->WriteAt(2, "c").ok());
  CHECK(Read(fs, "f") == "ab");
  fs.FailNth(MemOp::kSyncDir, 1);
  CHECK_FALSE(fs.SyncDir(".").ok());
  CHECK(fs.SyncDir(".").ok());
  CHECK(fs.count(MemOp::kSync) == 2);  // the failed one is not counted as done
}

TEST_CASE("path helpers") {
  CHECK(JoinPath("a/b", "c") == "a/b/c");
  CHECK(JoinPath("a/b/", "c") == "a/b/c");
  CHECK(ParentDir("a/b/c") == "a/b");
  CHECK(ParentDir("c") == ".");
  CHECK(ParentDir("/c") == "/");
  CHECK(BaseName("a/b/c") == "c");
  CHECK(BaseName("c") == "c");
}

TEST_CASE("WriteFileDurably: replaces the file whole, over a longer leftover temp; a crash at any step keeps old or new") {
  MemFileSystem fs;
  REQUIRE(fs.CreateDir("d").ok());
  REQUIRE(WriteFileDurably(fs, "d/f", "old contents").ok());
  {
    auto leftover = Create(fs, "d/f.tmp");  // an interrupted write, longer than the next contents
    REQUIRE(leftover->WriteAt(0, std::string(100, 'x')).ok());
  }
  REQUIRE(WriteFileDurably(fs, "d/f", "new").ok());
  CHECK(Read(fs, "d/f") == "new");
  CHECK_FALSE(Exists(fs, "d/f.tmp"));

  bool completed = false;
  for (std::uint64_t k = 1; k < 20 && !completed; ++k) {
    MemFileSystem crashing;
    REQUIRE(crashing.CreateDir("d").ok());
    REQUIRE(crashing.SyncDir(".").ok());
    REQUIRE(WriteFileDurably(crashing, "d/f", "old").ok());
    crashing.CrashAtOperation(crashing.operation_count() + k);
    const Status written = WriteFileDurably(crashing, "d/f", "newer");
    completed = written.ok();
    crashing.SimulateCrash(CrashMode::kKeepUnsyncedPrefix, k);
    const std::string now = Read(crashing, "d/f");
    if (written.ok()) {
      CHECK_MESSAGE(now == "newer", "crash at step " << k);
    } else {
      CHECK_MESSAGE((now == "old" || now == "newer"), "crash at step " << k << ": " << now);
    }
  }
  CHECK(completed);
}
