#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/commands.h"

using namespace gv;

TEST_CASE("grapevine sim: flags, JSON and a replayable trace") {
  const std::string trace_path = "sim_cli_test_trace.jsonl";
  std::remove(trace_path.c_str());
  {
    CLI::App app;
    cli::AddSimCommand(app);
    const char* argv[] = {"grapevine", "sim",         "--nodes", "30",     "--seed",  "5",  "--scenario",
                          "overlay",   "--broadcasts", "3",      "--json", "--trace", trace_path.c_str()};
    cli::ExitCode() = -1;
    app.parse(static_cast<int>(sizeof(argv) / sizeof(argv[0])), const_cast<char**>(argv));
    CHECK(cli::ExitCode() == 0);
  }
  std::ifstream trace(trace_path);
  REQUIRE(trace.good());
  std::string line;
  std::size_t lines = 0, messages = 0, deliveries = 0, ups = 0;
  while (std::getline(trace, line)) {
    const nlohmann::json event = nlohmann::json::parse(line);  // throws on a malformed line
    REQUIRE(event.contains("t"));
    const std::string kind = event["k"].get<std::string>();
    if (kind == "msg") ++messages;
    if (kind == "deliver") ++deliveries;
    if (kind == "up") ++ups;
    ++lines;
  }
  CHECK(lines > 0);
  CHECK(messages > 0);
  CHECK(ups == 30);
  CHECK(deliveries == 3 * 30);
  std::remove(trace_path.c_str());
  {
    CLI::App app;
    cli::AddSimCommand(app);
    const char* argv[] = {"grapevine", "sim", "--nodes", "30", "--trace", "/nonexistent-dir/x.jsonl"};
    cli::ExitCode() = -1;
    app.parse(static_cast<int>(sizeof(argv) / sizeof(argv[0])), const_cast<char**>(argv));
    CHECK(cli::ExitCode() == 2);
  }
}
