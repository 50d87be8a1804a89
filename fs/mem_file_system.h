// MemFileSystem: an in-memory FileSystem that models durability exactly, for
// crash and fault-injection tests.
//
// Model (the POSIX guarantees the WAL relies on, and nothing more):
//  - Every file (inode) has volatile content (what reads see) and durable
//    content (what survives a crash). File::Sync copies volatile to durable.
//  - Directory entries (file creation, rename, remove, mkdir) are volatile
//    until SyncDir of the directory that holds them.
//  - SimulateCrash() reverts every directory and file to its durable state.
//    Optionally a seeded random part of the unsynced writes survives, to
//    model torn writes (a prefix of them, or independent 512-byte sectors).
//  - Fault injection: fail the n-th call of one kind of operation once, or
//    "crash at operation K": the K-th mutating operation (counted from
//    construction, 1-based) and every operation after it fail with an
//    IOError saying the crash was injected, until SimulateCrash().
// Thread-safe: one mutex guards the whole state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fs/file_system.h"

namespace gv::fs {

// The operations that change state; they are what "operation K" counts.
enum class MemOp { kCreate, kWrite, kSync, kAllocate, kTruncate, kRename, kRemove, kCreateDir, kSyncDir };
const char* MemOpName(MemOp op);

enum class CrashMode {
  kDropUnsynced,         // every unsynced change is lost
  kKeepUnsyncedPrefix,   // per file, a random prefix of the unsynced changes survives, the last write torn
  kKeepUnsyncedSectors,  // per file, each 512-byte piece of each unsynced write survives independently
};

class MemFileSystem final : public FileSystem {
 public:
  MemFileSystem();
  ~MemFileSystem() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<bool> Exists(const std::string& path) override;

  // Reverts to the durable state (see the model above), invalidates every
  // open File, and clears an injected crash. `seed` drives the torn modes.
  void SimulateCrash(CrashMode mode = CrashMode::kDropUnsynced, std::uint64_t seed = 0);

  // The k-th mutating operation (1-based, counted since construction) and
  // all operations after it fail, as if the process died just before it.
  void CrashAtOperation(std::uint64_t k);
  // The n-th (1-based, counted from now) operation of kind `op` fails once
  // with an IOError and has no effect.
  void FailNth(MemOp op, std::uint64_t n);
  void ClearFaults();
  // Called at the start of every File::Sync, without the lock held (lets a
  // test hold a sync open while other threads queue up behind it).
  void SetSyncHook(std::function<void()> hook);

  // Whether File::EnableDirectIo succeeds (default true: writes then must be
  // aligned, as with O_DIRECT); false models tmpfs on older kernels.
  void SetDirectIoSupported(bool supported);

  // Mutating operations performed so far (the K of CrashAtOperation).
  std::uint64_t operation_count() const;
  // "sync wal/00000000000000000001.wal" for operation k (1-based), or "".
  std::string DescribeOperation(std::uint64_t k) const;
  std::uint64_t count(MemOp op) const;
  bool crashed() const;

  // A deep copy of files, directories and durable state (not faults or hooks).
  std::unique_ptr<MemFileSystem> Clone() const;

 private:
  friend class MemFile;
  struct Change {
    enum Kind { kWrite, kTruncate } kind;
    std::uint64_t offset;  // write offset, or the new size for truncate
    std::string data;
  };
  struct Inode {
    std::string data;
    std::string durable;
    std::vector<Change> pending;  // changes since the last Sync, in order
  };
  struct State {
    std::map<std::uint64_t, Inode> inodes;
    std::map<std::string, std::uint64_t> files, durable_files;  // path -> inode
    std::set<std::string> dirs, durable_dirs;
    std::uint64_t next_inode = 1;
    std::uint64_t epoch = 1;  // bumped by SimulateCrash; stale handles fail
  };

  // Counts a mutating operation and applies injected faults. Lock held.
  Status BeginOp(MemOp op, const std::string& what);
  Status CheckAlive(const std::string& what) const;
  static void ApplyChange(std::string& data, const Change& change);

  mutable std::mutex mu_;
  State state_;
  std::uint64_t op_count_ = 0;
  std::uint64_t crash_at_ = 0;  // 0 = none
  bool crashed_ = false;
  std::map<MemOp, std::uint64_t> fail_countdown_;
  std::map<MemOp, std::uint64_t> op_counts_;
  std::vector<std::string> op_log_;
  std::function<void()> sync_hook_;
  bool direct_io_supported_ = true;
};

}  // namespace gv::fs
