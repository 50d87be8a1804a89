// The IO shell of the simulator: parses flags, opens the trace file, measures
// wall time (the only clock read of sim/), prints the report.
#include "daemon/commands.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/huge_pages.h"
#include "daemon/commands.h"
#include "sim/overlay_scenarios.h"

namespace gv::cli {

namespace {

struct SimFlags {
  sim::SimOptions options;
  std::string scenario = "overlay";
  std::string trace_path;
  bool json = false;
};

void PrintHuman(const nlohmann::json& report) {
  for (auto it = report.begin(); it != report.end(); ++it) {
    std::printf("%-40s %s\n", it.key().c_str(), it.value().dump().c_str());
  }
}

int RunSim(SimFlags& flags) {
  const auto scenario = sim::ParseScenario(flags.scenario);
  if (!scenario) {
    std::fprintf(stderr, "grapevine sim: unknown scenario '%s'\n", flags.scenario.c_str());
    return 1;
  }
  flags.options.scenario = *scenario;
  std::ofstream trace;
  if (!flags.trace_path.empty()) {
    trace.open(flags.trace_path, std::ios::out | std::ios::trunc);
    if (!trace) {
      std::fprintf(stderr, "grapevine sim: cannot write trace file '%s'\n", flags.trace_path.c_str());
      return 2;
    }
    flags.options.trace = &trace;
  }
  const auto started = std::chrono::steady_clock::now();
  Result<nlohmann::json> result = sim::RunScenario(flags.options);
  const auto wall_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) {
    // An invariant violation's text already names the seed; invalid options need none.
    std::fprintf(stderr, "grapevine sim: %s\n", result.status().ToString().c_str());
    return 1;
  }
  if (trace.is_open()) {
    trace.flush();
    if (!trace) {
      std::fprintf(stderr, "grapevine sim: writing trace file '%s' failed\n", flags.trace_path.c_str());
      return 2;
    }
  }
  nlohmann::json report = std::move(result).value();
  report["wall_ms"] = wall_ms;
  report["malloc_huge_pages"] = MallocHugePagesState();
  if (flags.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    PrintHuman(report);
  }
  return 0;
}

}  // namespace

void AddSimCommand(CLI::App& app) {
  auto flags = std::make_shared<SimFlags>();
  auto* cmd = app.add_subcommand("sim", "Run a deterministic simulation of the overlay and broadcast");
  cmd->add_option("--nodes", flags->options.nodes, "Number of simulated nodes")->check(CLI::Range(2, 1000000));
  cmd->add_option("--seed", flags->options.seed, "Seed: the same seed reproduces the same run");
  cmd->add_option("--scenario", flags->scenario,
                  "overlay|single-sender|multi-sender|mass-failure|churn|loss")
      ->check(CLI::IsMember({"overlay", "single-sender", "multi-sender", "mass-failure", "churn", "loss"}));
  cmd->add_option("--fail", flags->options.fail_fraction, "mass-failure: fraction of nodes that crash at once")
      ->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--loss", flags->options.loss_fraction, "loss: probability a broadcast message is dropped")
      ->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--broadcasts", flags->options.broadcasts, "Number of broadcasts")->check(CLI::Range(0, 10000000));
  cmd->add_flag("--json", flags->json, "Print one JSON object");
  cmd->add_option("--trace", flags->trace_path, "Write the run's events as JSON lines to FILE");
  cmd->callback([flags] { ExitCode() = RunSim(*flags); });
}

}  // namespace gv::cli
