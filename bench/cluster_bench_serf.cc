// cluster_bench: the Serf reference — N `serf agent` processes on 127.0.0.1,
// one `serf event` per write, an event handler on every agent that appends
// the wall-clock time it ran to a file.
//
// Time base: CLOCK_REALTIME read just before `serf event` is forked, and
// bash's $EPOCHREALTIME (the same clock, microseconds) read first thing in the
// handler. Both sides of the measurement include a process start (the
// `serf event` CLI, the handler's bash), so the Serf figures are a few
// milliseconds above Serf's pure gossip time; the CLI's own wall time is
// reported beside them.
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "bench/cluster_bench.h"

namespace gv::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kEventName = "bench";

// The handler: serf runs it through /bin/sh -c with the payload on stdin.
constexpr const char* kHandlerScript =
    "#!/bin/bash\n"
    "# cluster_bench's Serf event handler: appends \"<epoch seconds.micros> <payload>\" to $1.\n"
    "# The time is taken before anything else, so it is as close to delivery as a script gets.\n"
    "t=$EPOCHREALTIME\n"
    "read -r payload || true\n"
    "printf '%s %s\\n' \"$t\" \"$payload\" >> \"$1\"\n";

std::int64_t RealtimeNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Status EnsureDirectory(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return Status::IOError("cannot create directory " + path + ": " + error.message());
  return Status::Ok();
}

Result<std::string> WriteHandler(const std::string& dir) {
  const std::string path = dir + "/serf-handler.sh";
  std::ofstream out(path, std::ios::trunc);
  out << kHandlerScript;
  out.close();
  if (!out) return Status::IOError("cannot write " + path);
  if (chmod(path.c_str(), 0755) != 0) return Status::IOError("chmod " + path + ": " + std::strerror(errno));
  return path;
}

// payload -> delivery time (ns since the epoch), from one agent's events file.
// A line is "<seconds>.<micros> <payload>"; a torn last line (the handler is
// mid-append) is skipped and read again on the next poll.
std::map<std::string, std::int64_t> ReadEvents(const std::string& path) {
  std::map<std::string, std::int64_t> events;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no trailing newline yet: the append is not complete
    std::size_t dot = line.find('.');
    std::size_t space = line.find(' ');
    if (dot == std::string::npos || space == std::string::npos || dot > space || space - dot != 7) continue;
    std::int64_t seconds = std::strtoll(line.substr(0, dot).c_str(), nullptr, 10);
    std::int64_t micros = std::strtoll(line.substr(dot + 1, 6).c_str(), nullptr, 10);
    events.emplace(line.substr(space + 1), seconds * 1000000000 + micros * 1000);
  }
  return events;
}

}  // namespace

Result<std::size_t> SerfCluster::AliveMembers(const SerfAgent& agent) {
  auto run = RunCommand({options_.binary, "members", "-rpc-addr=" + agent.rpc, "-status=alive"},
                        std::chrono::seconds(10));
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) return Status::Unavailable("serf members on " + agent.rpc + ": " + run->output);
  std::size_t lines = 0;
  std::istringstream in(run->output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" alive") != std::string::npos) ++lines;
  }
  return lines;
}

Status SerfCluster::Start(const std::string& label, std::size_t count) {
  const std::string dir = options_.base_dir + "/" + label;
  GV_RETURN_IF_ERROR(EnsureDirectory(dir));
  auto handler = WriteHandler(dir);
  if (!handler.ok()) return handler.status();
  agents_.clear();
  for (std::size_t i = 0; i < count; ++i) {
    SerfAgent agent;
    char name[32];
    std::snprintf(name, sizeof(name), "serf%03zu", i + 1);
    agent.name = name;
    auto bind_port = ports_.Next();
    if (!bind_port.ok()) return bind_port.status();
    auto rpc_port = ports_.Next();
    if (!rpc_port.ok()) return rpc_port.status();
    agent.bind = "127.0.0.1:" + std::to_string(*bind_port);
    agent.rpc = "127.0.0.1:" + std::to_string(*rpc_port);
    agent.events_path = dir + "/" + agent.name + ".events";
    agent.log_path = dir + "/" + agent.name + ".log";
    std::vector<std::string> argv = {options_.binary,
                                     "agent",
                                     "-node=" + agent.name,
                                     "-bind=" + agent.bind,
                                     "-rpc-addr=" + agent.rpc,
                                     "-log-level=warn",
                                     std::string("-event-handler=user:") + kEventName + "=" + *handler + " " +
                                         agent.events_path};
    if (i > 0) argv.push_back("-join=" + agents_[0].bind);
    // LC_ALL=C: $EPOCHREALTIME uses the locale's decimal point.
    auto pid = processes_.Spawn(argv, SpawnOptions{agent.log_path, {"LC_ALL=C"}, ""});
    if (!pid.ok()) return pid.status();
    agent.pid = *pid;
    agents_.push_back(agent);
    if (i == 0) {
      // The seed's RPC must answer before anyone joins it (-join fails fast).
      const Clock::time_point deadline = Clock::now() + options_.ready_timeout;
      for (;;) {
        GV_RETURN_IF_ERROR(CheckAlive());
        auto members = AliveMembers(agent);
        if (members.ok() && *members == 1) break;
        if (Clock::now() > deadline) return Status::Unavailable("serf seed " + agent.name + " never answered RPC");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } else {
      std::this_thread::sleep_for(options_.spawn_interval);
    }
  }
  const Clock::time_point deadline = Clock::now() + options_.ready_timeout;
  for (;;) {
    GV_RETURN_IF_ERROR(CheckAlive());
    auto first = AliveMembers(agents_.front());
    auto last = AliveMembers(agents_.back());
    if (first.ok() && last.ok() && *first == count && *last == count) return Status::Ok();
    if (Clock::now() > deadline) {
      return Status::Unavailable("serf: members never reached " + std::to_string(count) + " alive (first sees " +
                                 (first.ok() ? std::to_string(*first) : first.status().ToString()) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Status SerfCluster::CheckAlive() {
  std::string report;
  for (const SerfAgent& agent : agents_) {
    if (!processes_.Alive(agent.pid)) {
      report += "\n  " + agent.name + " " + processes_.ExitDescription(agent.pid) + "; last lines of " +
                agent.log_path + ":\n" + TailOfFile(agent.log_path, 1500);
    }
  }
  if (report.empty()) return Status::Ok();
  return Status::Aborted("serf agent(s) exited:" + report);
}

int SerfCluster::Stop() { return processes_.TerminateAll(std::chrono::milliseconds(10000)); }

Result<PropagationResult> MeasureSerfPropagation(SerfCluster& cluster, const PropagationOptions& options, Prng& prng) {
  const std::vector<SerfAgent>& agents = cluster.agents();
  const std::size_t n = agents.size();
  PropagationResult result;
  result.agents = n;
  result.writes = options.writes;

  auto send_event = [&](const SerfAgent& agent, const std::string& payload) -> Result<std::int64_t> {
    const std::int64_t sent = RealtimeNanos();
    auto run = RunCommand({cluster.options().binary, "event", "-rpc-addr=" + agent.rpc, "-coalesce=false",
                           kEventName, payload},
                          std::chrono::seconds(10));
    if (!run.ok()) return run.status();
    if (run->exit_code != 0) return Status::Unavailable("serf event via " + agent.rpc + " failed: " + run->output);
    result.serf_cli_ms.push_back(std::chrono::duration<double, std::milli>(run->wall).count());
    return sent;
  };
  // How many agents have logged `payload`.
  auto count_seen = [&](const std::string& payload) {
    std::size_t seen = 0;
    for (const SerfAgent& agent : agents) seen += ReadEvents(agent.events_path).count(payload);
    return seen;
  };

  // Warm-up: one event every handler logs proves the handlers run.
  bool warmed_up = false;
  for (int attempt = 0; attempt < 5 && !warmed_up; ++attempt) {
    const std::string payload = "warmup-" + std::to_string(attempt);
    auto sent = send_event(agents[static_cast<std::size_t>(attempt) % n], payload);
    if (!sent.ok()) return sent.status();
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(15);
    while (!(warmed_up = count_seen(payload) == n) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    GV_RETURN_IF_ERROR(cluster.CheckAlive());
  }
  if (!warmed_up) return Status::Unavailable("serf: no warm-up event reached every agent's handler");
  result.serf_cli_ms.clear();

  std::vector<std::int64_t> sent_at;
  std::vector<std::string> payloads;
  for (std::size_t i = 0; i < options.writes; ++i) {
    const std::string payload = "w" + std::to_string(i);
    auto sent = send_event(agents[prng.Index(n)], payload);
    if (!sent.ok()) return sent.status();
    sent_at.push_back(*sent);
    payloads.push_back(payload);
    std::this_thread::sleep_for(std::chrono::milliseconds(
        prng.Range(options.spacing_min.count(), options.spacing_max.count())));
  }

  // Drain: poll the files until every agent logged every payload or the timeout passes.
  const Clock::time_point deadline = Clock::now() + options.drain_timeout;
  std::vector<std::map<std::string, std::int64_t>> events(n);
  for (;;) {
    std::size_t complete = 0;
    for (std::size_t a = 0; a < n; ++a) {
      events[a] = ReadEvents(agents[a].events_path);
      complete += std::all_of(payloads.begin(), payloads.end(),
                              [&](const std::string& p) { return events[a].count(p) == 1; })
                      ? 1
                      : 0;
    }
    if (complete == n || Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }

  for (std::size_t i = 0; i < payloads.size(); ++i) {
    std::int64_t last = 0;
    std::size_t missing = 0;
    for (std::size_t a = 0; a < n; ++a) {
      auto it = events[a].find(payloads[i]);
      if (it == events[a].end()) {
        ++missing;
      } else {
        last = std::max(last, it->second);
      }
    }
    if (missing > 0) {
      ++result.incomplete_writes;
      result.missing_deliveries += missing;
    } else {
      result.time_to_last_ms.push_back(static_cast<double>(last - sent_at[i]) / 1e6);
    }
  }
  GV_RETURN_IF_ERROR(cluster.CheckAlive());
  return result;
}

}  // namespace gv::bench
