#include "common/huge_pages.h"

#include <sys/auxv.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace gv {

namespace {

constexpr std::string_view kTunable = "glibc.malloc.hugetlb";
constexpr const char* kVariable = "GLIBC_TUNABLES";
// Set for the one re-execution, removed by it: glibc drops GLIBC_TUNABLES
// for secure-execution programs (setuid, file capabilities such as
// cap_net_bind_service for DNS on port 53), so the tunable alone cannot
// tell the second run that it is the second.
constexpr const char* kReexecMarker = "GRAPEVINE_HUGE_PAGES_REEXEC";

// The value glibc takes for `name` in a GLIBC_TUNABLES string ("a=1:b=2"):
// the last one given; nullopt if absent.
std::optional<std::string_view> TunableValue(std::string_view tunables, std::string_view name) {
  std::optional<std::string_view> value;
  while (!tunables.empty()) {
    const std::size_t colon = tunables.find(':');
    const std::string_view item = tunables.substr(0, colon);
    const std::size_t equals = item.find('=');
    if (item.substr(0, equals) == name) {
      value = equals == std::string_view::npos ? std::string_view() : item.substr(equals + 1);
    }
    if (colon == std::string_view::npos) break;
    tunables.remove_prefix(colon + 1);
  }
  return value;
}

}  // namespace

std::optional<std::string> TunablesWithMallocHugePages(const char* current) {
  const std::string_view tunables = current == nullptr ? std::string_view() : std::string_view(current);
  if (TunableValue(tunables, kTunable)) return std::nullopt;
  std::string value(tunables);
  if (!value.empty()) value += ':';
  value += kTunable;
  value += "=1";
  return value;
}

void ReexecWithMallocHugePages(char** argv) {
  if (std::getenv(kReexecMarker) != nullptr) {
    ::unsetenv(kReexecMarker);  // this is the re-executed run; its children start afresh
    return;
  }
  // Secure execution ignores the tunable; a program run through the dynamic
  // loader (`ld-linux.so ./grapevine ...`, no interpreter: AT_BASE 0) would
  // re-execute the loader instead of itself.
  if (::getauxval(AT_SECURE) != 0 || ::getauxval(AT_BASE) == 0) return;
  const char* current = std::getenv(kVariable);
  const std::optional<std::string> value = TunablesWithMallocHugePages(current);
  if (!value) return;
  // The binary's own path, not /proc/self/exe: the kernel names the process
  // after the file executed (ps, pgrep, the journal would show "exe").
  std::error_code error;
  const std::string path = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error || path.empty()) return;
  const std::optional<std::string> previous = current == nullptr ? std::nullopt : std::optional<std::string>(current);
  if (::setenv(kVariable, value->c_str(), 1) != 0) return;
  if (::setenv(kReexecMarker, "1", 1) == 0) ::execv(path.c_str(), argv);
  // Still here: exec refused (or the marker could not be set). Carry on as started.
  ::unsetenv(kReexecMarker);
  if (previous) {
    ::setenv(kVariable, previous->c_str(), 1);
  } else {
    ::unsetenv(kVariable);
  }
}

std::string MallocHugePagesState() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return "sanitizer";  // the sanitizer's allocator, not glibc's, holds the heap
#else
  const char* current = std::getenv(kVariable);
  const std::optional<std::string_view> value =
      current == nullptr ? std::nullopt : TunableValue(std::string_view(current), kTunable);
  if (!value || *value == "0") return "off";
  if (*value != "1") return "glibc.malloc.hugetlb=" + std::string(*value);
  // "always [madvise] never": the selected mode is in brackets.
  std::ifstream file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(file, modes);
  if (modes.find("[madvise]") != std::string::npos || modes.find("[always]") != std::string::npos) return "on";
  return "unavailable";
#endif
}

}  // namespace gv
