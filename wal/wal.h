// Wal: a segmented, crash-safe write-ahead log of opaque payloads.
//
// Durability contract:
//  - kSync: Append returns only after an fdatasync covered the record.
//  - kInterval: Append returns after write(); a background flush syncs every
//    sync_interval_ms. A process crash loses nothing, a power cut up to an
//    interval.
//  - kNone: Append returns after write(); syncs happen only at segment
//    rotation and Close().
// Group commit: Append is thread-safe; concurrent callers queue, and the one
// at the head of the queue (the leader) writes the frames of every queued
// caller with one write and one fdatasync (LevelDB's DBImpl::Write scheme).
// A failed write or sync makes the log failed for good ("fsyncgate": the
// kernel may have dropped the dirty pages, so a retry proves nothing): every
// later call returns the same error until the process reopens the log.
//
// Recovery (Open) replays the longest valid prefix; see docs/wal_format.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "fs/file_system.h"
#include "wal/format.h"

namespace gv::wal {

enum class Durability { kSync, kInterval, kNone };
const char* DurabilityName(Durability d);
Result<Durability> ParseDurability(std::string_view name);  // "sync" | "interval" | "none"

enum class Preallocation {
  kNone,       // segments grow with each write
  kFallocate,  // fallocate the full size (unwritten extents: each fdatasync also updates metadata)
  kZeroFill,   // write zeros over the full size, so appends overwrite written blocks (cheapest fdatasync)
};

struct WalOptions {
  std::string dir;  // DATA/wal; created (and its parent fsynced) if missing
  Durability durability = Durability::kSync;
  std::uint64_t segment_bytes = 64ull << 20;
  Preallocation preallocation = Preallocation::kZeroFill;
  // Prepare (create, preallocate, fsync) the next segment in a background
  // thread so rotation does not pay for it. Off: prepared at rotation (and
  // file-system operations happen in a deterministic order, for tests).
  bool prepare_segments_in_background = true;
  std::uint32_t max_record_bytes = 8u << 20;  // payload limit per record, <= kMaxRecordPayloadBytes
  std::uint32_t sync_interval_ms = 100;       // kInterval only
  std::uint64_t max_group_bytes = 4ull << 20;  // frames one leader writes at once
  Lsn replay_from_lsn = 0;                     // records below it are verified but not replayed
};

struct RecoveryReport {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;   // valid records found
  std::uint64_t replayed = 0;  // records handed to the callback
  Lsn first_lsn = 0;           // 0 when the log is empty
  Lsn last_lsn = 0;
  std::uint64_t temp_files_removed = 0;
  bool tail_cut = false;       // a torn or garbage tail of the last segment was cut
  std::string cut_file;        // path of the segment that was cut
  std::uint64_t cut_offset = 0;  // where the valid prefix ends in it
  std::uint64_t cut_bytes = 0;   // bytes zeroed from cut_offset on
  std::string cut_reason;
};

struct WalStats {
  std::uint64_t appends = 0;       // Append/AppendBatch calls that succeeded
  std::uint64_t records = 0;       // records written
  std::uint64_t bytes = 0;         // frame bytes written
  std::uint64_t groups = 0;        // leader write rounds
  std::uint64_t syncs = 0;         // fdatasyncs of segments
  std::uint64_t sync_micros_sum = 0;
  std::uint64_t segments_created = 0;
  std::uint64_t segments_removed = 0;
  std::uint64_t segments = 0;      // live segment files
  Lsn last_lsn = 0;
};

// Called once per replayed record, in LSN order; `payload` is valid only
// during the call. A non-ok Status aborts Open. If Open fails, the callback
// may have seen a prefix: discard what it built.
using ReplayFn = std::function<Status(Lsn lsn, std::string_view payload)>;

class Wal {
 public:
  static Result<std::unique_ptr<Wal>> Open(fs::FileSystem& fs, WalOptions options, const ReplayFn& replay);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Appends one record; returns its LSN once durable per the durability mode.
  Result<Lsn> Append(std::string_view payload);
  // Appends records with consecutive LSNs; returns the first one's.
  Result<Lsn> AppendBatch(const std::vector<std::string_view>& payloads);
  // Makes every appended record durable (in any mode).
  Status Sync();
  // Syncs, stops the background threads and closes the files. Idempotent.
  Status Close();
  // Deletes sealed segments whose records all have LSN < lsn (for compaction
  // after a snapshot). The segment being written is never deleted.
  Status RemoveSegmentsBefore(Lsn lsn);

  const RecoveryReport& recovery() const { return recovery_; }
  WalStats stats() const;
  Lsn last_lsn() const;
  // Ok, or the error that made the log failed.
  Status health() const;
  // Callers waiting in the group-commit queue (including the leader).
  std::size_t queued_writers() const;
  // True when background preparation is on and the next segment is ready
  // (created, preallocated, fsynced), so the next rotation will not wait.
  bool next_segment_prepared() const;
  const WalOptions& options() const { return options_; }

 private:
  struct Writer;
  Wal(fs::FileSystem& fs, WalOptions options);

  Status Recover(const ReplayFn& replay);
  Result<Lsn> Write(Writer& writer);
  Status WriteGroup(const std::vector<Writer*>& group, bool sync);
  Status Rotate(Lsn first_lsn);
  Status SyncCurrent();
  Result<std::unique_ptr<fs::File>> PrepareSegmentFile(const std::string& temp_path);
  Result<std::unique_ptr<fs::File>> CreateSegment(Lsn first_lsn);
  void PreparerLoop();
  void FlusherLoop();
  std::string SegmentPath(Lsn first_lsn) const;
  std::string NextTempPath();

  fs::FileSystem& fs_;
  const WalOptions options_;
  RecoveryReport recovery_;

  mutable std::mutex mu_;
  std::deque<Writer*> queue_;     // head = current leader
  Status failed_;                 // sticky
  bool closed_ = false;
  bool stopping_ = false;
  Lsn next_lsn_ = 1;              // LSN the next record gets
  std::map<Lsn, std::string> segments_;  // first LSN -> file name, all live segments

  // Leader-only state (touched by the head of the queue, or by Open/Close
  // when no writer can be active).
  std::unique_ptr<fs::File> current_;
  Lsn current_first_lsn_ = 0;
  std::uint64_t current_offset_ = 0;  // where the next frame goes
  bool current_dirty_ = false;        // written since the last sync
  std::string frame_buffer_;

  // Background segment preparation (guarded by mu_).
  std::condition_variable prepare_cv_;
  bool prepare_requested_ = false;
  bool prepare_in_progress_ = false;
  std::unique_ptr<fs::File> prepared_file_;
  std::string prepared_path_;
  std::uint64_t temp_counter_ = 0;
  std::thread preparer_;

  std::mutex compaction_mu_;  // serializes RemoveSegmentsBefore calls
  std::condition_variable flusher_cv_;
  std::thread flusher_;

  std::atomic<std::uint64_t> appends_{0}, records_{0}, bytes_{0}, groups_{0}, syncs_{0}, sync_micros_{0},
      segments_created_{0}, segments_removed_{0};
};

}  // namespace gv::wal
