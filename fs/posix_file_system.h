// PosixFileSystem: FileSystem over open/pwrite/pread/fdatasync/fallocate.
// Every error message names the operation, the path and strerror(errno).
#pragma once

#include "fs/file_system.h"

namespace gv::fs {

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<bool> Exists(const std::string& path) override;
};

}  // namespace gv::fs
