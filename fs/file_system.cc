#include "fs/file_system.h"

namespace gv::fs {

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty()) return std::string(name);
  if (out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

std::string ParentDir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return std::string(path);
  return std::string(path.substr(slash + 1));
}

Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path, std::uint64_t max_bytes) {
  auto file = fs.Open(path, OpenMode::kReadOnly);
  if (!file.ok()) return file.status();
  auto size = (*file)->Size();
  if (!size.ok()) return size.status();
  if (*size > max_bytes) {
    return Status::TooLarge(path + ": " + std::to_string(*size) + " bytes, limit " + std::to_string(max_bytes));
  }
  std::string out(static_cast<std::size_t>(*size), '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    auto n = (*file)->ReadAt(done, out.size() - done, out.data() + done);
    if (!n.ok()) return n.status();
    if (*n == 0) break;  // shrank while reading
    done += *n;
  }
  out.resize(done);
  return out;
}

Status WriteFileDurably(FileSystem& fs, const std::string& path, std::string_view bytes) {
  const std::string temp = path + ".tmp";
  {
    auto file = fs.Open(temp, OpenMode::kCreateOrOpen);
    if (!file.ok()) return file.status();
    GV_RETURN_IF_ERROR((*file)->Truncate(0));
    GV_RETURN_IF_ERROR((*file)->WriteAt(0, bytes));
    GV_RETURN_IF_ERROR((*file)->Sync());
    GV_RETURN_IF_ERROR((*file)->Close());
  }
  GV_RETURN_IF_ERROR(fs.Rename(temp, path));
  return fs.SyncDir(ParentDir(path));
}

}  // namespace gv::fs
