#include "daemon/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gv::daemon {

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

Status CreateDirs(fs::FileSystem& fs, const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("empty directory path");
  auto exists = fs.Exists(dir);
  if (!exists.ok()) return exists.status();
  if (*exists) return Status::Ok();
  const std::string parent = fs::ParentDir(dir);
  if (parent != dir) GV_RETURN_IF_ERROR(CreateDirs(fs, parent));
  GV_RETURN_IF_ERROR(fs.CreateDir(dir));
  return fs.SyncDir(parent);
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir) {
  const std::string path = fs::JoinPath(dir, "LOCK");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno) +
                           " (does --data-dir exist and is it writable?)");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid_text[32] = {0};
    ssize_t n = ::pread(fd, pid_text, sizeof(pid_text) - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder = n > 0 ? std::string(pid_text, static_cast<std::size_t>(n)) : std::string("unknown");
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return Status::Unavailable("data directory " + dir + " is in use by another grapevine agent (pid " + holder +
                                 "); stop it or choose another --data-dir");
    }
    return Status::IOError("cannot lock " + path + ": " + std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd);
    return Status::IOError("cannot write " + path + ": " + std::strerror(err));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

Result<NodeId> LoadOrCreateNodeId(fs::FileSystem& fs, const std::string& dir, NodeId new_id) {
  const std::string path = fs::JoinPath(dir, "node.id");
  auto exists = fs.Exists(path);
  if (!exists.ok()) return exists.status();
  if (*exists) {
    auto text = fs::ReadFileToString(fs, path, 64);
    if (!text.ok()) return text.status();
    const std::string& t = *text;
    std::uint64_t value = 0;
    bool well_formed = t.size() == 17 && t[16] == '\n';
    for (std::size_t i = 0; well_formed && i < 16; ++i) {
      const char c = t[i];
      int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
      if (digit < 0) well_formed = false;
      value = (value << 4) | static_cast<std::uint64_t>(digit < 0 ? 0 : digit);
    }
    if (!well_formed || value == 0) {
      return Status::Corruption(path + " is damaged (expected 16 lowercase hex digits and a newline); restore it "
                                "from a backup, or remove the whole data directory to rejoin as a new member");
    }
    return NodeId(value);
  }
  if (!new_id.valid()) return Status::InvalidArgument("a new node id must not be 0");
  GV_RETURN_IF_ERROR(fs::WriteFileDurably(fs, path, new_id.ToString() + "\n"));
  return new_id;
}

}  // namespace gv::daemon
