#include "bench/cluster_bench_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

extern char** environ;

namespace gv::bench {
namespace {

// Every live child of this process, for the signal handler. A slot is 0 when
// free. Sized for the largest run (100 agents + wrk + a serf CLI) with room.
constexpr std::size_t kMaxChildren = 4096;
std::atomic<pid_t> g_children[kMaxChildren];

void RegisterChild(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
  // More live children than slots: the PDEATHSIG still covers this one.
}

void UnregisterChild(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void EmergencyHandler(int signal_number) {
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0) kill(pid, SIGKILL);
  }
  _exit(128 + signal_number);
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(wait_status)) + " (" +
           strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "stopped";
}

// argv/envp as the char* arrays execve wants, built before fork(): between
// fork and exec the child may only call async-signal-safe functions.
struct ExecImage {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecImage(const std::vector<std::string>& args, const std::vector<std::string>& extra_env) : argv_storage(args) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry = *e;
      std::string name = entry.substr(0, entry.find('='));
      bool overridden = false;
      for (const std::string& extra : extra_env) {
        if (extra.substr(0, extra.find('=')) == name) overridden = true;
      }
      if (!overridden) env_storage.push_back(std::move(entry));
    }
    for (const std::string& extra : extra_env) env_storage.push_back(extra);
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
};

// Child side after fork(): async-signal-safe calls only.
[[noreturn]] void ExecChild(const ExecImage& image, pid_t parent, int stdout_fd, const char* working_directory) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) dup2(null_fd, 0);
  int out = stdout_fd >= 0 ? stdout_fd : null_fd;
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  if (working_directory != nullptr && chdir(working_directory) != 0) _exit(127);
  execve(image.argv[0], image.argv.data(), image.envp.data());
  _exit(127);
}

}  // namespace

void InstallEmergencyCleanup() {
  struct sigaction action {};
  action.sa_handler = EmergencyHandler;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  // Writes to a closed socket must fail with EPIPE, not kill the benchmark.
  signal(SIGPIPE, SIG_IGN);
}

Result<std::string> ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (access(program.c_str(), X_OK) != 0) return Status::NotFound("cannot execute '" + program + "'");
    char resolved[PATH_MAX];
    if (realpath(program.c_str(), resolved) == nullptr) return Status::NotFound("cannot resolve '" + program + "'");
    return std::string(resolved);
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return Status::NotFound("'" + program + "' is not on PATH (make deps-bench installs the bench packages)");
}

ProcessGroup::~ProcessGroup() { TerminateAll(std::chrono::milliseconds(5000)); }

Result<pid_t> ProcessGroup::Spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return Status::InvalidArgument("Spawn needs an absolute program path");
  }
  ExecImage image(argv, options.extra_env);
  int log_fd = -1;
  if (!options.log_path.empty()) {
    log_fd = open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) return Status::IOError("cannot create " + options.log_path + ": " + std::strerror(errno));
  }
  const pid_t parent = getpid();
  const char* cwd = options.working_directory.empty() ? nullptr : options.working_directory.c_str();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    if (log_fd >= 0) close(log_fd);
    return Status::IOError(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) ExecChild(image, parent, log_fd, cwd);
  if (log_fd >= 0) close(log_fd);
  RegisterChild(pid);
  live_.insert(pid);
  return pid;
}

void ProcessGroup::Reaped(pid_t pid, int wait_status) {
  live_.erase(pid);
  UnregisterChild(pid);
  exited_.emplace_back(pid, DescribeWaitStatus(wait_status));
}

bool ProcessGroup::Alive(pid_t pid) {
  if (live_.count(pid) == 0) return false;
  int wait_status = 0;
  pid_t r = waitpid(pid, &wait_status, WNOHANG);
  if (r == pid) {
    Reaped(pid, wait_status);
    return false;
  }
  return true;
}

std::string ProcessGroup::ExitDescription(pid_t pid) const {
  for (const auto& [p, text] : exited_) {
    if (p == pid) return text;
  }
  return "running";
}

int ProcessGroup::TerminateAll(std::chrono::milliseconds grace) {
  for (pid_t pid : live_) kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!live_.empty() && std::chrono::steady_clock::now() < deadline) {
    std::vector<pid_t> pids(live_.begin(), live_.end());
    for (pid_t pid : pids) Alive(pid);
    if (!live_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int killed = 0;
  std::vector<pid_t> stragglers(live_.begin(), live_.end());
  for (pid_t pid : stragglers) {
    kill(pid, SIGKILL);
    ++killed;
    int wait_status = 0;
    if (waitpid(pid, &wait_status, 0) == pid) Reaped(pid, wait_status);
  }
  return killed;
}

void ProcessGroup::Terminate(pid_t pid, std::chrono::milliseconds grace) {
  if (!Alive(pid)) return;
  kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (Alive(pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (Alive(pid)) {
    kill(pid, SIGKILL);
    int wait_status = 0;
    if (waitpid(pid, &wait_status, 0) == pid) Reaped(pid, wait_status);
  }
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                 const std::vector<std::string>& extra_env, std::size_t max_output_bytes) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return Status::InvalidArgument("RunCommand needs an absolute program path");
  }
  ExecImage image(argv, extra_env);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  const pid_t parent = getpid();
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return Status::IOError(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) ExecChild(image, parent, fds[1], nullptr);
  RegisterChild(pid);
  close(fds[1]);
  CommandResult result;
  const auto deadline = start + timeout;
  char buffer[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // timeout is handled at the top of the loop
    ssize_t n = read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child closed its output (normally: exited)
    std::size_t room = max_output_bytes - std::min(max_output_bytes, result.output.size());
    result.output.append(buffer, std::min(room, static_cast<std::size_t>(n)));
  }
  close(fds[0]);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  UnregisterChild(pid);
  result.wall = std::chrono::steady_clock::now() - start;
  result.exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  return result;
}

Result<std::uint16_t> PortAllocator::Next() {
  constexpr std::uint16_t kLastPort = 32000;  // below the default ephemeral range 32768-60999
  while (next_ < kLastPort) {
    std::uint16_t port = next_++;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free_for_both = true;
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
      if (fd < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
      // No SO_REUSEADDR: a port with a TIME_WAIT connection counts as taken.
      if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) free_for_both = false;
      close(fd);
      if (!free_for_both) break;
    }
    if (free_for_both) return port;
  }
  return Status::Unavailable("no free 127.0.0.1 port left below 32000 (use a lower --base-port)");
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')':
  // state(3) ... utime(14) stime(15).
  std::size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos || name_end + 2 > stat.size()) return 0;
  std::istringstream fields(stat.substr(name_end + 2));
  std::string field;
  double ticks = 0;
  for (int index = 3; index <= 15 && (fields >> field); ++index) {
    if (index == 14 || index == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string TailOfFile(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(cannot read " + path + ")";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(max_bytes) ? size - static_cast<std::streamoff>(max_bytes) : 0;
  in.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

}  // namespace gv::bench
