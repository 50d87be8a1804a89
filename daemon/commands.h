// Each subcommand of the grapevine binary lives in its own file and registers
// itself on the CLI11 app. A registered callback sets the process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace gv::cli {

// Exit status of the chosen subcommand (0 = success).
int& ExitCode();

void AddKeygenCommand(CLI::App& app);
// `grapevine sim`: one deterministic simulation scenario (sim/), figures as text or JSON.
// Lives here, not in sim/, because it reads the clock for wall_ms.
void AddSimCommand(CLI::App& app);
// `grapevine agent` (cmd_agent.cc).
void AddAgentCommand(CLI::App& app);
// `grapevine kv get|put|delete|ls|watch` (cmd_kv.cc).
void AddKvCommand(CLI::App& app);
// `grapevine status`, `grapevine members`, `grapevine topology` (cmd_cluster.cc).
void AddClusterCommands(CLI::App& app);
// `grapevine services register|deregister|pass|list|get` (cmd_services.cc).
void AddServicesCommand(CLI::App& app);
// grapevine snapshot save|restore|inspect (cmd_snapshot.cc)
void AddSnapshotCommand(CLI::App& app);
// `grapevine demo [--nodes N]` (cmd_demo.cc).
void AddDemoCommand(CLI::App& app);

}  // namespace gv::cli
