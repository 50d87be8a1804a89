// Snapshot files in DATA/snapshots/ (DESIGN.md §4, docs/snapshot_format.md).
//
// A file is exactly one snapshot stream (codec.h). Names are
// "<20-digit counter>.snap", so they sort by creation; the next counter is one
// more than the largest present (temp files included; two writers in one
// directory skip each other's names). A file is written as
// "<name>.snap.tmp" in the same directory, fsynced, renamed to its final name
// and the directory fsynced: after a crash at any point either the complete
// new file or nothing of it is visible under a final name (a leftover temp
// file is removed by CleanTempFiles). Everything goes through fs::FileSystem
// so crashes can be injected (MemFileSystem).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "fs/file_system.h"
#include "snapshot/codec.h"
#include "statestore/store.h"

namespace gv::snapshot {

inline constexpr char kSnapshotSuffix[] = ".snap";
inline constexpr char kTempSuffix[] = ".snap.tmp";
// ReadSnapshotFile refuses larger files (the decoder's stream limit).
inline constexpr std::uint64_t kMaxSnapshotFileBytes = 8ull << 30;

struct SnapshotFileInfo {
  std::string path;
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  SnapshotMeta meta;
};

// Encodes `view` into DIR/<next>.snap durably (temp, fsync, rename, dir fsync).
// Creates DIR if missing. On failure the temp file is removed (best effort).
// Encoding runs on `encode_threads` helper threads (EncodeSnapshotParallel;
// 0 = on the calling thread), all joined before this returns; the calling
// thread checksums the chunks into 4 MiB blocks that an fs::BlockWriter
// thread writes, with direct I/O where the file system takes it. The file's
// bytes do not depend on the thread count.
Result<SnapshotFileInfo> WriteSnapshotFile(fs::FileSystem& fs, const std::string& dir, statestore::StoreView view,
                                           std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                                           std::size_t encode_threads = ParallelEncodeOptions{}.threads,
                                           int helper_nice = ParallelEncodeOptions{}.helper_nice);

// Writes an already-encoded stream arriving piecewise (a peer's snapshot, PUT
// /v1/snapshot), verifying every chunk before it is written. Abort (or
// destruction without Commit) removes the temp file.
class SnapshotFileSink {
 public:
  static Result<SnapshotFileSink> Create(fs::FileSystem& fs, const std::string& dir);
  ~SnapshotFileSink();
  SnapshotFileSink(SnapshotFileSink&&) noexcept;
  SnapshotFileSink& operator=(SnapshotFileSink&&) noexcept;

  // Verifies, then appends. The first error is sticky.
  Status Append(std::string_view bytes);
  // Requires a complete stream; fsync, rename, directory fsync.
  Result<SnapshotFileInfo> Commit();
  // Removes the temp file; idempotent.
  void Abort();
  const SnapshotDecoder& decoder() const;

 private:
  struct State;
  explicit SnapshotFileSink(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Reads and verifies a whole file (every chunk) into a LoadedSnapshot.
Result<statestore::LoadedSnapshot> ReadSnapshotFile(fs::FileSystem& fs, const std::string& path);

// Paths of DIR's snapshot files, newest first; temp files are not listed.
// NotFound-free: a missing DIR lists nothing.
Result<std::vector<std::string>> ListSnapshotFiles(fs::FileSystem& fs, const std::string& dir);

// Removes DIR's leftover temp files (an interrupted write) and fsyncs DIR.
// Returns how many were removed.
Result<std::size_t> CleanTempFiles(fs::FileSystem& fs, const std::string& dir);

// The newest snapshot that reads and verifies completely. Each newer file that
// does not is appended to *skipped (if given) as "path: reason" so the caller
// can log it loudly. NotFound if no file is valid.
Result<statestore::LoadedSnapshot> LoadNewestValidSnapshot(fs::FileSystem& fs, const std::string& dir,
                                                           std::vector<std::string>* skipped);

// Removes all but the keep_newest newest snapshot files (at least one is
// always kept), then fsyncs DIR.
Status PruneSnapshots(fs::FileSystem& fs, const std::string& dir, std::size_t keep_newest);

struct InspectReport {
  bool header_ok = false;
  SnapshotMeta meta;             // valid when header_ok
  std::uint64_t chunks = 0;      // frames found (valid or not)
  std::uint64_t chunks_bad = 0;  // frames failing CRC/verification, or out of place
  std::uint64_t entries = 0;     // entries in the frames that verified on their own
  bool complete = false;         // the whole stream verifies (as ReadSnapshotFile would)
  std::string first_error;       // empty when complete
};
// Reads on past a bad chunk while the framing allows (a damaged length ends the scan).
Result<InspectReport> InspectSnapshotFile(fs::FileSystem& fs, const std::string& path);

}  // namespace gv::snapshot
