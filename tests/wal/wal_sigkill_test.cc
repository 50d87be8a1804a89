// A real process crash: wal_crash_writer appends in sync mode from several
// threads and prints each acknowledged LSN and payload digest; this test
// SIGKILLs it at seeded random moments, 50 times over the same data
// directory, and after each kill reopens the log and checks that every
// acknowledged record is present and intact.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "common/crc32c.h"
#include "common/prng.h"
#include "fs/posix_file_system.h"
#include "wal/wal.h"

#ifndef GV_CRASH_WRITER
#error "GV_CRASH_WRITER must name the wal_crash_writer executable"
#endif

using namespace gv;

namespace {

constexpr int kKills = 50;
constexpr std::uint64_t kSeed = 20261121;

// Runs the writer for about `run_ms`, SIGKILLs it, and returns everything it
// printed (complete lines only matter; a torn last line is ignored).
std::string RunAndKill(const std::string& dir, int threads, std::uint64_t seed, int run_ms) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    const std::string threads_arg = std::to_string(threads), seed_arg = std::to_string(seed);
    ::execl(GV_CRASH_WRITER, GV_CRASH_WRITER, dir.c_str(), threads_arg.c_str(), seed_arg.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ms);
  bool eof = false;
  while (!eof) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
    if (n <= 0) {
      eof = true;
    } else {
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::kill(pid, SIGKILL);
  // Lines written before the kill are still in the pipe.
  while (true) {
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  // Killed by us, not dead of its own (an exit means it hit an error).
  CHECK_MESSAGE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL), "writer exited with status " << status);
  return out;
}

}  // namespace

TEST_CASE("SIGKILL the sync-mode writer 50 times: every acknowledged record survives intact") {
  spdlog::set_level(spdlog::level::err);
  std::string tmpl = (std::filesystem::temp_directory_path() / "gv-wal-kill-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const std::string root = tmpl;
  const std::string dir = fs::JoinPath(root, "wal");
  Prng prng(kSeed);
  std::map<wal::Lsn, std::uint32_t> acked;  // across all runs
  std::size_t runs_with_acks = 0;
  for (int kill = 0; kill < kKills; ++kill) {
    const int threads = static_cast<int>(prng.Range(1, 4));
    const int run_ms = static_cast<int>(prng.Range(20, 400));
    CAPTURE(kSeed);
    CAPTURE(kill);
    CAPTURE(run_ms);
    const std::string out = RunAndKill(dir, threads, kSeed + static_cast<std::uint64_t>(kill), run_ms);
    std::size_t lines = 0;
    for (std::size_t pos = 0; pos < out.size();) {
      const std::size_t nl = out.find('\n', pos);
      if (nl == std::string::npos) break;  // torn last line: never counted
      const std::string line = out.substr(pos, nl - pos);
      pos = nl + 1;
      const std::size_t space = line.find(' ');
      REQUIRE(space != std::string::npos);
      const wal::Lsn lsn = std::stoull(line.substr(0, space));
      const auto crc = static_cast<std::uint32_t>(std::stoul(line.substr(space + 1)));
      // An LSN is never acknowledged twice with different content, even across runs.
      auto [it, inserted] = acked.emplace(lsn, crc);
      REQUIRE((inserted || it->second == crc));
      ++lines;
    }
    if (lines > 0) ++runs_with_acks;

    fs::PosixFileSystem fs;
    wal::WalOptions options;
    options.dir = dir;
    options.prepare_segments_in_background = false;
    std::map<wal::Lsn, std::uint32_t> present;
    auto log = wal::Wal::Open(fs, options, [&](wal::Lsn lsn, std::string_view payload) {
      present[lsn] = crc32c::Value(payload);
      return Status::Ok();
    });
    REQUIRE_MESSAGE(log.ok(), log.status().ToString());
    for (const auto& entry : acked) {
      const wal::Lsn lsn = entry.first;
      auto it = present.find(lsn);
      REQUIRE_MESSAGE(it != present.end(), "acknowledged LSN " << lsn << " is missing");
      REQUIRE_MESSAGE(it->second == entry.second, "acknowledged LSN " << lsn << " has the wrong content");
    }
    REQUIRE((*log)->Close().ok());
  }
  MESSAGE(acked.size() << " acknowledged records over " << kKills << " kills; " << runs_with_acks
                       << " runs acknowledged something");
  // The test is only meaningful if the writer got work done between kills.
  CHECK(runs_with_acks >= kKills / 2);
  std::filesystem::remove_all(root);
}
