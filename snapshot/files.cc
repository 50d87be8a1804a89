#include "snapshot/files.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "fs/block_writer.h"

namespace gv::snapshot {

namespace {

constexpr std::size_t kCounterDigits = 20;
constexpr std::size_t kReadBlockBytes = 1u << 20;

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "00000000000000000007.snap" -> 7 with suffix ".snap" (".snap.tmp" for temp files).
bool ParseName(std::string_view name, std::string_view suffix, std::uint64_t* counter) {
  if (name.size() != kCounterDigits + suffix.size() || name.substr(kCounterDigits) != suffix) return false;
  const std::string_view digits = name.substr(0, kCounterDigits);
  if (!AllDigits(digits)) return false;
  std::uint64_t value = 0;
  for (char c : digits) {
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *counter = value;
  return true;
}

std::string CounterName(std::uint64_t counter) {
  char buf[kCounterDigits + 1];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(counter));
  return std::string(buf, kCounterDigits);
}

Result<std::vector<std::string>> ListOrEmpty(fs::FileSystem& fs, const std::string& dir) {
  Result<std::vector<std::string>> names = fs.ListDir(dir);
  if (!names.ok() && names.status().IsNotFound()) return std::vector<std::string>{};
  return names;
}

Status EnsureDir(fs::FileSystem& fs, const std::string& dir) {
  Result<bool> exists = fs.Exists(dir);
  if (!exists.ok()) return exists.status();
  if (*exists) return Status::Ok();
  GV_RETURN_IF_ERROR(fs.CreateDir(dir));
  return fs.SyncDir(fs::ParentDir(dir));
}

// The temp and final paths of a new snapshot in dir.
struct Names {
  std::string temp;
  std::string final_path;
};
struct TempFile {
  Names names;
  std::unique_ptr<fs::File> file;
};

// Creates the temp file of the next snapshot: the counter is one more than
// the largest in dir, and the temp file is created exclusively, so two
// writers in one directory (a local compaction beside a peer's download)
// never share a name: the second skips a counter whose temp or final file
// exists.
constexpr int kNameAttempts = 16;
Result<TempFile> CreateTemp(fs::FileSystem& fs, const std::string& dir) {
  Result<std::vector<std::string>> listed = ListOrEmpty(fs, dir);
  if (!listed.ok()) return listed.status();
  std::uint64_t largest = 0;
  for (const std::string& name : *listed) {
    std::uint64_t counter = 0;
    if (ParseName(name, kSnapshotSuffix, &counter) || ParseName(name, kTempSuffix, &counter)) {
      largest = std::max(largest, counter);
    }
  }
  for (int attempt = 1; attempt <= kNameAttempts; ++attempt) {
    if (largest > UINT64_MAX - static_cast<std::uint64_t>(attempt)) break;
    const std::string base = CounterName(largest + static_cast<std::uint64_t>(attempt));
    Names names{fs::JoinPath(dir, base + kTempSuffix), fs::JoinPath(dir, base + kSnapshotSuffix)};
    Result<bool> taken = fs.Exists(names.final_path);
    if (!taken.ok()) return taken.status();
    if (*taken) continue;
    Result<std::unique_ptr<fs::File>> opened = fs.Open(names.temp, fs::OpenMode::kCreateNew);
    if (opened.ok()) return TempFile{std::move(names), std::move(*opened)};
    Result<bool> raced = fs.Exists(names.temp);
    if (!raced.ok() || !*raced) return opened.status();  // a real error, not a name taken meanwhile
  }
  return Status::Aborted("no free snapshot name in " + dir + " after " + std::to_string(kNameAttempts) + " attempts");
}

// fsync the temp file, close, rename into place, fsync the directory.
Status Publish(fs::FileSystem& fs, fs::File& file, const std::string& dir, const Names& names) {
  GV_RETURN_IF_ERROR(file.Sync());
  GV_RETURN_IF_ERROR(file.Close());
  GV_RETURN_IF_ERROR(fs.Rename(names.temp, names.final_path));
  return fs.SyncDir(dir);
}

}  // namespace

Result<SnapshotFileInfo> WriteSnapshotFile(fs::FileSystem& fs, const std::string& dir, statestore::StoreView view,
                                           std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                                           std::size_t encode_threads, int helper_nice) {
  GV_RETURN_IF_ERROR(EnsureDir(fs, dir));
  Result<TempFile> temp = CreateTemp(fs, dir);
  if (!temp.ok()) return temp.status();
  const Names* names = &temp->names;
  fs::File& file = *temp->file;
  // Encoding runs on helper threads (EncodeSnapshotParallel) while this
  // thread checksums the chunks and copies them, in order, into blocks that
  // a BlockWriter's thread writes meanwhile, with direct I/O where it can:
  // on 2 cores the page cache's copy and writeback are CPU the encoders
  // want, and a write that waits for the disk must not hold up the
  // checksums (docs/benchmarks.md, "direct I/O for the snapshot file").
  fs::BlockWriter writer(file);
  auto sink = [&](std::string_view frame) -> Status { return writer.Append(frame); };
  ParallelEncodeOptions options;
  options.threads = encode_threads;
  options.helper_nice = helper_nice;
  Result<EncodeSummary> encoded = EncodeSnapshotParallel(std::move(view), created_wall_ms, wal_lsn, sink, options);
  Status written = encoded.ok() ? writer.Finish() : encoded.status();
  if (written.ok()) written = Publish(fs, file, dir, *names);
  if (!written.ok()) {
    writer.Abort();  // its thread may still be writing
    (void)file.Close();
    (void)fs.Remove(names->temp);  // best effort; CleanTempFiles catches what a crash leaves
    return written;
  }
  SnapshotFileInfo info;
  info.path = names->final_path;
  info.bytes = encoded->bytes;
  info.entries = encoded->entries;
  info.meta = encoded->meta;
  return info;
}

// ---- SnapshotFileSink -----------------------------------------------------

struct SnapshotFileSink::State {
  fs::FileSystem* fs = nullptr;
  std::string dir;
  Names names;
  std::unique_ptr<fs::File> file;
  SnapshotDecoder decoder{kMaxSnapshotFileBytes, /*keep_entries=*/false};
  std::uint64_t offset = 0;
  Status error;
  bool done = false;  // committed or aborted
};

SnapshotFileSink::SnapshotFileSink(std::unique_ptr<State> state) : state_(std::move(state)) {}
SnapshotFileSink::SnapshotFileSink(SnapshotFileSink&&) noexcept = default;
SnapshotFileSink& SnapshotFileSink::operator=(SnapshotFileSink&& other) noexcept {
  if (this != &other) {
    Abort();
    state_ = std::move(other.state_);
  }
  return *this;
}
SnapshotFileSink::~SnapshotFileSink() { Abort(); }

Result<SnapshotFileSink> SnapshotFileSink::Create(fs::FileSystem& fs, const std::string& dir) {
  GV_RETURN_IF_ERROR(EnsureDir(fs, dir));
  Result<TempFile> temp = CreateTemp(fs, dir);
  if (!temp.ok()) return temp.status();
  auto state = std::make_unique<State>();
  state->fs = &fs;
  state->dir = dir;
  state->names = std::move(temp->names);
  state->file = std::move(temp->file);
  return SnapshotFileSink(std::move(state));
}

Status SnapshotFileSink::Append(std::string_view bytes) {
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  if (s.done) return s.error = Status::Aborted("snapshot sink already committed or aborted");
  // Verify first: nothing unverified reaches the file.
  if (Status fed = s.decoder.Feed(bytes); !fed.ok()) return s.error = fed;
  if (Status w = s.file->WriteAt(s.offset, bytes); !w.ok()) return s.error = w;
  s.offset += bytes.size();
  return Status::Ok();
}

Result<SnapshotFileInfo> SnapshotFileSink::Commit() {
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  if (s.done) return Status::Aborted("snapshot sink already committed or aborted");
  if (!s.decoder.complete()) {
    return s.error = Status::Corruption("snapshot stream incomplete: " + std::to_string(s.decoder.chunks()) +
                                        " chunks, no trailer yet");
  }
  if (Status published = Publish(*s.fs, *s.file, s.dir, s.names); !published.ok()) {
    s.error = published;
    Abort();
    return published;
  }
  s.done = true;
  SnapshotFileInfo info;
  info.path = s.names.final_path;
  info.bytes = s.offset;
  info.entries = s.decoder.entries();
  info.meta = *s.decoder.meta();
  return info;
}

void SnapshotFileSink::Abort() {
  if (!state_ || state_->done) return;
  State& s = *state_;
  s.done = true;
  if (s.file) (void)s.file->Close();
  (void)s.fs->Remove(s.names.temp);
}

const SnapshotDecoder& SnapshotFileSink::decoder() const { return state_->decoder; }

// ---- Reading ----------------------------------------------------------------

namespace {

// Feeds the file to `decoder` block by block; stops at the first error.
Status FeedFile(fs::FileSystem& fs, const std::string& path, SnapshotDecoder& decoder) {
  Result<std::unique_ptr<fs::File>> opened = fs.Open(path, fs::OpenMode::kReadOnly);
  if (!opened.ok()) return opened.status();
  std::string block(kReadBlockBytes, '\0');
  for (std::uint64_t offset = 0;;) {
    Result<std::size_t> got = (*opened)->ReadAt(offset, block.size(), block.data());
    if (!got.ok()) return got.status();
    if (*got == 0) return Status::Ok();
    GV_RETURN_IF_ERROR(decoder.Feed(std::string_view(block.data(), *got)));
    offset += *got;
  }
}

Status Named(const std::string& path, const Status& status) {
  return Status::Corruption(path + ": " + status.message());
}

}  // namespace

Result<statestore::LoadedSnapshot> ReadSnapshotFile(fs::FileSystem& fs, const std::string& path) {
  SnapshotDecoder decoder(kMaxSnapshotFileBytes);
  if (Status fed = FeedFile(fs, path, decoder); !fed.ok()) {
    if (fed.IsCorruption()) return Named(path, fed);
    return fed;
  }
  Result<statestore::LoadedSnapshot> loaded = decoder.Finish();
  if (!loaded.ok()) return Named(path, loaded.status());
  return loaded;
}

Result<std::vector<std::string>> ListSnapshotFiles(fs::FileSystem& fs, const std::string& dir) {
  Result<std::vector<std::string>> names = ListOrEmpty(fs, dir);
  if (!names.ok()) return names.status();
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const std::string& name : *names) {
    std::uint64_t counter = 0;
    if (ParseName(name, kSnapshotSuffix, &counter)) found.emplace_back(counter, fs::JoinPath(dir, name));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (auto& entry : found) paths.push_back(std::move(entry.second));
  return paths;
}

Result<std::size_t> CleanTempFiles(fs::FileSystem& fs, const std::string& dir) {
  Result<std::vector<std::string>> names = ListOrEmpty(fs, dir);
  if (!names.ok()) return names.status();
  std::size_t removed = 0;
  for (const std::string& name : *names) {
    std::uint64_t counter = 0;
    if (!ParseName(name, kTempSuffix, &counter)) continue;
    GV_RETURN_IF_ERROR(fs.Remove(fs::JoinPath(dir, name)));
    ++removed;
  }
  if (removed > 0) GV_RETURN_IF_ERROR(fs.SyncDir(dir));
  return removed;
}

Result<statestore::LoadedSnapshot> LoadNewestValidSnapshot(fs::FileSystem& fs, const std::string& dir,
                                                           std::vector<std::string>* skipped) {
  Result<std::vector<std::string>> paths = ListSnapshotFiles(fs, dir);
  if (!paths.ok()) return paths.status();
  std::size_t invalid = 0;
  for (const std::string& path : *paths) {
    Result<statestore::LoadedSnapshot> loaded = ReadSnapshotFile(fs, path);
    if (loaded.ok()) return loaded;
    ++invalid;
    if (skipped != nullptr) {
      // Corruption messages already start with the path; say it once.
      std::string_view reason = loaded.status().message();
      if (reason.substr(0, path.size() + 2) == path + ": ") reason.remove_prefix(path.size() + 2);
      skipped->push_back(path + ": " + StatusCodeName(loaded.status().code()) + ": " + std::string(reason));
    }
  }
  return Status::NotFound("no valid snapshot in " + dir + " (" + std::to_string(paths->size()) + " files, " +
                          std::to_string(invalid) + " invalid)");
}

Status PruneSnapshots(fs::FileSystem& fs, const std::string& dir, std::size_t keep_newest) {
  Result<std::vector<std::string>> paths = ListSnapshotFiles(fs, dir);
  if (!paths.ok()) return paths.status();
  const std::size_t keep = std::max<std::size_t>(keep_newest, 1);
  if (paths->size() <= keep) return Status::Ok();
  for (std::size_t i = keep; i < paths->size(); ++i) GV_RETURN_IF_ERROR(fs.Remove((*paths)[i]));
  return fs.SyncDir(dir);
}

Result<InspectReport> InspectSnapshotFile(fs::FileSystem& fs, const std::string& path) {
  InspectReport report;
  // The verdict and the first error come from the full decoder, the header
  // from it too; the chunk census below reads on past damage.
  SnapshotDecoder decoder(kMaxSnapshotFileBytes, /*keep_entries=*/false);
  Status fed = FeedFile(fs, path, decoder);
  if (!fed.ok() && !fed.IsCorruption() && fed.code() != StatusCode::kTooLarge) return fed;
  report.header_ok = decoder.meta() != nullptr;
  if (report.header_ok) report.meta = *decoder.meta();
  report.complete = fed.ok() && decoder.complete();
  if (!fed.ok()) {
    report.first_error = fed.message();
  } else if (!decoder.complete()) {
    report.first_error = "truncated: no trailer after chunk " + std::to_string(decoder.chunks());
  }

  Result<std::string> bytes = fs::ReadFileToString(fs, path, kMaxSnapshotFileBytes);
  if (!bytes.ok()) return bytes.status();
  const std::string& data = *bytes;
  std::uint64_t position = 0;
  for (std::size_t offset = 0; offset + kFrameHeaderBytes <= data.size();) {
    std::uint32_t length = 0, masked_crc = 0;
    for (int i = 0; i < 4; ++i) {
      length |= std::uint32_t{static_cast<std::uint8_t>(data[offset + i])} << (8 * i);
      masked_crc |= std::uint32_t{static_cast<std::uint8_t>(data[offset + 4 + i])} << (8 * i);
    }
    ++report.chunks;
    if (length == 0 || length > kMaxChunkBodyBytes || length > data.size() - offset - kFrameHeaderBytes) {
      ++report.chunks_bad;  // the framing itself is gone: nothing after it can be located
      break;
    }
    Result<ChunkSummary> chunk = CheckFramedChunk(std::string_view(data).substr(offset + kFrameHeaderBytes, length),
                                                  masked_crc);
    if (!chunk.ok() || chunk->position != position) {
      ++report.chunks_bad;
    } else {
      report.entries += chunk->entries;
    }
    ++position;
    offset += kFrameHeaderBytes + length;
  }
  return report;
}

}  // namespace gv::snapshot
