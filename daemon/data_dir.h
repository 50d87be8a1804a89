// The agent's data directory (DESIGN.md §6): DATA/node.id, DATA/wal/,
// DATA/snapshots/, and DATA/LOCK, which one agent holds (flock) for as long as
// it runs so that two agents can never write the same WAL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/node_id.h"
#include "common/status.h"
#include "fs/file_system.h"

namespace gv::daemon {

// Holds an exclusive flock on DATA/LOCK (the directory must exist); released when destroyed (or when the
// process dies, which is what makes a stale LOCK file harmless).
class DataDirLock {
 public:
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  // Takes the lock on an existing `dir`. Fails with a
  // message naming the holder's pid if another process has it.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Creates `dir` and any missing parent, fsyncing each parent that gained an entry.
Status CreateDirs(fs::FileSystem& fs, const std::string& dir);

// Reads DATA/node.id (16 hex digits and a newline), or, if it does not exist,
// writes `new_id` there durably (temp file, fsync, rename, directory fsync)
// and returns it. A damaged file is a Corruption error, never silently replaced:
// a new id would make this node a different member.
Result<NodeId> LoadOrCreateNodeId(fs::FileSystem& fs, const std::string& dir, NodeId new_id);

}  // namespace gv::daemon
