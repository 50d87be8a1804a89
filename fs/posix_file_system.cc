#include "fs/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace gv::fs {
namespace {

Status ErrnoStatus(const char* op, const std::string& path, int err) {
  return Status::IOError(std::string(op) + " " + path + ": " + std::strerror(err));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { (void)Close(); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Status WriteAt(std::uint64_t offset, std::string_view data) override {
    if (fd_ < 0) return Status::IOError("write " + path_ + ": file is closed");
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        // A disk whose blocks are larger than kDirectIoAlignment refuses the
        // aligned write: go on through the page cache.
        const int err = errno;
        if (err == EINVAL && direct_ && SetDirect(false) == 0) continue;
        return ErrnoStatus("pwrite", path_, err);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
    return Status::Ok();
  }

  Result<std::size_t> ReadAt(std::uint64_t offset, std::size_t n, char* out) override {
    if (fd_ < 0) return Status::IOError("read " + path_ + ": file is closed");
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pread", path_, errno);
      }
      if (got == 0) break;  // end of file
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

  Status Sync() override {
    if (fd_ < 0) return Status::IOError("fdatasync " + path_ + ": file is closed");
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status StartWriteback(std::uint64_t offset, std::uint64_t length) override {
    if (fd_ < 0) return Status::IOError("sync_file_range " + path_ + ": file is closed");
    if (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(length), SYNC_FILE_RANGE_WRITE) != 0) {
      return ErrnoStatus("sync_file_range", path_, errno);
    }
    return Status::Ok();
  }

  Status EnableDirectIo() override {
    if (fd_ < 0) return Status::IOError("fcntl O_DIRECT " + path_ + ": file is closed");
    if (SetDirect(true) != 0) return ErrnoStatus("fcntl O_DIRECT", path_, errno);
    return Status::Ok();
  }

  Status Allocate(std::uint64_t offset, std::uint64_t length) override {
    if (fd_ < 0) return Status::IOError("fallocate " + path_ + ": file is closed");
    // posix_fallocate returns the error instead of setting errno.
    const int rc = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(length));
    if (rc != 0) return ErrnoStatus("fallocate", path_, rc);
    return Status::Ok();
  }

  Status Truncate(std::uint64_t size) override {
    if (fd_ < 0) return Status::IOError("ftruncate " + path_ + ": file is closed");
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return ErrnoStatus("ftruncate", path_, errno);
    return Status::Ok();
  }

  Result<std::uint64_t> Size() override {
    if (fd_ < 0) return Status::IOError("fstat " + path_ + ": file is closed");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    const int fd = fd_;
    fd_ = -1;
    // close() is not retried on EINTR: on Linux the descriptor is released anyway.
    if (::close(fd) != 0 && errno != EINTR) return ErrnoStatus("close", path_, errno);
    return Status::Ok();
  }

 private:
  // Sets or clears O_DIRECT on the open file (Linux allows F_SETFL to change
  // it); 0 or -1 with errno.
  int SetDirect(bool on) {
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0) return -1;
    if (::fcntl(fd_, F_SETFL, on ? (flags | O_DIRECT) : (flags & ~O_DIRECT)) != 0) return -1;
    direct_ = on;
    return 0;
  }

  int fd_;
  std::string path_;
  bool direct_ = false;
};

}  // namespace

Result<std::unique_ptr<File>> PosixFileSystem::Open(const std::string& path, OpenMode mode) {
  int flags = O_CLOEXEC;
  switch (mode) {
    case OpenMode::kReadOnly: flags |= O_RDONLY; break;
    case OpenMode::kReadWrite: flags |= O_RDWR; break;
    case OpenMode::kCreateNew: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    case OpenMode::kCreateOrOpen: flags |= O_RDWR | O_CREAT; break;
  }
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("open " + path + ": no such file");
    return ErrnoStatus("open", path, errno);
  }
  return std::unique_ptr<File>(new PosixFile(fd, path));
}

Result<std::vector<std::string>> PosixFileSystem::ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return Status::NotFound("opendir " + dir + ": no such directory");
    return ErrnoStatus("opendir", dir, errno);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus("readdir", dir, err);
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from + " -> " + to, errno);
  return Status::Ok();
}

Status PosixFileSystem::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::NotFound("unlink " + path + ": no such file");
    return ErrnoStatus("unlink", path, errno);
  }
  return Status::Ok();
}

Status PosixFileSystem::CreateDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) {
    if (errno == EEXIST) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::Ok();
      return Status::IOError("mkdir " + path + ": exists and is not a directory");
    }
    return ErrnoStatus("mkdir", path, errno);
  }
  return Status::Ok();
}

Status PosixFileSystem::SyncDir(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("open directory", path, errno);
  Status result = Status::Ok();
  if (::fsync(fd) != 0) result = ErrnoStatus("fsync directory", path, errno);
  ::close(fd);
  return result;
}

Result<bool> PosixFileSystem::Exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return ErrnoStatus("stat", path, errno);
}

}  // namespace gv::fs
