#include "tests/integration/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#ifndef GV_GRAPEVINE_BINARY
#error "GV_GRAPEVINE_BINARY must name the built grapevine binary (tests/integration/CMakeLists.txt)"
#endif

namespace gv::integration {

namespace {

// ---- failure tracking (for printing agent logs) ----

std::atomic<bool> g_test_failed{false};

// A doctest listener: records whether the running test case has failed, so
// the Cluster's destructor (which runs while the failure unwinds, or at the
// end of the test) knows to print the agents' logs.
struct FailureListener : public doctest::IReporter {
  explicit FailureListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { g_test_failed = false; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override { g_test_failed = true; }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& data) override {
    if (data.m_failed) g_test_failed = true;
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

// ---- ports ----

// Ports handed out by this process, so two agents of one test binary never
// get the same one even if the kernel offers it twice.
std::set<int>& PortsInUse() {
  static std::set<int> ports;
  return ports;
}

// Binds 127.0.0.1:0 with `type` (TCP or UDP), reads the port the kernel
// picked, closes. Another process could take it in between; the window is
// short and an agent that cannot bind fails its readiness wait with its log.
int FreeLoopbackPort(int type) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port > 0 && PortsInUse().insert(port).second) return port;
  }
  std::fprintf(stderr, "integration: no free loopback port after 100 attempts\n");
  std::abort();
}

std::string Loopback(int port) { return "127.0.0.1:" + std::to_string(port); }

std::string ReadTail(const std::string& path, std::size_t tail_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no log file " + path + ")";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > tail_bytes) {
    const std::size_t cut = text.size() - tail_bytes;
    text = "[... " + std::to_string(cut) + " earlier bytes cut ...]\n" + text.substr(cut);
  }
  return text;
}

}  // namespace

REGISTER_LISTENER("gv_integration_failures", 1, FailureListener);

bool CurrentTestFailed() { return g_test_failed.load(); }

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return "killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" + strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "wait status " + std::to_string(wait_status);
}

Status WaitFor(std::string_view what, milliseconds timeout, const std::function<bool(std::string&)>& probe,
               milliseconds poll_interval) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  std::string last_seen;
  for (;;) {
    if (probe(last_seen)) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(poll_interval);  // poll interval, not synchronisation
  }
  return Status::Aborted("timed out after " + std::to_string(timeout.count()) + " ms waiting for " +
                         std::string(what) + "; last seen: " + (last_seen.empty() ? "(nothing)" : last_seen));
}

// ---- Agent ----

std::string Agent::peer_address() const { return Loopback(peer_port_); }
std::string Agent::http_address() const { return Loopback(http_port_); }

std::unique_ptr<cli::HttpClient> Agent::NewClient(std::uint64_t timeout_ms) const {
  cli::HttpClientOptions options;
  options.timeout_ms = timeout_ms;
  return std::make_unique<cli::HttpClient>(http_address(), options);
}

// ---- Cluster ----

Cluster::Cluster(std::string label) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("gv-integ-" + label + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "integration: mkdtemp(%s): %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  root_ = tmpl;
}

Cluster::~Cluster() {
  // Kill by PID only: the processes this cluster started and has not reaped.
  for (auto& agent : agents_) {
    if (!agent->running()) continue;
    ::kill(agent->pid_, SIGKILL);
    auto status = WaitExit(*agent);
    if (!status.ok()) {
      std::fprintf(stderr, "integration: agent %s (pid %d) did not exit after SIGKILL: %s\n",
                   agent->name_.c_str(), static_cast<int>(agent->pid_), status.status().ToString().c_str());
    }
  }
  if (CurrentTestFailed()) PrintLogs();
  const char* keep = std::getenv("GV_INTEGRATION_KEEP");
  if (keep != nullptr && std::string_view(keep) == "1") {
    std::fprintf(stderr, "integration: kept %s (GV_INTEGRATION_KEEP=1)\n", root_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

Agent& Cluster::AddAgent(std::string name, AgentOptions options) {
  auto agent = std::make_unique<Agent>();
  agent->name_ = std::move(name);
  agent->options_ = std::move(options);
  agent->peer_port_ = FreeLoopbackPort(SOCK_STREAM);
  agent->http_port_ = FreeLoopbackPort(SOCK_STREAM);
  agent->dns_port_ = FreeLoopbackPort(SOCK_DGRAM);
  agent->data_dir_ = root_ + "/" + agent->name_;
  // The agent wants an existing data dir (it does not create the parent chain).
  std::error_code ec;
  std::filesystem::create_directories(agent->data_dir_, ec);
  if (ec) {
    std::fprintf(stderr, "integration: mkdir %s: %s\n", agent->data_dir_.c_str(), ec.message().c_str());
    std::abort();
  }
  agent->log_path_ = root_ + "/" + agent->name_ + ".log";
  agent->http_ = agent->NewClient();
  agents_.push_back(std::move(agent));
  return *agents_.back();
}

Status Cluster::Start(Agent& agent, const std::vector<const Agent*>& seeds) {
  agent.join_.clear();
  for (const Agent* seed : seeds) agent.join_.push_back(seed->peer_address());
  return Restart(agent);
}

Status Cluster::Restart(Agent& agent) {
  if (agent.running()) return Status::InvalidArgument("agent " + agent.name_ + " is already running");
  GV_RETURN_IF_ERROR(Spawn(agent));
  return WaitReady(agent);
}

Status Cluster::Spawn(Agent& agent) {
  std::vector<std::string> args = {GV_GRAPEVINE_BINARY,
                                   "agent",
                                   "--name",
                                   agent.name_,
                                   "--data-dir",
                                   agent.data_dir_,
                                   "--bind",
                                   agent.peer_address(),
                                   "--http",
                                   agent.http_address(),
                                   "--dns",
                                   Loopback(agent.dns_port_),
                                   "--cluster",
                                   agent.options_.cluster,
                                   "--durability",
                                   agent.options_.durability,
                                   "--log-level",
                                   agent.options_.log_level,
                                   // 64 MiB default segments are zero-filled: slow for tests.
                                   "--wal-segment-bytes",
                                   "8388608"};
  if (!agent.join_.empty()) {
    std::string joined;
    for (const auto& seed : agent.join_) joined += (joined.empty() ? "" : ",") + seed;
    args.push_back("--join");
    args.push_back(joined);
  }
  for (const auto& extra : agent.options_.extra_args) args.push_back(extra);

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls until exec.
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int log_fd = ::open(agent.log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::IOError("open " + agent.log_path_ + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    ::close(log_fd);
    return Status::IOError(std::string("open /dev/null: ") + std::strerror(errno));
  }
  {
    std::string banner = "==== integration: starting";
    for (const auto& arg : args) banner += " " + arg;
    banner += "\n";
    if (::write(log_fd, banner.data(), banner.size()) < 0) {
      // The banner is for humans; the agent's own output matters more.
    }
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(null_fd);
    return Status::IOError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child. If the test binary dies (crash, ctest timeout), so does the agent.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // No test socket (for instance a fake peer's) may stay open in the agent.
    ::close_range(3, ~0u, 0);
    ::execv(argv[0], argv.data());
    const char msg[] = "integration: execv failed\n";
    if (::write(2, msg, sizeof(msg) - 1) < 0) ::_exit(127);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  agent.pid_ = pid;
  // A new process: the old keep-alive connection (if any) is dead.
  agent.http_ = agent.NewClient();
  return Status::Ok();
}

Status Cluster::WaitReady(Agent& agent) {
  std::string exited;
  Status ready = WaitFor(
      "agent " + agent.name_ + " to answer GET /v1/status on " + agent.http_address(), kStartTimeout,
      [&](std::string& last_seen) {
        int wait_status = 0;
        const pid_t r = ::waitpid(agent.pid_, &wait_status, WNOHANG);
        if (r == agent.pid_) {
          agent.pid_ = 0;
          exited = DescribeWaitStatus(wait_status);
          return true;  // stop polling: it will never become ready
        }
        auto client = agent.NewClient(2000);
        auto response = client->Get("/v1/status");
        if (!response.ok()) {
          last_seen = response.status().ToString();
          return false;
        }
        if (response->status != 200) {
          last_seen = "HTTP " + std::to_string(response->status) + ": " + response->body;
          return false;
        }
        auto json = nlohmann::json::parse(response->body, nullptr, false);
        if (json.is_discarded() || !json.contains("node_id") || !json["node_id"].is_string()) {
          last_seen = "status without a node_id: " + response->body;
          return false;
        }
        agent.node_id_ = json["node_id"].get<std::string>();
        return true;
      },
      milliseconds(50));
  if (!exited.empty()) {
    return Status::Aborted("agent " + agent.name_ + " " + exited + " before it was ready; log " + agent.log_path_);
  }
  if (!ready.ok()) return Status::Aborted(ready.message() + "; log " + agent.log_path_);
  return Status::Ok();
}

Result<std::vector<Agent*>> Cluster::StartCluster(std::size_t count, const AgentOptions& options,
                                                  std::string_view prefix) {
  std::vector<Agent*> started;
  std::vector<const Agent*> seeds;
  for (std::size_t i = 0; i < count; ++i) {
    Agent& agent = AddAgent(std::string(prefix) + std::to_string(i), options);
    GV_RETURN_IF_ERROR(Start(agent, seeds));
    started.push_back(&agent);
    seeds.push_back(&agent);
  }
  if (count < 2) return started;
  // Converged enough for a test to kill one agent: with 3 or more agents no
  // agent hangs on a single peer (a node whose only link dies right after its
  // JOIN is isolated until it rejoins, and tests would measure that instead).
  const std::size_t want = std::min<std::size_t>(2, count - 1);
  for (Agent* agent : started) {
    GV_RETURN_IF_ERROR(WaitFor("agent " + agent->name() + " to have " + std::to_string(want) + " active peer(s)",
                               kConvergeTimeout, [&](std::string& last_seen) {
                                 auto view = ActiveView(*agent);
                                 if (!view.ok()) {
                                   last_seen = view.status().ToString();
                                   return false;
                                 }
                                 last_seen = std::to_string(view->size()) + " active peers";
                                 return view->size() >= want;
                               }));
  }
  return started;
}

Result<int> Cluster::WaitExit(Agent& agent, milliseconds timeout) {
  if (!agent.running()) return Status::InvalidArgument("agent " + agent.name_ + " is not running");
  int wait_status = 0;
  Status waited = WaitFor("agent " + agent.name_ + " (pid " + std::to_string(agent.pid_) + ") to exit", timeout,
                          [&](std::string& last_seen) {
                            const pid_t r = ::waitpid(agent.pid_, &wait_status, WNOHANG);
                            if (r == agent.pid_) return true;
                            last_seen = r == 0 ? "still running" : std::string("waitpid: ") + std::strerror(errno);
                            return false;
                          },
                          milliseconds(10));
  if (!waited.ok()) return waited;
  agent.pid_ = 0;
  return wait_status;
}

Status Cluster::Kill(Agent& agent) {
  if (!agent.running()) return Status::InvalidArgument("agent " + agent.name_ + " is not running");
  if (::kill(agent.pid_, SIGKILL) != 0) return Status::IOError(std::string("kill: ") + std::strerror(errno));
  auto status = WaitExit(agent);
  if (!status.ok()) return status.status();
  return Status::Ok();
}

Result<int> Cluster::Terminate(Agent& agent) {
  if (!agent.running()) return Status::InvalidArgument("agent " + agent.name_ + " is not running");
  if (::kill(agent.pid_, SIGTERM) != 0) return Status::IOError(std::string("kill: ") + std::strerror(errno));
  return WaitExit(agent);
}

void Cluster::PrintLogs(std::size_t tail_bytes) const {
  for (const auto& agent : agents_) {
    std::cerr << "======== log of agent " << agent->name_ << " (" << agent->log_path_ << ", node "
              << agent->node_id_ << ") ========\n"
              << ReadTail(agent->log_path_, tail_bytes) << "\n";
  }
  std::cerr << "======== end of agent logs ========" << std::endl;
}

// ---- HTTP helpers ----

Result<nlohmann::json> GetJson(cli::HttpClient& client, std::string_view target) {
  auto response = client.Get(target);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Aborted("GET " + std::string(target) + " on " + client.address() + " answered " +
                           std::to_string(response->status) + ": " + response->body);
  }
  auto json = nlohmann::json::parse(response->body, nullptr, false);
  if (json.is_discarded()) return Status::Corruption("GET " + std::string(target) + ": not JSON: " + response->body);
  return json;
}

Result<nlohmann::json> AgentStatus(Agent& agent) { return GetJson(agent.http(), "/v1/status"); }

Result<std::vector<std::string>> ActiveView(Agent& agent) {
  auto status = AgentStatus(agent);
  if (!status.ok()) return status.status();
  const nlohmann::json& json = *status;
  if (!json.contains("active") || !json["active"].is_array()) {
    return Status::Corruption("/v1/status of " + agent.name() + " has no \"active\" array: " + json.dump());
  }
  std::vector<std::string> ids;
  for (const auto& id : json["active"]) {
    if (!id.is_string()) return Status::Corruption("/v1/status \"active\" holds a non-string: " + json.dump());
    ids.push_back(id.get<std::string>());
  }
  return ids;
}

Status Put(cli::HttpClient& client, std::string_view key, std::string_view value) {
  auto response = client.Request("PUT", "/v1/kv/" + cli::EncodeKeyPath(key), value);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Aborted("PUT " + std::string(key) + " on " + client.address() + " answered " +
                           std::to_string(response->status) + ": " + response->body);
  }
  return Status::Ok();
}

Status Delete(cli::HttpClient& client, std::string_view key) {
  auto response = client.Request("DELETE", "/v1/kv/" + cli::EncodeKeyPath(key));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Aborted("DELETE " + std::string(key) + " on " + client.address() + " answered " +
                           std::to_string(response->status) + ": " + response->body);
  }
  return Status::Ok();
}

Result<std::optional<std::string>> GetRaw(cli::HttpClient& client, std::string_view key) {
  auto response = client.Get("/v1/kv/" + cli::EncodeKeyPath(key) + "?raw");
  if (!response.ok()) return response.status();
  if (response->status == 404) return std::optional<std::string>();
  if (response->status != 200) {
    return Status::Aborted("GET " + std::string(key) + "?raw on " + client.address() + " answered " +
                           std::to_string(response->status) + ": " + response->body);
  }
  return std::optional<std::string>(std::move(response->body));
}

Status WaitForValue(const std::vector<Agent*>& agents, std::string_view key,
                    const std::optional<std::string>& expected, milliseconds timeout) {
  for (Agent* agent : agents) {
    GV_RETURN_IF_ERROR(WaitFor(
        "agent " + agent->name() + " to read key '" + std::string(key) + "' as " +
            (expected ? "'" + expected->substr(0, 64) + "'" : std::string("absent")),
        timeout, [&](std::string& last_seen) {
          auto value = GetRaw(agent->http(), key);
          if (!value.ok()) {
            last_seen = value.status().ToString();
            return false;
          }
          last_seen = value->has_value() ? "'" + (*value)->substr(0, 64) + "'" : "absent (404)";
          return *value == expected;
        }));
  }
  return Status::Ok();
}

// ---- metrics ----

namespace {

// Parses `a="x",b="y\"z"` into a map (label values unescaped).
bool ParseLabels(std::string_view text, std::map<std::string, std::string>& out) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
    std::string name(text.substr(i, eq - i));
    std::string value;
    std::size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value.push_back(text[j] == 'n' ? '\n' : text[j]);
      } else {
        value.push_back(text[j]);
      }
    }
    if (j >= text.size()) return false;
    out[std::move(name)] = std::move(value);
    i = j + 1;
    if (i < text.size() && text[i] == ',') ++i;
  }
  return true;
}

}  // namespace

Result<double> MetricValue(std::string_view exposition, std::string_view name,
                           const std::map<std::string, std::string>& labels) {
  double sum = 0;
  bool found = false;
  std::size_t pos = 0;
  while (pos < exposition.size()) {
    std::size_t end = exposition.find('\n', pos);
    if (end == std::string_view::npos) end = exposition.size();
    const std::string_view line = exposition.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos || line.substr(0, name_end) != name) continue;
    std::map<std::string, std::string> sample_labels;
    std::size_t value_start = name_end;
    if (line[name_end] == '{') {
      const std::size_t close = line.rfind('}');
      if (close == std::string_view::npos || close < name_end) {
        return Status::Corruption("bad metrics line: " + std::string(line));
      }
      if (!ParseLabels(line.substr(name_end + 1, close - name_end - 1), sample_labels)) {
        return Status::Corruption("bad labels in metrics line: " + std::string(line));
      }
      value_start = close + 1;
    }
    bool matches = true;
    for (const auto& [label, value] : labels) {
      auto it = sample_labels.find(label);
      if (it == sample_labels.end() || it->second != value) matches = false;
    }
    if (!matches) continue;
    std::string value_text(line.substr(value_start));
    const std::size_t first = value_text.find_first_not_of(' ');
    if (first == std::string::npos) return Status::Corruption("metrics line without value: " + std::string(line));
    value_text = value_text.substr(first);
    const std::size_t space = value_text.find(' ');  // an optional timestamp follows
    if (space != std::string::npos) value_text.resize(space);
    char* parse_end = nullptr;
    const double value = std::strtod(value_text.c_str(), &parse_end);
    if (parse_end == value_text.c_str()) return Status::Corruption("bad metrics value: " + std::string(line));
    sum += value;
    found = true;
  }
  if (!found) {
    std::string wanted(name);
    for (const auto& [label, value] : labels) wanted += " " + label + "=\"" + value + "\"";
    return Status::NotFound("no sample of metric " + wanted + " in /metrics");
  }
  return sum;
}

Result<double> ScrapeMetric(Agent& agent, std::string_view name, const std::map<std::string, std::string>& labels) {
  auto response = agent.http().Get("/metrics");
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Aborted("GET /metrics on " + agent.name() + " answered " + std::to_string(response->status));
  }
  return MetricValue(response->body, name, labels);
}

Result<double> ScrapeMetricOrZero(Agent& agent, std::string_view name,
                                  const std::map<std::string, std::string>& labels) {
  auto value = ScrapeMetric(agent, name, labels);
  if (!value.ok() && value.status().IsNotFound()) return 0.0;
  return value;
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, milliseconds timeout) {
  if (argv.empty()) return Status::InvalidArgument("RunCommand: empty argv");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return Status::IOError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  CommandResult result;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{pipe_fds[0], POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::Aborted(argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms; output: " +
                           result.output);
  }
  result.exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  return result;
}

Result<CommandResult> RunGrapevine(const std::vector<std::string>& args, milliseconds timeout) {
  std::vector<std::string> argv = {GV_GRAPEVINE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

}  // namespace gv::integration
