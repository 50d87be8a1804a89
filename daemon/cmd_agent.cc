// `grapevine agent`: runs one node until SIGTERM or SIGINT, then leaves
// gracefully (leave broadcast, WAL flushed, every handle closed).
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <memory>

#include "daemon/agent.h"
#include "daemon/agent_config.h"
#include "daemon/commands.h"

namespace gv::cli {

namespace {

struct SignalHandles {
  uv_signal_t term{};
  uv_signal_t interrupt{};
  daemon::Agent* agent = nullptr;
  bool leaving = false;
};

void CloseSignals(SignalHandles& signals) {
  for (uv_signal_t* handle : {&signals.term, &signals.interrupt}) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle))) uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
  }
}

void OnSignal(uv_signal_t* handle, int signum) {
  auto* signals = static_cast<SignalHandles*>(handle->data);
  if (signals->leaving) {
    spdlog::warn("second {}: exiting without finishing the leave", signum == SIGINT ? "SIGINT" : "SIGTERM");
    std::_Exit(1);
  }
  signals->leaving = true;
  spdlog::info("{}: leaving gracefully (send it again to exit at once)", signum == SIGINT ? "SIGINT" : "SIGTERM");
  signals->agent->Shutdown([signals] { CloseSignals(*signals); });
}

int RunAgent(const CLI::App& cmd, daemon::AgentConfig& config) {
  Status file_status = daemon::ApplyConfigFile(cmd, config);
  if (!file_status.ok()) {
    std::fprintf(stderr, "error: %s\n", file_status.message().c_str());
    return 2;
  }
  if (config.name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) config.name = host;
  }
  auto resolved = daemon::Resolve(config);
  if (!resolved.ok()) {
    std::fprintf(stderr, "error: %s\n", resolved.status().message().c_str());
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("agent");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + config.name + "] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::flush_on(spdlog::level::info);
  // A write to a peer or HTTP client that went away must fail with EPIPE,
  // not kill the agent.
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  auto agent = daemon::Agent::Start(&loop, std::move(*resolved));
  if (!agent.ok()) {
    spdlog::error("cannot start: {}", agent.status().message());
    std::fprintf(stderr, "error: %s\n", agent.status().message().c_str());
    uv_loop_close(&loop);
    return 1;
  }
  SignalHandles signals;
  signals.agent = agent->get();
  uv_signal_init(&loop, &signals.term);
  uv_signal_init(&loop, &signals.interrupt);
  signals.term.data = &signals;
  signals.interrupt.data = &signals;
  uv_signal_start(&signals.term, OnSignal, SIGTERM);
  uv_signal_start(&signals.interrupt, OnSignal, SIGINT);

  uv_run(&loop, UV_RUN_DEFAULT);
  agent->reset();
  int rc = uv_loop_close(&loop);
  if (rc != 0) {
    spdlog::error("event loop closed with handles still open: {}", uv_strerror(rc));
    return 1;
  }
  return 0;
}

}  // namespace

void AddAgentCommand(CLI::App& app) {
  auto config = std::make_shared<daemon::AgentConfig>();
  CLI::App* cmd = app.add_subcommand(
      "agent",
      "Run a grapevine agent: joins the overlay through --join, serves the HTTP API on --http, and leaves "
      "gracefully on SIGTERM/SIGINT");
  daemon::AddAgentFlags(*cmd, *config);
  cmd->callback([cmd, config] { ExitCode() = RunAgent(*cmd, *config); });
}

}  // namespace gv::cli
