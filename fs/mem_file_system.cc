#include "fs/mem_file_system.h"

#include <algorithm>

#include "common/prng.h"

namespace gv::fs {

const char* MemOpName(MemOp op) {
  switch (op) {
    case MemOp::kCreate: return "create";
    case MemOp::kWrite: return "write";
    case MemOp::kSync: return "sync";
    case MemOp::kAllocate: return "allocate";
    case MemOp::kTruncate: return "truncate";
    case MemOp::kRename: return "rename";
    case MemOp::kRemove: return "remove";
    case MemOp::kCreateDir: return "create-dir";
    case MemOp::kSyncDir: return "sync-dir";
  }
  return "unknown";
}

namespace {
// Operation log entries kept for DescribeOperation (diagnostics only).
constexpr std::size_t kMaxOpLog = 1 << 20;
constexpr std::uint64_t kTornSectorBytes = 512;

std::string Normalize(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}
}  // namespace

class MemFile final : public File {
 public:
  MemFile(MemFileSystem* fs, std::uint64_t inode, std::uint64_t epoch, std::string path, bool writable)
      : fs_(fs), inode_(inode), epoch_(epoch), path_(std::move(path)), writable_(writable) {}

  Status WriteAt(std::uint64_t offset, std::string_view data) override {
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckUsable("write"));
    if (direct_ && (offset % kDirectIoAlignment != 0 || data.size() % kDirectIoAlignment != 0 ||
                    reinterpret_cast<std::uintptr_t>(data.data()) % kDirectIoAlignment != 0)) {
      // What pwrite on an O_DIRECT descriptor answers (EINVAL).
      return Status::InvalidArgument("write " + path_ + " @" + std::to_string(offset) + " +" +
                                     std::to_string(data.size()) + ": direct I/O needs offset, size and buffer aligned to " +
                                     std::to_string(kDirectIoAlignment) + " bytes");
    }
    GV_RETURN_IF_ERROR(fs_->BeginOp(MemOp::kWrite, "write " + path_ + " @" + std::to_string(offset) + " +" +
                                                      std::to_string(data.size())));
    MemFileSystem::Change change{MemFileSystem::Change::kWrite, offset, std::string(data)};
    auto& node = fs_->state_.inodes.at(inode_);
    MemFileSystem::ApplyChange(node.data, change);
    node.pending.push_back(std::move(change));
    return Status::Ok();
  }

  Result<std::size_t> ReadAt(std::uint64_t offset, std::size_t n, char* out) override {
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckHandle("read"));
    const auto& data = fs_->state_.inodes.at(inode_).data;
    if (offset >= data.size()) return std::size_t{0};
    const std::size_t count = std::min<std::size_t>(n, data.size() - offset);
    std::copy_n(data.data() + offset, count, out);
    return count;
  }

  Status Sync() override {
    std::function<void()> hook;
    {
      std::lock_guard lock(fs_->mu_);
      hook = fs_->sync_hook_;
    }
    if (hook) hook();
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckHandle("sync"));
    GV_RETURN_IF_ERROR(fs_->BeginOp(MemOp::kSync, "sync " + path_));
    auto& node = fs_->state_.inodes.at(inode_);
    node.durable = node.data;
    node.pending.clear();
    return Status::Ok();
  }

  // Durability is Sync's alone (pending writes stay lost at a crash), so
  // starting writeback early changes nothing here and is no crash point.
  Status StartWriteback(std::uint64_t, std::uint64_t) override {
    std::lock_guard lock(fs_->mu_);
    return CheckHandle("sync_file_range");
  }

  // Not an operation of the model (it changes no content): it only makes
  // later writes check their alignment, as O_DIRECT does.
  Status EnableDirectIo() override {
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckUsable("fcntl O_DIRECT"));
    if (!fs_->direct_io_supported_) {
      return Status::IOError("fcntl O_DIRECT " + path_ + ": Invalid argument (direct I/O not supported here)");
    }
    direct_ = true;
    return Status::Ok();
  }

  Status Allocate(std::uint64_t offset, std::uint64_t length) override {
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckUsable("allocate"));
    GV_RETURN_IF_ERROR(fs_->BeginOp(MemOp::kAllocate, "allocate " + path_ + " to " + std::to_string(offset + length)));
    auto& node = fs_->state_.inodes.at(inode_);
    if (offset + length > node.data.size()) {
      // Extending with zeros is a size change; modelled as a truncate upward.
      MemFileSystem::Change change{MemFileSystem::Change::kTruncate, offset + length, {}};
      MemFileSystem::ApplyChange(node.data, change);
      node.pending.push_back(std::move(change));
    }
    return Status::Ok();
  }

  Status Truncate(std::uint64_t size) override {
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckUsable("truncate"));
    GV_RETURN_IF_ERROR(fs_->BeginOp(MemOp::kTruncate, "truncate " + path_ + " to " + std::to_string(size)));
    MemFileSystem::Change change{MemFileSystem::Change::kTruncate, size, {}};
    auto& node = fs_->state_.inodes.at(inode_);
    MemFileSystem::ApplyChange(node.data, change);
    node.pending.push_back(std::move(change));
    return Status::Ok();
  }

  Result<std::uint64_t> Size() override {
    std::lock_guard lock(fs_->mu_);
    GV_RETURN_IF_ERROR(CheckHandle("size"));
    return static_cast<std::uint64_t>(fs_->state_.inodes.at(inode_).data.size());
  }

  Status Close() override {
    closed_ = true;
    return Status::Ok();
  }

 private:
  Status CheckHandle(const char* op) const {
    GV_RETURN_IF_ERROR(fs_->CheckAlive(std::string(op) + " " + path_));
    if (closed_) return Status::IOError(std::string(op) + " " + path_ + ": file is closed");
    if (epoch_ != fs_->state_.epoch) {
      return Status::IOError(std::string(op) + " " + path_ + ": handle opened before a simulated crash");
    }
    return Status::Ok();
  }
  Status CheckUsable(const char* op) const {
    GV_RETURN_IF_ERROR(CheckHandle(op));
    if (!writable_) return Status::IOError(std::string(op) + " " + path_ + ": opened read-only");
    return Status::Ok();
  }

  MemFileSystem* fs_;
  std::uint64_t inode_;
  std::uint64_t epoch_;
  std::string path_;
  bool writable_;
  bool closed_ = false;
  bool direct_ = false;  // EnableDirectIo: writes must be aligned
};

MemFileSystem::MemFileSystem() {
  for (const char* root : {".", "/"}) {
    state_.dirs.insert(root);
    state_.durable_dirs.insert(root);
  }
}

MemFileSystem::~MemFileSystem() = default;

Status MemFileSystem::CheckAlive(const std::string& what) const {
  if (crashed_) {
    return Status::IOError(what + ": crash injected at operation " + std::to_string(crash_at_));
  }
  return Status::Ok();
}

Status MemFileSystem::BeginOp(MemOp op, const std::string& what) {
  GV_RETURN_IF_ERROR(CheckAlive(what));
  ++op_count_;
  if (op_log_.size() < kMaxOpLog) op_log_.push_back(what);
  if (crash_at_ != 0 && op_count_ >= crash_at_) {
    crashed_ = true;
    return Status::IOError(what + ": crash injected at operation " + std::to_string(crash_at_));
  }
  auto it = fail_countdown_.find(op);
  if (it != fail_countdown_.end()) {
    if (--it->second == 0) {
      fail_countdown_.erase(it);
      return Status::IOError(what + ": injected " + MemOpName(op) + " failure");
    }
  }
  ++op_counts_[op];
  return Status::Ok();
}

void MemFileSystem::ApplyChange(std::string& data, const Change& change) {
  if (change.kind == Change::kTruncate) {
    data.resize(static_cast<std::size_t>(change.offset), '\0');
    return;
  }
  const std::size_t end = static_cast<std::size_t>(change.offset) + change.data.size();
  if (data.size() < end) data.resize(end, '\0');
  std::copy(change.data.begin(), change.data.end(), data.begin() + static_cast<std::ptrdiff_t>(change.offset));
}

Result<std::unique_ptr<File>> MemFileSystem::Open(const std::string& raw_path, OpenMode mode) {
  const std::string path = Normalize(raw_path);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("open " + path));
  auto it = state_.files.find(path);
  const bool exists = it != state_.files.end();
  if (state_.dirs.count(path)) return Status::IOError("open " + path + ": is a directory");
  std::uint64_t inode = 0;
  if (exists) {
    if (mode == OpenMode::kCreateNew) return Status::IOError("open " + path + ": file exists");
    inode = it->second;
  } else {
    if (mode == OpenMode::kReadOnly || mode == OpenMode::kReadWrite) {
      return Status::NotFound("open " + path + ": no such file");
    }
    if (!state_.dirs.count(ParentDir(path))) return Status::NotFound("open " + path + ": no such directory");
    GV_RETURN_IF_ERROR(BeginOp(MemOp::kCreate, "create " + path));
    inode = state_.next_inode++;
    state_.inodes[inode];
    state_.files[path] = inode;
  }
  return std::unique_ptr<File>(new MemFile(this, inode, state_.epoch, path, mode != OpenMode::kReadOnly));
}

Result<std::vector<std::string>> MemFileSystem::ListDir(const std::string& raw_dir) {
  const std::string dir = Normalize(raw_dir);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("list " + dir));
  if (!state_.dirs.count(dir)) return Status::NotFound("list " + dir + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [path, inode] : state_.files) {
    if (ParentDir(path) == dir) names.push_back(BaseName(path));
  }
  for (const auto& path : state_.dirs) {
    if (path != dir && path != "." && path != "/" && ParentDir(path) == dir) names.push_back(BaseName(path));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status MemFileSystem::Rename(const std::string& raw_from, const std::string& raw_to) {
  const std::string from = Normalize(raw_from), to = Normalize(raw_to);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("rename " + from));
  auto it = state_.files.find(from);
  if (it == state_.files.end()) return Status::NotFound("rename " + from + ": no such file");
  if (!state_.dirs.count(ParentDir(to))) return Status::NotFound("rename to " + to + ": no such directory");
  if (state_.dirs.count(to)) return Status::IOError("rename to " + to + ": is a directory");
  GV_RETURN_IF_ERROR(BeginOp(MemOp::kRename, "rename " + from + " -> " + to));
  const std::uint64_t inode = it->second;
  state_.files.erase(it);
  state_.files[to] = inode;
  return Status::Ok();
}

Status MemFileSystem::Remove(const std::string& raw_path) {
  const std::string path = Normalize(raw_path);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("remove " + path));
  auto it = state_.files.find(path);
  if (it == state_.files.end()) return Status::NotFound("remove " + path + ": no such file");
  GV_RETURN_IF_ERROR(BeginOp(MemOp::kRemove, "remove " + path));
  state_.files.erase(it);
  return Status::Ok();
}

Status MemFileSystem::CreateDir(const std::string& raw_path) {
  const std::string path = Normalize(raw_path);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("mkdir " + path));
  if (state_.dirs.count(path)) return Status::Ok();
  if (state_.files.count(path)) return Status::IOError("mkdir " + path + ": exists and is not a directory");
  if (!state_.dirs.count(ParentDir(path))) return Status::NotFound("mkdir " + path + ": no parent directory");
  GV_RETURN_IF_ERROR(BeginOp(MemOp::kCreateDir, "mkdir " + path));
  state_.dirs.insert(path);
  return Status::Ok();
}

Status MemFileSystem::SyncDir(const std::string& raw_path) {
  const std::string dir = Normalize(raw_path);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("syncdir " + dir));
  if (!state_.dirs.count(dir)) return Status::NotFound("syncdir " + dir + ": no such directory");
  GV_RETURN_IF_ERROR(BeginOp(MemOp::kSyncDir, "syncdir " + dir));
  // The durable entries of dir become exactly its live entries.
  for (auto it = state_.durable_files.begin(); it != state_.durable_files.end();) {
    it = ParentDir(it->first) == dir ? state_.durable_files.erase(it) : std::next(it);
  }
  for (const auto& [path, inode] : state_.files) {
    if (ParentDir(path) == dir) state_.durable_files[path] = inode;
  }
  for (auto it = state_.durable_dirs.begin(); it != state_.durable_dirs.end();) {
    const bool child = *it != dir && *it != "." && *it != "/" && ParentDir(*it) == dir;
    it = child && !state_.dirs.count(*it) ? state_.durable_dirs.erase(it) : std::next(it);
  }
  for (const auto& path : state_.dirs) {
    if (path != dir && ParentDir(path) == dir) state_.durable_dirs.insert(path);
  }
  return Status::Ok();
}

Result<bool> MemFileSystem::Exists(const std::string& raw_path) {
  const std::string path = Normalize(raw_path);
  std::lock_guard lock(mu_);
  GV_RETURN_IF_ERROR(CheckAlive("stat " + path));
  return state_.files.count(path) > 0 || state_.dirs.count(path) > 0;
}

void MemFileSystem::SimulateCrash(CrashMode mode, std::uint64_t seed) {
  std::lock_guard lock(mu_);
  Prng prng(seed);
  state_.files = state_.durable_files;
  state_.dirs = state_.durable_dirs;
  // A durable entry under a directory that itself did not survive is gone too.
  for (auto it = state_.files.begin(); it != state_.files.end();) {
    it = state_.dirs.count(ParentDir(it->first)) ? std::next(it) : state_.files.erase(it);
  }
  for (auto& [id, node] : state_.inodes) {
    std::string content = node.durable;
    if (mode == CrashMode::kKeepUnsyncedPrefix && !node.pending.empty()) {
      const std::size_t kept = prng.Index(node.pending.size() + 1);
      for (std::size_t i = 0; i < kept; ++i) ApplyChange(content, node.pending[i]);
      if (kept < node.pending.size() && node.pending[kept].kind == Change::kWrite) {
        Change torn = node.pending[kept];
        torn.data.resize(prng.Index(torn.data.size() + 1));
        ApplyChange(content, torn);
      }
    } else if (mode == CrashMode::kKeepUnsyncedSectors) {
      for (const Change& change : node.pending) {
        if (change.kind == Change::kTruncate) {
          if (prng.Chance(0.5)) ApplyChange(content, change);
          continue;
        }
        std::uint64_t pos = change.offset;
        const std::uint64_t end = change.offset + change.data.size();
        while (pos < end) {
          const std::uint64_t piece_end = std::min(end, (pos / kTornSectorBytes + 1) * kTornSectorBytes);
          if (prng.Chance(0.5)) {
            ApplyChange(content, Change{Change::kWrite, pos,
                                        change.data.substr(pos - change.offset, piece_end - pos)});
          }
          pos = piece_end;
        }
      }
    }
    node.data = content;
    node.durable = std::move(content);
    node.pending.clear();
  }
  ++state_.epoch;
  crashed_ = false;
  crash_at_ = 0;
  fail_countdown_.clear();
}

void MemFileSystem::CrashAtOperation(std::uint64_t k) {
  std::lock_guard lock(mu_);
  crash_at_ = k;
  if (k != 0 && op_count_ >= k) crashed_ = true;
}

void MemFileSystem::FailNth(MemOp op, std::uint64_t n) {
  std::lock_guard lock(mu_);
  if (n == 0) {
    fail_countdown_.erase(op);
  } else {
    fail_countdown_[op] = n;
  }
}

void MemFileSystem::ClearFaults() {
  std::lock_guard lock(mu_);
  fail_countdown_.clear();
  crash_at_ = 0;
  crashed_ = false;
}

void MemFileSystem::SetSyncHook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  sync_hook_ = std::move(hook);
}

void MemFileSystem::SetDirectIoSupported(bool supported) {
  std::lock_guard lock(mu_);
  direct_io_supported_ = supported;
}

std::uint64_t MemFileSystem::operation_count() const {
  std::lock_guard lock(mu_);
  return op_count_;
}

std::string MemFileSystem::DescribeOperation(std::uint64_t k) const {
  std::lock_guard lock(mu_);
  if (k == 0 || k > op_log_.size()) return "";
  return op_log_[k - 1];
}

std::uint64_t MemFileSystem::count(MemOp op) const {
  std::lock_guard lock(mu_);
  auto it = op_counts_.find(op);
  return it == op_counts_.end() ? 0 : it->second;
}

bool MemFileSystem::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}

std::unique_ptr<MemFileSystem> MemFileSystem::Clone() const {
  std::lock_guard lock(mu_);
  auto copy = std::make_unique<MemFileSystem>();
  copy->state_ = state_;
  copy->op_count_ = op_count_;
  copy->direct_io_supported_ = direct_io_supported_;
  return copy;
}

}  // namespace gv::fs
