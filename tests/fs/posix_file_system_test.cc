#include "fs/posix_file_system.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

using namespace gv;
using namespace gv::fs;

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gv-fs-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST_CASE("posix fs: files, sync, allocate, truncate, rename, remove, list") {
  TempDir tmp;
  PosixFileSystem fs;
  const std::string dir = JoinPath(tmp.path, "wal");
  REQUIRE(fs.CreateDir(dir).ok());
  REQUIRE(fs.CreateDir(dir).ok());  // idempotent
  REQUIRE(fs.SyncDir(tmp.path).ok());

  auto f = fs.Open(JoinPath(dir, "a.tmp"), OpenMode::kCreateNew);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  REQUIRE((*f)->Allocate(0, 8192).ok());
  CHECK(*(*f)->Size() == 8192);
  REQUIRE((*f)->WriteAt(100, "payload").ok());
  CHECK((*f)->StartWriteback(0, 8192).ok());
  REQUIRE((*f)->Sync().ok());
  char buf[16] = {};
  auto n = (*f)->ReadAt(98, 9, buf);
  REQUIRE(n.ok());
  CHECK(*n == 9);
  CHECK(std::string(buf, 9) == std::string("\0\0payload", 9));
  n = (*f)->ReadAt(8190, 16, buf);
  REQUIRE(n.ok());
  CHECK(*n == 2);  // short read only at end of file
  REQUIRE((*f)->Truncate(107).ok());
  CHECK(*(*f)->Size() == 107);

  CHECK(fs.Open(JoinPath(dir, "a.tmp"), OpenMode::kCreateNew).status().IsIOError());
  REQUIRE(fs.Rename(JoinPath(dir, "a.tmp"), JoinPath(dir, "a")).ok());
  REQUIRE(fs.SyncDir(dir).ok());
  auto names = fs.ListDir(dir);
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"a"});
  auto content = ReadFileToString(fs, JoinPath(dir, "a"), 1 << 20);
  REQUIRE(content.ok());
  CHECK(content->size() == 107);
  CHECK(content->substr(100) == "payload");
  CHECK(ReadFileToString(fs, JoinPath(dir, "a"), 10).status().code() == StatusCode::kTooLarge);

  REQUIRE((*f)->Close().ok());
  CHECK_FALSE((*f)->WriteAt(0, "x").ok());
  REQUIRE(fs.Remove(JoinPath(dir, "a")).ok());
  CHECK(fs.Remove(JoinPath(dir, "a")).IsNotFound());
  CHECK_FALSE(*fs.Exists(JoinPath(dir, "a")));
  CHECK(fs.Open(JoinPath(dir, "a"), OpenMode::kReadOnly).status().IsNotFound());
  CHECK(fs.ListDir(JoinPath(dir, "nope")).status().IsNotFound());
  // Errors name the path.
  Status s = fs.SyncDir(JoinPath(dir, "nope"));
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("nope") != std::string::npos);
}

TEST_CASE("posix fs: direct I/O takes aligned writes, and a write it refuses goes through the page cache") {
  TempDir tmp;
  PosixFileSystem fs;
  auto f = fs.Open(JoinPath(tmp.path, "d"), OpenMode::kCreateNew);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  const Status enabled = (*f)->EnableDirectIo();
  // tmpfs on older kernels refuses; the file is then unchanged and writes as before.
  INFO("EnableDirectIo: " << enabled.ToString());
  void* raw = std::aligned_alloc(kDirectIoAlignment, 2 * kDirectIoAlignment);
  REQUIRE(raw != nullptr);
  std::unique_ptr<char, decltype(&std::free)> block(static_cast<char*>(raw), &std::free);
  std::memset(block.get(), 'a', 2 * kDirectIoAlignment);
  REQUIRE((*f)->WriteAt(0, std::string_view(block.get(), 2 * kDirectIoAlignment)).ok());
  // Unaligned offset, size and buffer: O_DIRECT answers EINVAL, and the file
  // falls back to buffered writes instead of failing.
  REQUIRE((*f)->WriteAt(1, "hello").ok());
  REQUIRE((*f)->WriteAt(2 * kDirectIoAlignment, "tail").ok());
  REQUIRE((*f)->Sync().ok());
  REQUIRE((*f)->Close().ok());
  auto content = ReadFileToString(fs, JoinPath(tmp.path, "d"), 1 << 20);
  REQUIRE(content.ok());
  std::string expected(2 * kDirectIoAlignment, 'a');
  expected.replace(1, 5, "hello");
  expected += "tail";
  CHECK(*content == expected);
}
