// grapevine demo: a local cluster of N agents on 127.0.0.1, each a child
// process of this binary (`grapevine agent ...`), with a little seeded config.
//
// Process handling:
// - SIGINT, SIGTERM and SIGCHLD are blocked in the launcher and taken
//   synchronously with sigtimedwait(), so no handler runs and nothing races.
// - Each agent runs in its own process group, so a Ctrl-C in the terminal
//   reaches only the launcher, which then sends exactly one SIGTERM to each
//   agent (the agent treats a second one as "exit at once"). Each agent also
//   gets SIGTERM from the kernel if the launcher dies (PR_SET_PDEATHSIG), so
//   a killed launcher leaves no agent behind.
// - Every wait is bounded: start-up, replication of the seed keys, shutdown
//   (SIGTERM, then SIGKILL after a grace period).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "daemon/cli_common.h"
#include "daemon/commands.h"
#include "daemon/http_client.h"

namespace gv::cli {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kMaxNodes = 100;
constexpr auto kStartTimeout = std::chrono::seconds(60);
constexpr auto kReplicationTimeout = std::chrono::seconds(30);
constexpr auto kStopGrace = std::chrono::seconds(10);
constexpr auto kPollInterval = std::chrono::milliseconds(100);
constexpr std::uint64_t kProbeTimeoutMs = 1000;

// The seeded config: written on node1, read back from every node.
const std::vector<std::pair<std::string, std::string>> kSeedKeys = {
    {"config/app/feature-x", "enabled"},
    {"config/app/max-connections", "100"},
    {"config/db/url", "postgres://db.internal:5432/app"},
    {"config/db/pool-size", "20"},
    {"config/web/greeting", "hello from grapevine"},
};

struct DemoFlags {
  int nodes = 5;
  std::string base_dir;
  std::string durability;
};

struct Node {
  std::string name;
  std::string dir;
  int bind_port = 0;
  int http_port = 0;
  int dns_port = 0;
  pid_t pid = -1;
  bool running = false;
  int wait_status = 0;

  std::string bind() const { return "127.0.0.1:" + std::to_string(bind_port); }
  std::string http() const { return "127.0.0.1:" + std::to_string(http_port); }
  std::string dns() const { return "127.0.0.1:" + std::to_string(dns_port); }
  std::string log() const { return dir + "/agent.log"; }
};

std::string Errno() { return std::strerror(errno); }

// Picks `tcp` free TCP ports and `udp` free UDP ports on 127.0.0.1 by binding
// port 0. All sockets stay open until every port is chosen, so the ports are
// distinct; they are free again once this returns (a small window remains in
// which another process could take one: the agent then fails to bind and the
// launcher reports it with the agent's log).
Result<std::pair<std::vector<int>, std::vector<int>>> PickPorts(int tcp, int udp) {
  std::vector<int> fds;
  auto close_all = [&] {
    for (int fd : fds) ::close(fd);
  };
  std::vector<int> tcp_ports;
  std::vector<int> udp_ports;
  for (int i = 0; i < tcp + udp; ++i) {
    const bool is_tcp = i < tcp;
    int fd = ::socket(AF_INET, (is_tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      close_all();
      return Status::IOError("socket() failed while picking free ports: " + Errno());
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close_all();
      return Status::IOError("cannot bind 127.0.0.1:0 to pick a free port: " + Errno());
    }
    (is_tcp ? tcp_ports : udp_ports).push_back(ntohs(addr.sin_port));
  }
  close_all();
  return std::make_pair(std::move(tcp_ports), std::move(udp_ports));
}

// The last `max_lines` lines of a file (at most its last 8 KiB).
std::string Tail(const std::string& path, int max_lines) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "  | (no log at " + path + ": " + Errno() + ")\n";
  struct stat st {};
  ::fstat(fd, &st);
  const off_t from = st.st_size > 8192 ? st.st_size - 8192 : 0;
  std::string text(static_cast<std::size_t>(st.st_size - from), '\0');
  ssize_t n = ::pread(fd, text.data(), text.size(), from);
  ::close(fd);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  if (text.empty()) return "  | (the log is empty)\n";
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string out;
  const std::size_t first = lines.size() > static_cast<std::size_t>(max_lines) ? lines.size() - max_lines : 0;
  for (std::size_t i = first; i < lines.size(); ++i) out += "  | " + lines[i] + "\n";
  return out;
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(wait_status)) + " (" +
           strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "status " + std::to_string(wait_status);
}

class Launcher {
 public:
  Launcher(DemoFlags flags, std::string exe, std::string base_dir)
      : flags_(std::move(flags)), exe_(std::move(exe)), base_dir_(std::move(base_dir)) {}

  int Run() {
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, &original_mask_);
    int rc = RunBlocked();
    sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
    return rc;
  }

 private:
  int RunBlocked() {
    auto ports = PickPorts(2 * flags_.nodes, flags_.nodes);
    if (!ports.ok()) return Fail(ports.status().message());
    for (int i = 0; i < flags_.nodes; ++i) {
      Node n;
      n.name = "node" + std::to_string(i + 1);
      n.dir = base_dir_ + "/" + n.name;
      n.bind_port = ports->first[2 * i];
      n.http_port = ports->first[2 * i + 1];
      n.dns_port = ports->second[i];
      std::error_code ec;
      std::filesystem::create_directories(n.dir, ec);
      if (ec) return Fail("cannot create " + n.dir + ": " + ec.message());
      nodes_.push_back(std::move(n));
    }
    std::printf("grapevine demo: starting %d agent(s) on 127.0.0.1, data under %s\n", flags_.nodes, base_dir_.c_str());
    std::fflush(stdout);

    // node1 first: it is every other node's seed, so they find it listening.
    if (!Spawn(nodes_[0])) return StopAll(1);
    if (int rc = WaitReady(0, 1); rc != 0) return rc;
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      if (!Spawn(nodes_[i])) return StopAll(1);
    }
    if (int rc = WaitReady(1, nodes_.size()); rc != 0) return rc;
    std::printf("grapevine demo: all %zu agents answer; writing the seed config on %s\n", nodes_.size(),
                nodes_[0].name.c_str());
    std::fflush(stdout);
    if (int rc = SeedAndWaitReplicated(); rc != 0) return rc;
    if (int rc = RegisterDemoServices(); rc != 0) return rc;
    PrintUsage();
    return Supervise();
  }

  bool Spawn(Node& node) {
    std::vector<std::string> args = {exe_,
                                     "agent",
                                     "--name",
                                     node.name,
                                     "--data-dir",
                                     node.dir,
                                     "--bind",
                                     node.bind(),
                                     "--http",
                                     node.http(),
                                     "--dns",
                                     node.dns(),
                                     "--wal-segment-bytes",
                                     "8388608",
                                     "--log-level",
                                     "info"};
    if (&node != &nodes_[0]) {
      args.push_back("--join");
      args.push_back(nodes_[0].bind());
    }
    if (!flags_.durability.empty()) {
      args.push_back("--durability");
      args.push_back(flags_.durability);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Opened before fork: the child may only make async-signal-safe calls.
    int log_fd = ::open(node.log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      Fail("cannot open " + node.log() + ": " + Errno());
      return false;
    }
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
      ::close(log_fd);
      Fail("cannot open /dev/null: " + Errno());
      return false;
    }
    const pid_t parent = ::getpid();
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);  // the launcher died before prctl took effect
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
      ::execv(exe_.c_str(), argv.data());
      static const char kMsg[] = "grapevine demo: execv of the grapevine binary failed\n";
      ssize_t ignored = ::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
      (void)ignored;
      ::_exit(127);
    }
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0) {
      Fail("fork failed: " + Errno());
      return false;
    }
    node.pid = pid;
    node.running = true;
    return true;
  }

  // Reaps every exited child; returns the nodes that exited in this call.
  std::vector<Node*> Reap() {
    std::vector<Node*> exited;
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (Node& n : nodes_) {
        if (n.pid == pid && n.running) {
          n.running = false;
          n.wait_status = status;
          exited.push_back(&n);
        }
      }
    }
    return exited;
  }

  // Waits up to `timeout` for one of SIGINT/SIGTERM (true) or SIGCHLD.
  bool WaitSignal(std::chrono::milliseconds timeout, bool* child_event = nullptr) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1000000)};
    int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGCHLD && child_event != nullptr) *child_event = true;
    return sig == SIGINT || sig == SIGTERM;
  }

  int ReportDeathAndStop(const Node& n, const char* phase) {
    std::fprintf(stderr, "error: %s (pid %d) exited %s (%s); last lines of %s:\n%s", n.name.c_str(),
                 static_cast<int>(n.pid), phase, DescribeExit(n.wait_status).c_str(), n.log().c_str(),
                 Tail(n.log(), 15).c_str());
    return StopAll(1);
  }

  // Waits until nodes_[from, to) answer GET /v1/status with 200.
  int WaitReady(std::size_t from, std::size_t to) {
    const auto deadline = SteadyClock::now() + kStartTimeout;
    std::vector<bool> ready(nodes_.size(), false);
    HttpClientOptions probe;
    probe.timeout_ms = kProbeTimeoutMs;
    for (;;) {
      for (Node* n : Reap()) return ReportDeathAndStop(*n, "during start-up");
      bool all = true;
      for (std::size_t i = from; i < to; ++i) {
        if (ready[i]) continue;
        HttpClient client(nodes_[i].http(), probe);
        auto r = client.Get("/v1/status");
        ready[i] = r.ok() && r->status == 200;
        all = all && ready[i];
      }
      if (all) return 0;
      if (SteadyClock::now() >= deadline) {
        for (std::size_t i = from; i < to; ++i) {
          if (ready[i]) continue;
          std::fprintf(stderr, "error: %s does not answer GET http://%s/v1/status after %lld s; last lines of %s:\n%s",
                       nodes_[i].name.c_str(), nodes_[i].http().c_str(),
                       static_cast<long long>(kStartTimeout.count()), nodes_[i].log().c_str(),
                       Tail(nodes_[i].log(), 15).c_str());
          break;
        }
        return StopAll(1);
      }
      if (WaitSignal(kPollInterval)) {
        std::printf("grapevine demo: interrupted during start-up\n");
        return StopAll(0);
      }
    }
  }

  int SeedAndWaitReplicated() {
    HttpClient seed(nodes_[0].http());
    for (const auto& [key, value] : kSeedKeys) {
      auto r = seed.Request("PUT", "/v1/kv/" + EncodeKeyPath(key), value);
      if (!r.ok()) {
        Fail("writing " + key + " on " + nodes_[0].name + ": " + r.status().message());
        return StopAll(1);
      }
      if (r->status != 200) {
        Fail("writing " + key + " on " + nodes_[0].name + ": " + ServerError(*r));
        return StopAll(1);
      }
    }
    // Every node must serve every seed key with its value; bounded.
    const auto started = SteadyClock::now();
    const auto deadline = started + kReplicationTimeout;
    HttpClientOptions probe;
    probe.timeout_ms = kProbeTimeoutMs;
    std::vector<std::unique_ptr<HttpClient>> clients;
    for (const Node& n : nodes_) clients.push_back(std::make_unique<HttpClient>(n.http(), probe));
    std::vector<std::size_t> have(nodes_.size(), 0);  // seed keys confirmed, in order
    for (;;) {
      for (Node* n : Reap()) return ReportDeathAndStop(*n, "while the seed config replicated");
      bool all = true;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        while (have[i] < kSeedKeys.size()) {
          const auto& [key, value] = kSeedKeys[have[i]];
          auto r = clients[i]->Get("/v1/kv/" + EncodeKeyPath(key) + "?raw");
          if (!r.ok() || r->status != 200 || r->body != value) break;
          ++have[i];
        }
        all = all && have[i] == kSeedKeys.size();
      }
      if (all) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
        std::printf("grapevine demo: the %zu seed keys reached all %zu agents within %lld ms\n", kSeedKeys.size(),
                    nodes_.size(), static_cast<long long>(ms));
        std::fflush(stdout);
        return 0;
      }
      if (SteadyClock::now() >= deadline) {
        // The cluster stays up: a demo that shows a replication problem is
        // still worth looking at, but it must say so.
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
          if (have[i] < kSeedKeys.size()) {
            std::fprintf(stderr, "warning: %s has not served %s after %lld s (see %s)\n", nodes_[i].name.c_str(),
                         kSeedKeys[have[i]].first.c_str(), static_cast<long long>(kReplicationTimeout.count()),
                         nodes_[i].log().c_str());
          }
        }
        return 0;
      }
      if (WaitSignal(kPollInterval)) {
        std::printf("grapevine demo: interrupted while the seed config replicated\n");
        return StopAll(0);
      }
    }
  }

  // "web" on the first three nodes (or all, if fewer) and "db" on the second:
  // each registered at its own agent, which owns it (no TTL: healthy while the
  // agent lives). Then bounded: every node lists every web instance.
  int RegisterDemoServices() {
    std::size_t web_count = std::min<std::size_t>(3, nodes_.size());
    auto reg = [&](std::size_t node, const std::string& id, const std::string& name, int port) -> bool {
      HttpClient client(nodes_[node].http());
      nlohmann::json body{{"id", id}, {"name", name}, {"address", "127.0.0.1"}, {"port", port},
                          {"tags", {"demo"}}, {"meta", {{"node", nodes_[node].name}}}};
      auto r = client.Request("PUT", "/v1/services", body.dump());
      if (!r.ok() || r->status != 200) {
        Fail("registering service " + id + " on " + nodes_[node].name + ": " +
             (r.ok() ? ServerError(*r) : r.status().message()));
        return false;
      }
      return true;
    };
    for (std::size_t i = 0; i < web_count; ++i) {
      if (!reg(i, "web-" + std::to_string(i + 1), "web", 8080 + static_cast<int>(i))) return StopAll(1);
    }
    if (!reg(nodes_.size() > 1 ? 1 : 0, "db-1", "db", 5432)) return StopAll(1);
    const auto started = SteadyClock::now();
    const auto deadline = started + kReplicationTimeout;
    HttpClientOptions probe;
    probe.timeout_ms = kProbeTimeoutMs;
    for (;;) {
      for (Node* n : Reap()) return ReportDeathAndStop(*n, "while the demo services replicated");
      std::size_t ready = 0;
      for (const Node& n : nodes_) {
        HttpClient client(n.http(), probe);
        auto r = client.Get("/v1/services/web");
        if (!r.ok() || r->status != 200) continue;
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        if (j.is_array() && j.size() == web_count) ++ready;
      }
      if (ready == nodes_.size()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
        std::printf("grapevine demo: services web (x%zu) and db registered; every agent lists them within %lld ms\n",
                    web_count, static_cast<long long>(ms));
        std::fflush(stdout);
        return 0;
      }
      if (SteadyClock::now() >= deadline) {
        std::fprintf(stderr, "warning: only %zu of %zu agents list the web service after %lld s\n", ready,
                     nodes_.size(), static_cast<long long>(kReplicationTimeout.count()));
        return 0;
      }
      if (WaitSignal(kPollInterval)) {
        std::printf("grapevine demo: interrupted while the demo services replicated\n");
        return StopAll(0);
      }
    }
  }

  // How this binary was invoked, short when it sits under the working directory.
  std::string DisplayExe() const {
    std::error_code ec;
    const auto cwd = std::filesystem::current_path(ec);
    if (!ec) {
      const std::string prefix = cwd.string() + "/";
      if (exe_.compare(0, prefix.size(), prefix) == 0) return exe_.substr(prefix.size());
    }
    return exe_;
  }

  void PrintUsage() const {
    const std::string exe = DisplayExe();
    const Node& first = nodes_.front();
    const Node& last = nodes_.back();
    const Node& mid = nodes_[nodes_.size() / 2];
    std::printf("\n%-8s %-18s %-18s %-18s %s\n", "node", "http", "peers (tcp)", "dns (udp)", "pid");
    for (const Node& n : nodes_) {
      std::printf("%-8s %-18s %-18s %-18s %d\n", n.name.c_str(), n.http().c_str(), n.bind().c_str(), n.dns().c_str(),
                  static_cast<int>(n.pid));
    }
    std::printf("\nweb UI:  http://%s/ui/\n", first.http().c_str());
    std::printf("logs:    %s/nodeK/agent.log\n", base_dir_.c_str());
    std::printf("\ntry:\n");
    std::printf("  %s kv get config/db/url --http %s\n", exe.c_str(), last.http().c_str());
    std::printf("  %s kv ls config/ --http %s\n", exe.c_str(), mid.http().c_str());
    std::printf("  %s kv watch config/ --http %s        (in another terminal)\n", exe.c_str(), mid.http().c_str());
    std::printf("  %s kv put config/app/feature-x disabled --http %s\n", exe.c_str(), last.http().c_str());
    std::printf("  %s status --http %s\n", exe.c_str(), first.http().c_str());
    std::printf("  %s members --http %s\n", exe.c_str(), first.http().c_str());
    std::printf("  %s topology --http %s\n", exe.c_str(), first.http().c_str());
    std::printf("  %s services list --http %s\n", exe.c_str(), last.http().c_str());
    std::printf("  %s services get web --http %s\n", exe.c_str(), last.http().c_str());
    std::printf("  dig @127.0.0.1 -p %d web.service.grapevine. SRV +short\n", last.dns_port);
    std::printf("  dig @127.0.0.1 -p %d config.db.url.kv.grapevine. TXT +short\n", mid.dns_port);
    std::printf("  dig @127.0.0.1 -p %d %s.node.grapevine. A +short\n", first.dns_port, mid.name.c_str());
    std::printf("  %s snapshot save /tmp/grapevine-backup.snap --http %s\n", exe.c_str(), first.http().c_str());
    std::printf("  %s snapshot inspect /tmp/grapevine-backup.snap\n", exe.c_str());
    std::printf("  curl -s http://%s/v1/kv/config/db/url\n", mid.http().c_str());
    std::printf("  curl -s 'http://%s/v1/kv/config/?recurse'\n", first.http().c_str());
    std::printf("  curl -s http://%s/metrics | grep ^grapevine_\n", first.http().c_str());
    std::printf("\nstop:    Ctrl-C, or kill %d (the agents leave gracefully; the data stays under %s)\n",
                static_cast<int>(::getpid()), base_dir_.c_str());
    std::fflush(stdout);
  }

  // Runs until SIGINT/SIGTERM; reports agents that die on their own.
  int Supervise() {
    for (;;) {
      bool child_event = false;
      if (WaitSignal(std::chrono::milliseconds(1000), &child_event)) {
        std::printf("\ngrapevine demo: stopping the agents\n");
        return StopAll(0);
      }
      for (Node* n : Reap()) {
        std::fprintf(stderr, "warning: %s (pid %d) exited unexpectedly (%s); the others keep running. Last lines of %s:\n%s",
                     n->name.c_str(), static_cast<int>(n->pid), DescribeExit(n->wait_status).c_str(),
                     n->log().c_str(), Tail(n->log(), 10).c_str());
      }
      bool any = false;
      for (const Node& n : nodes_) any = any || n.running;
      if (!any) return Fail("every agent has exited; see the logs under " + base_dir_);
    }
  }

  // SIGTERM to each running agent, then up to kStopGrace for them to leave,
  // then SIGKILL. A second SIGINT/SIGTERM skips the grace period.
  int StopAll(int exit_code) {
    for (Node& n : nodes_) {
      if (n.running) ::kill(n.pid, SIGTERM);
    }
    const auto deadline = SteadyClock::now() + kStopGrace;
    bool forced = false;
    for (;;) {
      for (Node* n : Reap()) {
        const bool clean = WIFEXITED(n->wait_status) && WEXITSTATUS(n->wait_status) == 0;
        std::printf("  %s %s (%s)\n", n->name.c_str(), clean ? "left" : "stopped", DescribeExit(n->wait_status).c_str());
      }
      bool any = false;
      for (const Node& n : nodes_) any = any || n.running;
      if (!any) break;
      if (forced || SteadyClock::now() >= deadline) {
        for (Node& n : nodes_) {
          if (!n.running) continue;
          ::kill(n.pid, SIGKILL);
          int status = 0;
          ::waitpid(n.pid, &status, 0);  // SIGKILL cannot be caught: this returns promptly
          n.running = false;
          std::printf("  %s killed (it had not left %s)\n", n.name.c_str(),
                      forced ? "before the second interrupt" : "within the grace period");
        }
        break;
      }
      if (WaitSignal(kPollInterval)) forced = true;
    }
    std::printf("grapevine demo: all agents stopped; data kept under %s (remove with: rm -rf %s)\n", base_dir_.c_str(),
                base_dir_.c_str());
    std::fflush(stdout);
    return exit_code;
  }

  DemoFlags flags_;
  std::string exe_;
  std::string base_dir_;
  std::vector<Node> nodes_;
  sigset_t original_mask_{};
};

int RunDemo(const DemoFlags& flags) {
  if (flags.nodes < 1 || flags.nodes > kMaxNodes) {
    return Fail("--nodes must be 1.." + std::to_string(kMaxNodes));
  }
  if (!flags.durability.empty() && flags.durability != "sync" && flags.durability != "interval" &&
      flags.durability != "none") {
    return Fail("--durability must be sync, interval or none");
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Fail("cannot find this binary through /proc/self/exe: " + ec.message());
  std::string base_dir = flags.base_dir;
  if (base_dir.empty()) {
    char tmpl[] = "/tmp/grapevine-demo-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Fail("cannot create a directory under /tmp: " + Errno());
    base_dir = tmpl;
  } else {
    std::filesystem::create_directories(base_dir, ec);
    if (ec) return Fail("cannot create " + base_dir + ": " + ec.message());
    base_dir = std::filesystem::absolute(base_dir, ec).lexically_normal().string();
    while (base_dir.size() > 1 && base_dir.back() == '/') base_dir.pop_back();
  }
  Launcher launcher(flags, exe.string(), base_dir);
  return launcher.Run();
}

}  // namespace

void AddDemoCommand(CLI::App& app) {
  auto flags = std::make_shared<DemoFlags>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Start a local cluster of agents on 127.0.0.1 (free ports, data under a printed folder), write a few "
      "config keys, print the HTTP and web UI addresses, and run until Ctrl-C, which stops every agent");
  cmd->add_option("--nodes", flags->nodes, "how many agents (1..100)")->capture_default_str();
  cmd->add_option("--base-dir", flags->base_dir,
                  "folder for the agents' data and logs (default: a new /tmp/grapevine-demo-XXXXXX)");
  cmd->add_option("--durability", flags->durability, "the agents' WAL durability: sync, interval or none");
  cmd->callback([flags] { ExitCode() = RunDemo(*flags); });
}

}  // namespace gv::cli
