// grapevine: one binary, many subcommands (../shared/DESIGN.md §6).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>

#include "common/huge_pages.h"
#include "daemon/commands.h"

int main(int argc, char** argv) {
  // The simulator runs its heap on transparent huge pages
  // (common/huge_pages.h: may execute this program again, once, before
  // anything else happens). The agent does not: with three agents on one
  // host its snapshot catch-up took 1.58 s instead of 0.64 s
  // (docs/benchmarks.md, 2026-12-06).
  if (argc > 1 && std::strcmp(argv[1], "sim") == 0) {
    gv::ReexecWithMallocHugePages(argv);
  }
  CLI::App app{"grapevine: a gossip-disseminated cluster state service"};
  app.set_version_flag("--version", "grapevine 0.1.0");
  app.require_subcommand(1);
  gv::cli::AddKeygenCommand(app);
  gv::cli::AddSimCommand(app);
  gv::cli::AddAgentCommand(app);
  gv::cli::AddKvCommand(app);
  gv::cli::AddClusterCommands(app);
  gv::cli::AddDemoCommand(app);
  gv::cli::AddServicesCommand(app);
  gv::cli::AddSnapshotCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0 through CLI11; a usage error is one line
    // (DESIGN.md §6: a one-line error and a non-zero exit).
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "error: %s (see --help)\n", e.what());
    return 2;
  }
  return gv::cli::ExitCode();
}
