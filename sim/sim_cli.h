// `grapevine sim`: runs one simulation scenario and prints its figures
// (DESIGN.md §6). The lead registers it in daemon/main.cc.
#pragma once

#include <CLI/CLI.hpp>

namespace gv::cli {

// Registers the `sim` subcommand; its callback sets gv::cli::ExitCode()
// (daemon/commands.h): 0 on success, 1 on an invalid option or a violated
// invariant (the one-line error names the seed), 2 if --trace cannot be written.
void AddSimCommand(CLI::App& app);

}  // namespace gv::cli
