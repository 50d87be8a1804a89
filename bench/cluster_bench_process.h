// Process plumbing for cluster_bench: spawning agents (grapevine, serf, the
// h2o reference, wrk), free ports, and cleanup that holds even when the
// benchmark fails or is interrupted.
//
// Cleanup invariants:
// - every child runs with PR_SET_PDEATHSIG = SIGKILL, so it dies with the
//   benchmark process even if the benchmark is killed -9;
// - every spawned PID is recorded in a process-wide table that a SIGINT/SIGTERM
//   handler walks (kill(2) is async-signal-safe), and ProcessGroup's destructor
//   terminates (SIGTERM, then SIGKILL after a grace period) and reaps its own.
// Only PIDs this process spawned are ever signalled.
//
// Children are forked from the main thread only: PR_SET_PDEATHSIG fires when
// the forking *thread* exits, and the benchmark's worker threads are short-lived.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace gv::bench {

// Installs the SIGINT/SIGTERM handler that kills every registered child and
// exits with 128+signal. Call once at start-up.
void InstallEmergencyCleanup();

// Resolves a program name through PATH (names containing '/' are taken as is).
Result<std::string> ResolveProgram(const std::string& program);

struct SpawnOptions {
  std::string log_path;                  // stdout+stderr go here (truncated); empty = /dev/null
  std::vector<std::string> extra_env;    // "NAME=value", added to the inherited environment
  std::string working_directory;         // empty = inherit
};

// The children of one phase (one cluster, one server). Not thread-safe: used
// from the main thread.
class ProcessGroup {
 public:
  ProcessGroup() = default;
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // argv[0] must be an absolute path (see ResolveProgram).
  Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options);

  // True while `pid` (one of ours) has not exited; reaps it if it has, and
  // remembers its exit description for ExitDescription().
  bool Alive(pid_t pid);
  std::string ExitDescription(pid_t pid) const;

  // SIGTERM to every live child, wait up to `grace`, SIGKILL the rest, reap all.
  // Returns how many needed SIGKILL.
  int TerminateAll(std::chrono::milliseconds grace);

  // Terminates one child the same way.
  void Terminate(pid_t pid, std::chrono::milliseconds grace);

 private:
  void Reaped(pid_t pid, int wait_status);
  std::set<pid_t> live_;
  std::vector<std::pair<pid_t, std::string>> exited_;
};

struct CommandResult {
  int exit_code = -1;   // -1 when killed by a signal or by the timeout
  bool timed_out = false;
  std::string output;   // stdout and stderr, at most max_output_bytes
  std::chrono::nanoseconds wall{0};
};

// Runs argv (argv[0] absolute) to completion, capturing its output; kills it
// (SIGKILL) when `timeout` passes. Main thread only.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                 const std::vector<std::string>& extra_env = {},
                                 std::size_t max_output_bytes = 1u << 20);

// Hands out 127.0.0.1 ports that are free for both TCP and UDP at the time of
// the call, never the same port twice in one run. Ports come from a range below
// Linux's ephemeral range (32768+) so the many client connections the benchmark
// opens cannot take a port an agent is about to bind.
class PortAllocator {
 public:
  explicit PortAllocator(std::uint16_t first_port) : next_(first_port) {}
  Result<std::uint16_t> Next();

 private:
  std::uint16_t next_;
};

// CPU time (user + system) process `pid` has used so far, in seconds; 0 if it is gone.
double ProcessCpuSeconds(pid_t pid);

// The last `max_bytes` of a file (for error reports quoting an agent's log).
std::string TailOfFile(const std::string& path, std::size_t max_bytes);

}  // namespace gv::bench
