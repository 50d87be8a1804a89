// FileSystem: the one way the WAL (and snapshots) reach the disk.
//
// Two implementations share this interface: PosixFileSystem (the real disk)
// and MemFileSystem (tests: exact durability model, crash simulation, fault
// injection). Code above this interface never calls open/pwrite/fsync itself,
// so every durability argument can be checked against the in-memory model.
//
// Paths are plain strings with '/' separators. Errors are values: every call
// returns a Status or Result naming the path and the failed operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gv::fs {

// How Open treats an existing or missing file.
enum class OpenMode {
  kReadOnly,      // must exist; writes fail
  kReadWrite,     // must exist
  kCreateNew,     // must not exist (O_CREAT|O_EXCL); read-write
  kCreateOrOpen,  // created if missing (O_CREAT); read-write
};

// Offsets, sizes and buffer addresses of writes to a file with direct I/O
// (File::EnableDirectIo) are multiples of this: the page size, which covers
// the logical block size of common disks.
inline constexpr std::size_t kDirectIoAlignment = 4096;

// An open file. Positional I/O only: there is no shared file offset, so
// readers and the single writer never race on a cursor.
class File {
 public:
  virtual ~File() = default;

  // Writes all of data at offset (extends the file if needed). Not durable
  // until Sync() returns ok.
  virtual Status WriteAt(std::uint64_t offset, std::string_view data) = 0;
  // Reads up to n bytes at offset into out; returns the count read, which is
  // short only at end of file.
  virtual Result<std::size_t> ReadAt(std::uint64_t offset, std::size_t n, char* out) = 0;
  // Makes the file's data (and its size) durable: fdatasync. A failed Sync
  // means the kernel may have dropped the dirty data; callers must not retry
  // and assume success (see "fsyncgate").
  virtual Status Sync() = 0;
  // Starts writing [offset, offset+length) back to disk without waiting
  // (sync_file_range SYNC_FILE_RANGE_WRITE): a later Sync then has less
  // left to wait for. Makes nothing durable and promises nothing; a writer
  // of a large file calls it as it goes so the disk works while it encodes.
  virtual Status StartWriteback(std::uint64_t offset, std::uint64_t length) = 0;
  // Later WriteAts bypass the page cache (O_DIRECT): the disk reads the
  // caller's buffer, so a large file costs no copy into the page cache and
  // no writeback work afterwards. Each later WriteAt must be aligned: its
  // offset, size and buffer address multiples of kDirectIoAlignment. Nothing
  // is durable before Sync, as with any write. Fails, changing nothing, where
  // the file system cannot (tmpfs on older kernels); the caller then keeps
  // writing through the page cache.
  virtual Status EnableDirectIo() = 0;
  // Reserves [offset, offset+length) on disk, extending the size if needed
  // (fallocate mode 0). The new range reads as zeros.
  virtual Status Allocate(std::uint64_t offset, std::uint64_t length) = 0;
  virtual Status Truncate(std::uint64_t size) = 0;
  virtual Result<std::uint64_t> Size() = 0;
  // Closes the descriptor. Idempotent; the destructor closes too.
  virtual Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  // Names (not paths) of the entries of dir, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Atomically replaces `to` if it exists. Durable only after SyncDir of the
  // directory (both paths must be in the same directory for that to suffice).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Unlinks a file. Durable only after SyncDir of its directory.
  virtual Status Remove(const std::string& path) = 0;
  // Creates a directory; ok if it already exists. Durable after SyncDir of
  // its parent.
  virtual Status CreateDir(const std::string& path) = 0;
  // fsync of a directory: makes the creations, renames and removals of its
  // entries durable.
  virtual Status SyncDir(const std::string& path) = 0;
  virtual Result<bool> Exists(const std::string& path) = 0;
};

// "a/b" + "c" -> "a/b/c"; tolerant of a trailing '/' on dir.
std::string JoinPath(std::string_view dir, std::string_view name);
// "a/b/c" -> "a/b"; "c" -> "."; "/c" -> "/".
std::string ParentDir(std::string_view path);
// "a/b/c" -> "c".
std::string BaseName(std::string_view path);

// Reads a whole file (up to max_bytes; larger files are a TooLarge error).
Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path, std::uint64_t max_bytes);
// Replaces `path` with `bytes` durably and atomically: written to path +
// ".tmp" (truncated first: a leftover of an interrupted write), fsynced,
// renamed over `path`, and the directory fsynced. A crash at any step leaves
// the old file or the new one, never a mix.
Status WriteFileDurably(FileSystem& fs, const std::string& path, std::string_view bytes);

}  // namespace gv::fs
