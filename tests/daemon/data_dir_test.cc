#include "daemon/data_dir.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "fs/mem_file_system.h"
#include "fs/posix_file_system.h"

using namespace gv;
using namespace gv::daemon;

TEST_CASE("node.id is created once, durably, and read back") {
  fs::MemFileSystem mem;
  REQUIRE(CreateDirs(mem, "data/n1").ok());
  auto first = LoadOrCreateNodeId(mem, "data/n1", NodeId(0xabcdef0123456789ULL));
  REQUIRE(first.ok());
  CHECK(first->value == 0xabcdef0123456789ULL);
  mem.SimulateCrash();  // everything that was acknowledged must be on "disk"
  auto again = LoadOrCreateNodeId(mem, "data/n1", NodeId(42));
  REQUIRE(again.ok());
  CHECK(again->value == 0xabcdef0123456789ULL);
}

TEST_CASE("a crash at any step of creating node.id leaves no id or the whole id") {
  for (std::uint64_t k = 1; k < 20; ++k) {
    fs::MemFileSystem mem;
    REQUIRE(CreateDirs(mem, "d").ok());
    mem.CrashAtOperation(mem.operation_count() + k);
    auto created = LoadOrCreateNodeId(mem, "d", NodeId(7));
    mem.SimulateCrash();
    auto reread = LoadOrCreateNodeId(mem, "d", NodeId(9));
    REQUIRE_MESSAGE(reread.ok(), "crash at step " << k << ": " << reread.status().ToString());
    if (created.ok()) CHECK_MESSAGE(reread->value == 7, "crash at step " << k);  // acknowledged: must survive
    CHECK((reread->value == 7 || reread->value == 9));
  }
}

TEST_CASE("a damaged node.id is an error that says what to do") {
  fs::MemFileSystem mem;
  REQUIRE(CreateDirs(mem, "d").ok());
  auto file = mem.Open("d/node.id", fs::OpenMode::kCreateNew);
  REQUIRE(file.ok());
  REQUIRE((*file)->WriteAt(0, "not-an-id\n").ok());
  auto id = LoadOrCreateNodeId(mem, "d", NodeId(1));
  CHECK(id.status().IsCorruption());
  CHECK(id.status().message().find("d/node.id is damaged") != std::string::npos);
}

TEST_CASE("two agents cannot hold the same data directory") {
  const std::string dir = "/tmp/gv_data_dir_test_" + std::to_string(::getpid()) + "/nested/data";
  auto lock = DataDirLock::Acquire(dir);
  CHECK_FALSE(lock.ok());  // the directory does not exist yet: a clear error
  fs::PosixFileSystem posix;
  REQUIRE(CreateDirs(posix, dir).ok());
  lock = DataDirLock::Acquire(dir);
  REQUIRE(lock.ok());
  // flock is per open file description: a second process must be refused.
  pid_t child = ::fork();
  if (child == 0) {
    auto second = DataDirLock::Acquire(dir);
    bool refused = !second.ok() && second.status().message().find("in use by another grapevine agent (pid " +
                                                                   std::to_string(::getppid())) != std::string::npos;
    std::_Exit(refused ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  lock = Status::Aborted("released");  // drops the lock
  auto after = DataDirLock::Acquire(dir);
  CHECK(after.ok());
  std::filesystem::remove_all("/tmp/gv_data_dir_test_" + std::to_string(::getpid()));
}
