// grapevine: one binary, many subcommands (../shared/DESIGN.md §6).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "daemon/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"grapevine: a gossip-disseminated cluster state service"};
  app.set_version_flag("--version", "grapevine 0.1.0");
  app.require_subcommand(1);
  gv::cli::AddKeygenCommand(app);
  gv::cli::AddSimCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return gv::cli::ExitCode();
}
