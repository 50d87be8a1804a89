// members_bench: `make bench-members` and `make bench-members-idle` (issue 6).
//
//   failure detection  for N in --sizes: N grapevine agents, every agent lists
//                      N alive; then --kills rounds, each a kill -9 of a
//                      different non-seed agent (victims are NOT restarted:
//                      round k runs with N-k+1 live agents), timing how long
//                      until EVERY live agent's GET /v1/members lists the
//                      victim `failed`. The same for N Serf agents in the same
//                      run (its members RPC, as `serf members` uses), and the
//                      ratio of the two.
//   idle (--idle-minutes M)
//                      --idle-agents grapevine agents (default 40) idle for M
//                      minutes; every second every agent's member list is read
//                      and any member shown other than `alive` (suspect,
//                      failed, left, or missing) is a false report.
//
// Polling: each live agent is asked every --poll-ms (default 20 ms) until it
// shows the victim failed; a sweep asks the agents one after another, so an
// agent's detection time is known to within one sweep (printed). Performance
// is reported, never asserted: the exit status is non-zero only when a
// measurement could not be taken (an agent died that was not a victim, a
// cluster did not form, a victim was not declared failed everywhere within
// --detect-timeout-s).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench/cluster_bench.h"
#include "bench/report.h"
#include "bench/members_bench_serf_rpc.h"
#include "daemon/http_client.h"

namespace gv::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Issue 6: every other agent lists a kill -9'd agent failed within 2 s.
constexpr double kTargetDetectionMs = 2000;

struct Config {
  std::string grapevine = "build/grapevine";
  std::string serf = "serf";
  std::string base_dir;
  std::uint16_t base_port = 26000;
  std::uint64_t seed = 1;
  std::vector<std::size_t> sizes = {10, 40, 100};
  std::size_t kills = 5;
  int poll_ms = 20;
  int detect_timeout_s = 60;
  int settle_seconds = 3;
  bool no_serf = false;
  bool no_grapevine = false;
  std::string agent_log_level = "info";
  int idle_minutes = 0;
  std::size_t idle_agents = 40;
};

std::string Figure(double value, int decimals = 0) { return FormatFixed(value, decimals); }

double MillisSince(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// True once `pid` has exited (a zombie counts: the agents are our children and
// are reaped only when their cluster stops).
bool Exited(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos || name_end + 2 >= stat.size()) return true;
  const char state = stat[name_end + 2];
  return state == 'Z' || state == 'X';
}

// One cluster under test, grapevine or Serf, seen through what the benchmark
// needs: its agents' names and pids, and each agent's view of the members.
struct MemberView {
  // name -> status as agent `index` reports it.
  std::function<Result<std::map<std::string, std::string>>(std::size_t index)> all;
  // The status agent `index` reports for `name`, nullopt when it does not list it.
  std::function<Result<std::optional<std::string>>(std::size_t index, const std::string& name)> one;
};

struct Target {
  std::string system;  // "grapevine" or "serf"
  std::vector<std::string> names;
  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  MemberView view;
};

MemberView GrapevineView(const std::vector<GrapevineAgent>& agents) {
  auto clients = std::make_shared<std::vector<std::unique_ptr<cli::HttpClient>>>();
  for (const GrapevineAgent& agent : agents) {
    clients->push_back(std::make_unique<cli::HttpClient>(agent.http, ClientTimeout(5000)));
  }
  auto fetch = [clients](std::size_t index, const std::string& target) -> Result<std::map<std::string, std::string>> {
    cli::HttpClient& client = *(*clients)[index];
    auto response = client.Get(target);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return Status::Unavailable("GET http://" + client.address() + target + " answered " +
                                 std::to_string(response->status) + ": " + response->body.substr(0, 200));
    }
    nlohmann::json list = nlohmann::json::parse(response->body, nullptr, false);
    if (list.is_discarded() || !list.is_array()) {
      return Status::Corruption("GET http://" + client.address() + target + ": not a JSON array");
    }
    std::map<std::string, std::string> members;
    for (const auto& member : list) {
      if (!member.is_object() || !member.contains("name") || !member["name"].is_string() ||
          !member.contains("status") || !member["status"].is_string()) {
        return Status::Corruption("GET http://" + client.address() + target + ": a member without name or status");
      }
      members[member["name"].get<std::string>()] = member["status"].get<std::string>();
    }
    return members;
  };
  MemberView view;
  view.all = [fetch](std::size_t index) { return fetch(index, "/v1/members"); };
  // The failed list is short (the victims), so a poll stays cheap at 100 agents.
  view.one = [fetch](std::size_t index, const std::string& name) -> Result<std::optional<std::string>> {
    auto failed = fetch(index, "/v1/members?status=failed");
    if (!failed.ok()) return failed.status();
    auto it = failed->find(name);
    if (it == failed->end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
  return view;
}

MemberView SerfView(const std::vector<SerfAgent>& agents) {
  auto clients = std::make_shared<std::vector<std::unique_ptr<SerfRpcClient>>>();
  for (const SerfAgent& agent : agents) clients->push_back(std::make_unique<SerfRpcClient>(agent.rpc, 5000));
  MemberView view;
  view.all = [clients](std::size_t index) { return (*clients)[index]->Members(); };
  view.one = [clients](std::size_t index, const std::string& name) -> Result<std::optional<std::string>> {
    auto members = (*clients)[index]->Members(name);
    if (!members.ok()) return members.status();
    auto it = members->find(name);
    if (it == members->end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
  return view;
}

// An error naming every agent in `live` that has exited.
Status CheckLive(const Target& target, const std::set<std::size_t>& live) {
  std::string report;
  for (std::size_t i : live) {
    if (Exited(target.pids[i])) {
      report += "\n  " + target.names[i] + " (pid " + std::to_string(target.pids[i]) + ") exited; log " +
                target.logs[i] + ":\n" + TailOfFile(target.logs[i], 1500);
    }
  }
  if (report.empty()) return Status::Ok();
  return Status::Aborted(target.system + " agent(s) exited that were not killed by the benchmark:" + report);
}

// Waits until every live agent lists every live agent alive.
Status WaitAllAlive(const Target& target, const std::set<std::size_t>& live, std::chrono::seconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string problem;
  for (;;) {
    GV_RETURN_IF_ERROR(CheckLive(target, live));
    std::size_t complete = 0;
    for (std::size_t observer : live) {
      auto members = target.view.all(observer);
      if (!members.ok()) {
        problem = target.names[observer] + ": " + members.status().ToString();
        continue;
      }
      std::size_t alive = 0;
      for (std::size_t member : live) {
        auto it = members->find(target.names[member]);
        if (it != members->end() && it->second == "alive") ++alive;
      }
      if (alive == live.size()) {
        ++complete;
      } else {
        problem = target.names[observer] + " lists " + std::to_string(alive) + " of the " +
                  std::to_string(live.size()) + " live agents alive";
      }
    }
    if (complete == live.size()) return Status::Ok();
    if (Clock::now() > deadline) {
      return Status::Unavailable(target.system + ": after " + std::to_string(timeout.count()) + " s " +
                                 std::to_string(complete) + " of " + std::to_string(live.size()) +
                                 " agents list every live agent alive; e.g. " + problem);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

struct KillRound {
  std::string victim;
  double first_ms = 0;  // the first agent to list it failed
  double last_ms = 0;   // every live agent lists it failed
  double sweep_ms = 0;  // median time to ask every pending agent once
};

// Kills one live non-seed agent and times its detection by every other live agent.
Result<KillRound> MeasureKill(const Target& target, std::set<std::size_t>& live, Prng& prng, const Config& config) {
  std::vector<std::size_t> candidates;
  for (std::size_t i : live) {
    if (i != 0) candidates.push_back(i);  // agent 0 is the seed everyone joined through
  }
  if (candidates.empty()) return Status::InvalidArgument("no agent left to kill");
  const std::size_t victim = candidates[prng.Index(candidates.size())];
  KillRound round;
  round.victim = target.names[victim];
  live.erase(victim);

  std::set<std::size_t> pending = live;
  std::vector<double> sweeps;
  bool first_seen = false;
  const Clock::time_point killed = Clock::now();
  if (kill(target.pids[victim], SIGKILL) != 0) return Status::IOError("kill -9 " + round.victim + " failed");
  const Clock::time_point deadline = killed + std::chrono::seconds(config.detect_timeout_s);
  Clock::time_point next_sweep = killed;
  while (!pending.empty()) {
    next_sweep += std::chrono::milliseconds(config.poll_ms);
    const Clock::time_point sweep_start = Clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      auto status = target.view.one(*it, round.victim);
      if (!status.ok()) {
        GV_RETURN_IF_ERROR(CheckLive(target, live));
        return Status::Unavailable(target.system + ": polling " + target.names[*it] + ": " +
                                   status.status().ToString());
      }
      const Clock::time_point answered = Clock::now();
      if (status->has_value() && **status == "failed") {
        if (!first_seen) round.first_ms = MillisSince(killed, answered);
        first_seen = true;
        round.last_ms = MillisSince(killed, answered);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    sweeps.push_back(MillisSince(sweep_start, Clock::now()));
    if (pending.empty()) break;
    if (Clock::now() > deadline) {
      std::string names;
      for (std::size_t i : pending) names += " " + target.names[i];
      return Status::Unavailable(target.system + ": " + std::to_string(pending.size()) + " agents still do not list " +
                                 round.victim + " failed " + std::to_string(config.detect_timeout_s) +
                                 " s after kill -9:" + names);
    }
    std::this_thread::sleep_until(std::max(next_sweep, Clock::now()));
  }
  round.sweep_ms = Median(sweeps);
  GV_RETURN_IF_ERROR(CheckLive(target, live));
  return round;
}

struct SizeRow {
  std::size_t agents = 0;
  std::vector<KillRound> grapevine;
  std::vector<KillRound> serf;
};

std::vector<double> LastTimes(const std::vector<KillRound>& rounds) {
  std::vector<double> out;
  for (const KillRound& r : rounds) out.push_back(r.last_ms);
  return out;
}

std::string MedianMax(const std::vector<KillRound>& rounds) {
  if (rounds.empty()) return "n/a";
  Summary s = Summarize(LastTimes(rounds));
  return Figure(s.median) + " / " + Figure(s.max) + " ms";
}

class Runner {
 public:
  explicit Runner(Config config) : config_(std::move(config)), ports_(config_.base_port), prng_(config_.seed) {}
  int Run();

 private:
  void Fail(const std::string& what, const Status& status) {
    failures_.push_back(what + ": " + status.ToString());
    Line("# FAILED " + what + ": " + status.ToString());
  }
  GrapevineOptions AgentOptions() const {
    GrapevineOptions options;
    options.binary = config_.grapevine;
    options.base_dir = config_.base_dir;
    options.durability = "none";  // no writes here: the WAL's durability does not matter
    options.log_level = config_.agent_log_level;
    return options;
  }
  // Runs --kills rounds on a started cluster.
  std::vector<KillRound> KillRounds(const Target& target, std::size_t n);
  void RunDetection();
  void RunIdle();

  Config config_;
  PortAllocator ports_;
  Prng prng_;
  std::vector<std::string> failures_;
  std::vector<SizeRow> rows_;
};

std::vector<KillRound> Runner::KillRounds(const Target& target, std::size_t n) {
  std::vector<KillRound> rounds;
  std::set<std::size_t> live;
  for (std::size_t i = 0; i < n; ++i) live.insert(i);
  const std::string label = target.system + " N=" + std::to_string(n);
  Status formed = WaitAllAlive(target, live, std::chrono::seconds(180));
  if (!formed.ok()) {
    Fail(label + ": every agent lists every agent alive", formed);
    return rounds;
  }
  Line("# " + label + ": every agent lists " + std::to_string(n) + " alive; settling " +
       std::to_string(config_.settle_seconds) + " s");
  for (std::size_t k = 0; k < config_.kills && live.size() > 1; ++k) {
    std::this_thread::sleep_for(std::chrono::seconds(config_.settle_seconds));
    auto round = MeasureKill(target, live, prng_, config_);
    if (!round.ok()) {
      Fail(label + " kill " + std::to_string(k + 1), round.status());
      return rounds;
    }
    Line(target.system + " N=" + std::to_string(n) + " kill " + std::to_string(k + 1) + " (" + round->victim +
         ", " + std::to_string(live.size()) + " live): first agent " + Figure(round->first_ms) +
         " ms, every agent " + Figure(round->last_ms) + " ms (sweep " + Figure(round->sweep_ms, 1) + " ms)");
    rounds.push_back(*round);
    // The survivors must still list one another alive: a false failure caused
    // by the kill (or the load) shows here.
    Status still = WaitAllAlive(target, live, std::chrono::seconds(0));
    if (!still.ok()) Line("# " + label + " after kill " + std::to_string(k + 1) + ": " + still.message());
  }
  return rounds;
}

void Runner::RunDetection() {
  for (std::size_t n : config_.sizes) {
    SizeRow row;
    row.agents = n;
    if (!config_.no_grapevine) {
      Line("# starting " + std::to_string(n) + " grapevine agents, load " + LoadAverage());
      GrapevineCluster cluster(AgentOptions(), ports_);
      Status started = cluster.Start("gv-" + std::to_string(n), n);
      if (!started.ok()) {
        Fail("grapevine start, " + std::to_string(n) + " agents", started);
      } else {
        Target target{"grapevine", {}, {}, {}, GrapevineView(cluster.agents())};
        for (const GrapevineAgent& a : cluster.agents()) {
          target.names.push_back(a.name);
          target.pids.push_back(a.pid);
          target.logs.push_back(a.log_path);
        }
        row.grapevine = KillRounds(target, n);
      }
      cluster.Stop();
    }
    if (!config_.no_serf) {
      Line("# starting " + std::to_string(n) + " serf agents, load " + LoadAverage());
      SerfOptions options;
      options.binary = config_.serf;
      options.base_dir = config_.base_dir;
      SerfCluster cluster(options, ports_);
      Status started = cluster.Start("serf-" + std::to_string(n), n);
      if (!started.ok()) {
        Fail("serf start, " + std::to_string(n) + " agents", started);
      } else {
        Target target{"serf", {}, {}, {}, SerfView(cluster.agents())};
        for (const SerfAgent& a : cluster.agents()) {
          target.names.push_back(a.name);
          target.pids.push_back(a.pid);
          target.logs.push_back(a.log_path);
        }
        row.serf = KillRounds(target, n);
      }
      cluster.Stop();
    }
    std::string line = "members N=" + std::to_string(n) + ": time until every agent lists a kill -9'd agent failed, " +
                       "median / max over " + std::to_string(std::max(row.grapevine.size(), row.serf.size())) +
                       " kills: grapevine " + MedianMax(row.grapevine) + ", serf " + MedianMax(row.serf);
    if (!row.grapevine.empty() && !row.serf.empty()) {
      const double g = Median(LastTimes(row.grapevine));
      const double s = Median(LastTimes(row.serf));
      line += ", ratio grapevine/serf " + Figure(g / s, 3);
    }
    if (!row.grapevine.empty()) {
      const double g = Median(LastTimes(row.grapevine));
      line += std::string(" (target <= ") + Figure(kTargetDetectionMs) + " ms: " +
              (g <= kTargetDetectionMs ? "met" : "missed") + ")";
    }
    Line(line);
    rows_.push_back(std::move(row));
  }
}

// Sum of the locator's failure-detector counters over every agent.
Result<std::map<std::string, double>> ScrapeDetectorCounters(const std::vector<GrapevineAgent>& agents) {
  static const char* kNames[] = {"grapevine_suspicions_raised_total", "grapevine_suspicions_refuted_total",
                                 "grapevine_refutations_total", "grapevine_failures_declared_total",
                                 "grapevine_membership_keepalive_timeouts_total"};
  std::map<std::string, double> totals;
  for (const GrapevineAgent& agent : agents) {
    cli::HttpClient client(agent.http, ClientTimeout(5000));
    auto response = client.Get("/metrics");
    if (!response.ok()) return response.status();
    auto samples = ParsePrometheusText(response->body);
    if (!samples.ok()) return samples.status();
    for (const char* name : kNames) {
      if (HasMetric(*samples, name)) totals[name] += SumSamples(*samples, name);
    }
  }
  return totals;
}

void Runner::RunIdle() {
  const std::size_t n = config_.idle_agents;
  Line("# idle: starting " + std::to_string(n) + " grapevine agents for " + std::to_string(config_.idle_minutes) +
       " minutes, load " + LoadAverage());
  GrapevineCluster cluster(AgentOptions(), ports_);
  Status started = cluster.Start("gv-idle-" + std::to_string(n), n);
  if (!started.ok()) return Fail("idle: start", started);
  Target target{"grapevine", {}, {}, {}, GrapevineView(cluster.agents())};
  std::set<std::size_t> live;
  for (std::size_t i = 0; i < n; ++i) {
    const GrapevineAgent& a = cluster.agents()[i];
    target.names.push_back(a.name);
    target.pids.push_back(a.pid);
    target.logs.push_back(a.log_path);
    live.insert(i);
  }
  Status formed = WaitAllAlive(target, live, std::chrono::seconds(180));
  if (!formed.ok()) return Fail("idle: every agent lists every agent alive", formed);
  auto counters_before = ScrapeDetectorCounters(cluster.agents());
  if (!counters_before.ok()) return Fail("idle: /metrics", counters_before.status());

  // (observer, member) pairs ever reported in each non-alive state, and the
  // members concerned: one false suspicion seen by 39 observers is one member.
  std::map<std::string, std::set<std::pair<std::string, std::string>>> pairs;
  std::map<std::string, std::set<std::string>> members;
  std::uint64_t polls = 0;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + std::chrono::minutes(config_.idle_minutes);
  Clock::time_point next = start;
  while (Clock::now() < end) {
    Status alive = CheckLive(target, live);
    if (!alive.ok()) return Fail("idle", alive);
    for (std::size_t observer = 0; observer < n; ++observer) {
      auto list = target.view.all(observer);
      if (!list.ok()) return Fail("idle: members of " + target.names[observer], list.status());
      ++polls;
      for (std::size_t member = 0; member < n; ++member) {
        auto it = list->find(target.names[member]);
        const std::string status = it == list->end() ? "missing" : it->second;
        if (status == "alive") continue;
        if (pairs[status].insert({target.names[observer], target.names[member]}).second) {
          Line("# idle t=" + Figure(std::chrono::duration<double>(Clock::now() - start).count(), 1) + " s: " +
               target.names[observer] + " lists " + target.names[member] + " " + status);
        }
        members[status].insert(target.names[member]);
      }
    }
    next += std::chrono::seconds(1);
    std::this_thread::sleep_until(next);
  }
  auto counters_after = ScrapeDetectorCounters(cluster.agents());
  if (!counters_after.ok()) return Fail("idle: /metrics", counters_after.status());
  std::string counts;
  for (const char* status : {"suspect", "failed", "left", "missing"}) {
    counts += std::string(" ") + status + " " + std::to_string(members[status].size()) + " members (" +
              std::to_string(pairs[status].size()) + " observer/member pairs);";
  }
  Line("idle N=" + std::to_string(n) + ", " + std::to_string(config_.idle_minutes) + " min, " +
       std::to_string(polls) + " member-list reads: shown not alive:" + counts + " target 0 failed: " +
       (members["failed"].empty() ? "met" : "missed"));
  std::string deltas;
  for (const auto& [name, value] : *counters_after) {
    deltas += " " + name + " +" + Figure(value - (*counters_before)[name]);
  }
  Line("# idle: agents' detector counters over the run (all agents):" + deltas);
  cluster.Stop();
}

int Runner::Run() {
  InstallEmergencyCleanup();
  if (config_.base_dir.empty()) config_.base_dir = "/tmp/members-bench-" + std::to_string(getpid());
  auto grapevine = ResolveProgram(config_.grapevine);
  if (!grapevine.ok()) {
    Line("# " + grapevine.status().message() + " (make build builds it)");
    return 2;
  }
  config_.grapevine = *grapevine;
  if (!config_.no_serf && config_.idle_minutes == 0) {
    auto serf = ResolveProgram(config_.serf);
    if (!serf.ok()) {
      Line("# " + serf.status().message());
      return 2;
    }
    config_.serf = *serf;
  }
  Line("# members_bench " + UtcNow() + ", " + std::to_string(std::thread::hardware_concurrency()) +
       " cores, load " + LoadAverage() + ", data under " + config_.base_dir + ", seed " +
       std::to_string(config_.seed) + "; victims are not restarted");
  if (config_.idle_minutes > 0) {
    RunIdle();
  } else {
    RunDetection();
  }
  if (!failures_.empty()) {
    Line("# " + std::to_string(failures_.size()) + " measurement(s) could not be taken:");
    for (const std::string& f : failures_) Line("#   " + f);
    Line("# agent logs are kept under " + config_.base_dir);
    return 1;
  }
  std::error_code ignored;
  std::filesystem::remove_all(config_.base_dir, ignored);
  return 0;
}

}  // namespace
}  // namespace gv::bench

int main(int argc, char** argv) {
  gv::bench::Config config;
  CLI::App app{"members_bench: time from kill -9 of an agent until every other agent lists it failed, "
               "grapevine beside Serf (issue 6); --idle-minutes counts false failures in an idle cluster"};
  app.add_option("--grapevine", config.grapevine, "grapevine binary")->capture_default_str();
  app.add_option("--serf", config.serf, "serf binary (PATH lookup)")->capture_default_str();
  app.add_option("--base-dir", config.base_dir, "agents' data and logs (default /tmp/members-bench-PID)");
  app.add_option("--base-port", config.base_port, "first 127.0.0.1 port to try")->capture_default_str();
  app.add_option("--seed", config.seed, "picks the victims")->capture_default_str();
  app.add_option("--sizes", config.sizes, "cluster sizes")->delimiter(',')->capture_default_str();
  app.add_option("--kills", config.kills, "kill -9 rounds per size (different victims, not restarted)")
      ->capture_default_str();
  app.add_option("--poll-ms", config.poll_ms, "interval between sweeps over the agents' member lists")
      ->capture_default_str();
  app.add_option("--detect-timeout-s", config.detect_timeout_s, "give up on a kill after this long")
      ->capture_default_str();
  app.add_option("--settle-seconds", config.settle_seconds, "pause before each kill")->capture_default_str();
  app.add_flag("--no-serf", config.no_serf, "skip the Serf clusters");
  app.add_flag("--no-grapevine", config.no_grapevine, "skip the grapevine clusters");
  app.add_option("--agent-log-level", config.agent_log_level, "grapevine agents' --log-level")->capture_default_str();
  app.add_option("--idle-minutes", config.idle_minutes,
                 "instead of the kills: --idle-agents agents idle this long, counting false failures");
  app.add_option("--idle-agents", config.idle_agents, "cluster size of the idle run")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (config.poll_ms < 1 || config.detect_timeout_s < 1 || config.settle_seconds < 0 || config.idle_minutes < 0 ||
      config.sizes.empty() || config.idle_agents < 2) {
    std::fprintf(stderr, "members_bench: --poll-ms and --detect-timeout-s must be positive, --sizes non-empty, "
                         "--idle-agents at least 2\n");
    return 2;
  }
  for (std::size_t n : config.sizes) {
    if (n < 2 || n > 1000) {
      std::fprintf(stderr, "members_bench: each size must be 2..1000\n");
      return 2;
    }
  }
  return gv::bench::Runner(std::move(config)).Run();
}
