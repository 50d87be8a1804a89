#include "wal/wal.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace gv::wal {
namespace {

// Read granularity of recovery and of the zero-fill/zero-check loops.
constexpr std::size_t kIoChunkBytes = 1u << 20;
constexpr std::string_view kTempSuffix = ".tmp";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Buffered sequential reader over one segment; views stay valid until the
// next Peek.
class SegmentReader {
 public:
  SegmentReader(fs::File& file, std::uint64_t size) : file_(file), size_(size) {}

  // Up to n bytes at pos; fewer only at the end of the file.
  Result<std::string_view> Peek(std::uint64_t pos, std::size_t n) {
    if (pos >= size_) return std::string_view();
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - pos));
    if (pos >= start_ && pos + n <= start_ + buffer_.size()) {
      return std::string_view(buffer_).substr(static_cast<std::size_t>(pos - start_), n);
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, kIoChunkBytes), size_ - pos));
    buffer_.resize(want);
    auto got = file_.ReadAt(pos, want, buffer_.data());
    if (!got.ok()) return got.status();
    buffer_.resize(*got);
    start_ = pos;
    return std::string_view(buffer_).substr(0, std::min(n, buffer_.size()));
  }

 private:
  fs::File& file_;
  std::uint64_t size_;
  std::uint64_t start_ = 0;
  std::string buffer_;
};

// Offset of the last non-zero byte in [from, size), or nullopt.
Result<std::optional<std::uint64_t>> LastNonZero(fs::File& file, std::uint64_t from, std::uint64_t size) {
  std::optional<std::uint64_t> last;
  std::string chunk;
  for (std::uint64_t pos = from; pos < size;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kIoChunkBytes, size - pos));
    chunk.resize(n);
    auto got = file.ReadAt(pos, n, chunk.data());
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    for (std::size_t i = *got; i > 0; --i) {
      if (chunk[i - 1] != 0) {
        last = pos + i - 1;
        break;
      }
    }
    pos += *got;
  }
  return last;
}

Status WriteZeros(fs::File& file, std::uint64_t from, std::uint64_t to) {
  const std::string zeros(static_cast<std::size_t>(std::min<std::uint64_t>(kIoChunkBytes, to - from)), '\0');
  for (std::uint64_t pos = from; pos < to;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), to - pos));
    GV_RETURN_IF_ERROR(file.WriteAt(pos, std::string_view(zeros).substr(0, n)));
    pos += n;
  }
  return Status::Ok();
}

std::string Where(const std::string& path, std::uint64_t offset) {
  return path + " offset " + std::to_string(offset);
}

}  // namespace

const char* DurabilityName(Durability d) {
  switch (d) {
    case Durability::kSync: return "sync";
    case Durability::kInterval: return "interval";
    case Durability::kNone: return "none";
  }
  return "unknown";
}

Result<Durability> ParseDurability(std::string_view name) {
  if (name == "sync") return Durability::kSync;
  if (name == "interval") return Durability::kInterval;
  if (name == "none") return Durability::kNone;
  return Status::InvalidArgument("durability must be sync, interval or none, not '" + std::string(name) + "'");
}

// One caller in the group-commit queue. Lives on the caller's stack; the
// leader completes it under mu_ and the caller only returns after seeing done
// under mu_, so the leader never touches a dead Writer.
struct Wal::Writer {
  const std::vector<std::string_view>* payloads = nullptr;  // null: a sync request
  bool wants_sync = false;
  bool from_close = false;  // Close's final sync, admitted while stopping
  std::uint64_t frame_bytes = 0;
  bool done = false;
  Status status;
  Lsn first_lsn = 0;
  std::condition_variable cv;
};

Wal::Wal(fs::FileSystem& fs, WalOptions options) : fs_(fs), options_(std::move(options)) {}

Wal::~Wal() { (void)Close(); }

Result<std::unique_ptr<Wal>> Wal::Open(fs::FileSystem& fs, WalOptions options, const ReplayFn& replay) {
  if (options.dir.empty()) return Status::InvalidArgument("wal: options.dir is empty");
  if (options.max_record_bytes == 0 || options.max_record_bytes > kMaxRecordPayloadBytes) {
    return Status::InvalidArgument("wal: max_record_bytes must be in [1, " + std::to_string(kMaxRecordPayloadBytes) +
                                   "], not " + std::to_string(options.max_record_bytes));
  }
  if (options.segment_bytes < kSegmentHeaderBytes + RecordFrameBytes(options.max_record_bytes)) {
    return Status::InvalidArgument("wal: segment_bytes " + std::to_string(options.segment_bytes) +
                                   " cannot hold a record of max_record_bytes " +
                                   std::to_string(options.max_record_bytes) + " plus headers");
  }
  if (options.durability == Durability::kInterval && options.sync_interval_ms == 0) {
    return Status::InvalidArgument("wal: sync_interval_ms must be positive");
  }
  std::unique_ptr<Wal> wal(new Wal(fs, std::move(options)));
  Status s = wal->Recover(replay);
  if (!s.ok()) {
    wal->closed_ = true;  // nothing to flush; the destructor must not touch the files
    return s;
  }
  if (wal->options_.prepare_segments_in_background) {
    {
      std::lock_guard lock(wal->mu_);
      wal->prepare_requested_ = true;
    }
    wal->preparer_ = std::thread([w = wal.get()] { w->PreparerLoop(); });
  }
  if (wal->options_.durability == Durability::kInterval) {
    wal->flusher_ = std::thread([w = wal.get()] { w->FlusherLoop(); });
  }
  return wal;
}

std::string Wal::SegmentPath(Lsn first_lsn) const { return fs::JoinPath(options_.dir, SegmentFileName(first_lsn)); }

std::string Wal::NextTempPath() {
  std::lock_guard lock(mu_);
  return fs::JoinPath(options_.dir, "segment-" + std::to_string(++temp_counter_) + ".wal.tmp");
}

Status Wal::Recover(const ReplayFn& replay) {
  const std::string& dir = options_.dir;
  auto exists = fs_.Exists(dir);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    GV_RETURN_IF_ERROR(fs_.CreateDir(dir));
    GV_RETURN_IF_ERROR(fs_.SyncDir(fs::ParentDir(dir)));
  }
  auto names = fs_.ListDir(dir);
  if (!names.ok()) return names.status();
  std::map<Lsn, std::string> found;
  for (const auto& name : *names) {
    const std::string path = fs::JoinPath(dir, name);
    if (EndsWith(name, kTempSuffix)) {
      // A segment that never completed its rotation (or an unused prepared
      // one): never renamed, so it holds no acknowledged record.
      GV_RETURN_IF_ERROR(fs_.Remove(path));
      ++recovery_.temp_files_removed;
    } else if (auto lsn = ParseSegmentFileName(name)) {
      found[*lsn] = name;
    } else {
      spdlog::warn("wal: ignoring unexpected file {}", path);
    }
  }
  if (recovery_.temp_files_removed > 0) GV_RETURN_IF_ERROR(fs_.SyncDir(dir));

  if (found.empty()) {
    auto file = CreateSegment(1);
    if (!file.ok()) return file.status();
    current_ = std::move(*file);
    current_first_lsn_ = 1;
    current_offset_ = kSegmentHeaderBytes;
    next_lsn_ = 1;
    recovery_.segments = 1;
    return Status::Ok();
  }

  Lsn expected = 0;  // LSN the next record must carry; 0 = not known yet
  std::string prev_path;
  std::uint64_t prev_end = 0;
  for (auto it = found.begin(); it != found.end(); ++it) {
    const bool last = std::next(it) == found.end();
    const std::string path = fs::JoinPath(dir, it->second);
    auto opened = fs_.Open(path, last ? fs::OpenMode::kReadWrite : fs::OpenMode::kReadOnly);
    if (!opened.ok()) return opened.status();
    fs::File& file = **opened;
    auto size = file.Size();
    if (!size.ok()) return size.status();

    std::string header(kSegmentHeaderBytes, '\0');
    auto got = file.ReadAt(0, header.size(), header.data());
    if (!got.ok()) return got.status();
    header.resize(*got);
    auto first = DecodeSegmentHeader(header);
    if (!first.ok()) return Status::Corruption(Where(path, 0) + ": " + first.status().message());
    if (*first != it->first) {
      return Status::Corruption(Where(path, 0) + ": header says first LSN " + std::to_string(*first) +
                                " but the file name says " + std::to_string(it->first));
    }
    if (expected != 0 && *first != expected) {
      return Status::Corruption(Where(prev_path, prev_end) + ": the log ends at LSN " + std::to_string(expected - 1) +
                                " but the next segment " + path + " starts at LSN " + std::to_string(*first) +
                                " (records are missing or overlap)");
    }
    expected = *first;

    SegmentReader reader(file, *size);
    std::uint64_t pos = kSegmentHeaderBytes;
    std::string stop_reason;  // empty: clean end (zeros or end of file)
    while (true) {
      auto head = reader.Peek(pos, kRecordHeaderBytes);
      if (!head.ok()) return head.status();
      std::string_view bytes = *head;
      if (auto length = PeekRecordLength(bytes); length && *length <= kMaxRecordPayloadBytes) {
        auto whole = reader.Peek(pos, RecordFrameBytes(*length));
        if (!whole.ok()) return whole.status();
        bytes = *whole;
      }
      const ParsedRecord rec = ParseRecord(bytes);
      if (rec.kind == ParsedRecord::Kind::kRecord && rec.lsn == expected) {
        if (expected >= options_.replay_from_lsn) {
          GV_RETURN_IF_ERROR(replay(rec.lsn, rec.payload));
          ++recovery_.replayed;
        }
        if (recovery_.records == 0) recovery_.first_lsn = rec.lsn;
        ++recovery_.records;
        pos += rec.frame_bytes;
        ++expected;
        continue;
      }
      if (rec.kind == ParsedRecord::Kind::kRecord) {
        stop_reason = "record has LSN " + std::to_string(rec.lsn) + ", expected " + std::to_string(expected);
      } else if (rec.kind != ParsedRecord::Kind::kZero) {
        stop_reason = rec.reason;
      }
      break;
    }

    if (!last) {
      // A sealed segment was fsynced in full before the next one received a
      // record, so anything but a clean end is damage, never a torn write.
      if (!stop_reason.empty()) return Status::Corruption(Where(path, pos) + ": " + stop_reason + " in a sealed segment");
      // Its unused tail (shorter than one record frame, since rotation
      // happens only when the next record does not fit) must be zeros too.
      auto garbage = LastNonZero(file, pos, *size);
      if (!garbage.ok()) return garbage.status();
      if (*garbage) {
        return Status::Corruption(Where(path, pos) + ": non-zero bytes after the last record (up to offset " +
                                  std::to_string(**garbage) + ") in a sealed segment");
      }
      prev_path = path;
      prev_end = pos;
      continue;
    }

    // The last segment: keep the valid prefix. Whatever non-zero bytes follow
    // it (a torn write, garbage, a stale record) are zeroed and synced, so a
    // later append can never line up with an old record and resurrect it.
    auto tail = LastNonZero(file, pos, *size);
    if (!tail.ok()) return tail.status();
    if (*tail) {
      recovery_.tail_cut = true;
      recovery_.cut_file = path;
      recovery_.cut_offset = pos;
      recovery_.cut_bytes = **tail + 1 - pos;
      recovery_.cut_reason = stop_reason.empty() ? "non-zero bytes after the last record" : stop_reason;
      spdlog::warn("wal: cutting the tail of {} at offset {} ({}); zeroing {} bytes; last valid LSN {}", path, pos,
                   recovery_.cut_reason, recovery_.cut_bytes, expected - 1);
      GV_RETURN_IF_ERROR(WriteZeros(file, pos, **tail + 1));
      GV_RETURN_IF_ERROR(file.Sync());
    }
    current_ = std::move(*opened);
    current_first_lsn_ = *first;
    current_offset_ = pos;
  }
  segments_ = std::move(found);
  next_lsn_ = expected;
  recovery_.segments = segments_.size();
  recovery_.last_lsn = recovery_.records > 0 ? expected - 1 : 0;
  spdlog::debug("wal: recovered {} records (LSN {}..{}) from {} segments in {}", recovery_.records,
                recovery_.first_lsn, recovery_.last_lsn, recovery_.segments, dir);
  return Status::Ok();
}

Result<std::unique_ptr<fs::File>> Wal::PrepareSegmentFile(const std::string& temp_path) {
  auto file = fs_.Open(temp_path, fs::OpenMode::kCreateNew);
  if (!file.ok()) return file.status();
  switch (options_.preallocation) {
    case Preallocation::kNone: break;
    case Preallocation::kFallocate: GV_RETURN_IF_ERROR((*file)->Allocate(0, options_.segment_bytes)); break;
    case Preallocation::kZeroFill: GV_RETURN_IF_ERROR(WriteZeros(**file, 0, options_.segment_bytes)); break;
  }
  // Durable blocks and size now, so the fdatasyncs of appends that overwrite
  // them need no metadata update.
  if (options_.preallocation != Preallocation::kNone) GV_RETURN_IF_ERROR((*file)->Sync());
  return file;
}

Result<std::unique_ptr<fs::File>> Wal::CreateSegment(Lsn first_lsn) {
  std::unique_ptr<fs::File> file;
  std::string temp;
  if (options_.prepare_segments_in_background) {
    std::unique_lock lock(mu_);
    prepare_cv_.wait(lock, [&] { return !prepare_in_progress_; });
    if (prepared_file_) {
      file = std::move(prepared_file_);
      temp = std::move(prepared_path_);
    }
  }
  if (!file) {
    temp = NextTempPath();
    auto prepared = PrepareSegmentFile(temp);
    if (!prepared.ok()) return prepared.status();
    file = std::move(*prepared);
  }
  // Steps (docs/wal_format.md, "Rotation"): the header is durable before the
  // rename makes the file a segment, and the rename is durable (directory
  // fsync) before any record is written into it.
  GV_RETURN_IF_ERROR(file->WriteAt(0, EncodeSegmentHeader(first_lsn)));
  GV_RETURN_IF_ERROR(file->Sync());
  GV_RETURN_IF_ERROR(fs_.Rename(temp, SegmentPath(first_lsn)));
  GV_RETURN_IF_ERROR(fs_.SyncDir(options_.dir));
  {
    std::lock_guard lock(mu_);
    segments_[first_lsn] = SegmentFileName(first_lsn);
    if (options_.prepare_segments_in_background && !stopping_) {
      prepare_requested_ = true;
      prepare_cv_.notify_all();
    }
  }
  ++segments_created_;
  return file;
}

Status Wal::SyncCurrent() {
  const auto start = std::chrono::steady_clock::now();
  GV_RETURN_IF_ERROR(current_->Sync());
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  sync_micros_ += static_cast<std::uint64_t>(micros);
  ++syncs_;
  current_dirty_ = false;
  return Status::Ok();
}

Status Wal::Rotate(Lsn first_lsn) {
  // Seal: the old segment is durable in full before the new one exists, so
  // recovery may treat any damage in a non-last segment as corruption.
  if (current_dirty_) GV_RETURN_IF_ERROR(SyncCurrent());
  auto file = CreateSegment(first_lsn);
  if (!file.ok()) return file.status();
  // The old segment's data is already durable; a close error cannot lose it.
  (void)current_->Close();
  current_ = std::move(*file);
  current_first_lsn_ = first_lsn;
  current_offset_ = kSegmentHeaderBytes;
  current_dirty_ = false;
  return Status::Ok();
}

Status Wal::WriteGroup(const std::vector<Writer*>& group, bool sync) {
  frame_buffer_.clear();
  auto flush = [&]() -> Status {
    if (frame_buffer_.empty()) return Status::Ok();
    GV_RETURN_IF_ERROR(current_->WriteAt(current_offset_, frame_buffer_));
    current_offset_ += frame_buffer_.size();
    bytes_ += frame_buffer_.size();
    current_dirty_ = true;
    frame_buffer_.clear();
    return Status::Ok();
  };
  for (Writer* w : group) {
    if (w->payloads == nullptr) continue;
    Lsn lsn = w->first_lsn;
    for (std::string_view payload : *w->payloads) {
      // Records never span segments: rotate when this one does not fit.
      if (current_offset_ + frame_buffer_.size() + RecordFrameBytes(payload.size()) > options_.segment_bytes) {
        GV_RETURN_IF_ERROR(flush());
        GV_RETURN_IF_ERROR(Rotate(lsn));
      }
      AppendRecord(frame_buffer_, lsn, payload);
      ++lsn;
      ++records_;
    }
  }
  GV_RETURN_IF_ERROR(flush());
  if (sync && current_dirty_) GV_RETURN_IF_ERROR(SyncCurrent());
  ++groups_;
  // Do not keep a huge buffer around after one oversized group.
  if (frame_buffer_.capacity() > 2 * options_.max_group_bytes + options_.max_record_bytes) {
    std::string().swap(frame_buffer_);
  }
  return Status::Ok();
}

Result<Lsn> Wal::Write(Writer& w) {
  std::unique_lock lock(mu_);
  if (closed_ || (stopping_ && !w.from_close)) return Status::Aborted("wal " + options_.dir + " is closed");
  if (!failed_.ok()) return failed_;
  queue_.push_back(&w);
  while (!w.done && queue_.front() != &w) w.cv.wait(lock);
  if (w.done) {
    if (!w.status.ok()) return w.status;
    return w.first_lsn;
  }

  // Leader: take the queue's head writers (bounded bytes), assign LSNs, and
  // do the I/O without the lock so followers can queue up meanwhile.
  std::vector<Writer*> group;
  bool sync = false;
  Lsn lsn = next_lsn_;
  std::uint64_t bytes = 0;
  for (Writer* x : queue_) {
    if (!group.empty() && bytes + x->frame_bytes > options_.max_group_bytes) break;
    group.push_back(x);
    x->first_lsn = lsn;
    if (x->payloads != nullptr) lsn += x->payloads->size();
    bytes += x->frame_bytes;
    sync = sync || x->wants_sync;
  }
  Status s = failed_;
  if (s.ok()) {
    lock.unlock();
    s = WriteGroup(group, sync);
    lock.lock();
    if (s.ok()) {
      next_lsn_ = lsn;
    } else {
      failed_ = Status::IOError("wal " + options_.dir + " has failed and accepts no more writes until reopened: " +
                                s.ToString());
      spdlog::error("{}", failed_.message());
      s = failed_;
    }
  }
  for (Writer* x : group) {
    queue_.pop_front();
    x->status = s;
    x->done = true;
    if (x != &w) x->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  if (!s.ok()) return s;
  return w.first_lsn;
}

Result<Lsn> Wal::Append(std::string_view payload) {
  const std::vector<std::string_view> one{payload};
  return AppendBatch(one);
}

Result<Lsn> Wal::AppendBatch(const std::vector<std::string_view>& payloads) {
  if (payloads.empty()) return Status::InvalidArgument("wal: empty batch");
  Writer w;
  w.payloads = &payloads;
  w.wants_sync = options_.durability == Durability::kSync;
  for (std::string_view p : payloads) {
    if (p.size() > options_.max_record_bytes) {
      return Status::TooLarge("wal: record of " + std::to_string(p.size()) + " bytes exceeds max_record_bytes " +
                              std::to_string(options_.max_record_bytes));
    }
    w.frame_bytes += RecordFrameBytes(p.size());
  }
  auto result = Write(w);
  if (result.ok()) ++appends_;
  return result;
}

Status Wal::Sync() {
  Writer w;
  w.wants_sync = true;
  auto result = Write(w);
  return result.ok() ? Status::Ok() : result.status();
}

void Wal::PreparerLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    prepare_cv_.wait(lock, [&] { return stopping_ || (prepare_requested_ && !prepared_file_); });
    if (stopping_) return;
    prepare_requested_ = false;
    prepare_in_progress_ = true;
    lock.unlock();
    const std::string temp = NextTempPath();
    auto prepared = PrepareSegmentFile(temp);
    lock.lock();
    prepare_in_progress_ = false;
    if (prepared.ok()) {
      prepared_file_ = std::move(*prepared);
      prepared_path_ = temp;
    } else {
      // Not fatal: the next rotation prepares its segment itself and
      // reports any error to the writers.
      spdlog::warn("wal: preparing segment {} in the background failed: {}", temp, prepared.status().ToString());
    }
    prepare_cv_.notify_all();
  }
}

void Wal::FlusherLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    flusher_cv_.wait_for(lock, std::chrono::milliseconds(options_.sync_interval_ms), [&] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    // A failure marks the log failed; writers see it on their next call.
    (void)Sync();
    lock.lock();
  }
}

Status Wal::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return failed_;
    stopping_ = true;
    prepare_cv_.notify_all();
    flusher_cv_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
  if (preparer_.joinable()) preparer_.join();
  // Final sync through the queue, behind any writer still in it.
  Writer final_sync;
  final_sync.wants_sync = true;
  final_sync.from_close = true;
  auto synced = Write(final_sync);
  Status s = synced.ok() ? Status::Ok() : synced.status();
  std::lock_guard lock(mu_);
  closed_ = true;
  if (current_) {
    Status c = current_->Close();
    if (s.ok()) s = c;
  }
  if (prepared_file_) {
    (void)prepared_file_->Close();
    prepared_file_.reset();
    // An unused prepared segment is just a temp file; Open would remove it too.
    (void)fs_.Remove(prepared_path_);
  }
  return s;
}

Status Wal::RemoveSegmentsBefore(Lsn lsn) {
  std::lock_guard compaction(compaction_mu_);
  std::vector<std::pair<Lsn, std::string>> victims;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Aborted("wal " + options_.dir + " is closed");
    for (auto it = segments_.begin(); it != segments_.end(); ++it) {
      auto next = std::next(it);
      // Segment `it` holds LSNs [it->first, next->first); the last one is
      // being written and is never removed.
      if (next == segments_.end() || next->first > lsn) break;
      victims.emplace_back(it->first, it->second);
    }
  }
  // Oldest first, each removal made durable before the next, so a crash
  // always leaves a contiguous run of segments.
  for (const auto& [first, name] : victims) {
    GV_RETURN_IF_ERROR(fs_.Remove(fs::JoinPath(options_.dir, name)));
    GV_RETURN_IF_ERROR(fs_.SyncDir(options_.dir));
    std::lock_guard lock(mu_);
    segments_.erase(first);
    ++segments_removed_;
  }
  return Status::Ok();
}

WalStats Wal::stats() const {
  WalStats s;
  s.appends = appends_;
  s.records = records_;
  s.bytes = bytes_;
  s.groups = groups_;
  s.syncs = syncs_;
  s.sync_micros_sum = sync_micros_;
  s.segments_created = segments_created_;
  s.segments_removed = segments_removed_;
  std::lock_guard lock(mu_);
  s.segments = segments_.size();
  s.last_lsn = next_lsn_ - 1;
  return s;
}

Lsn Wal::last_lsn() const {
  std::lock_guard lock(mu_);
  return next_lsn_ - 1;
}

Status Wal::health() const {
  std::lock_guard lock(mu_);
  return failed_;
}

std::size_t Wal::queued_writers() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

bool Wal::next_segment_prepared() const {
  std::lock_guard lock(mu_);
  return prepared_file_ != nullptr;
}

}  // namespace gv::wal
