// Small versions of the overlay-side scenarios (overlay, mass-failure, churn)
// with issue 3's bounds asserted, and the `grapevine sim` command line.
// docs/simulation.md has the same scenarios at 10,000 nodes.
#include "sim/overlay_scenarios.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>


namespace gv::cli {
// The grapevine binary defines this in daemon/main.cc; the test links the
// command on its own.
int& ExitCode() {
  static int code = 0;
  return code;
}
}  // namespace gv::cli

using namespace gv;
using namespace gv::sim;

namespace {

nlohmann::json Run(const SimOptions& options) {
  Result<nlohmann::json> result = RunScenario(options);
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  return std::move(result).value();
}

}  // namespace

TEST_CASE("scenario overlay: connected, symmetric, full views, small-world shape") {
  for (std::uint64_t seed : {1, 2, 3}) {
    CAPTURE(seed);
    SimOptions options;
    options.nodes = 500;
    options.seed = seed;
    options.scenario = Scenario::kOverlay;
    options.broadcasts = 20;
    const nlohmann::json r = Run(options);
    CHECK(r["invariants_ok"].get<bool>());
    CHECK(r["components"].get<std::size_t>() == 1);
    CHECK(r["symmetric"].get<bool>());
    CHECK(r["full_active_fraction"].get<double>() >= 0.99);
    // A random 5-regular graph of 500 nodes: clustering about 4/500, paths about log4(500).
    CHECK(r["clustering_coefficient"].get<double>() < 0.02);
    CHECK(r["average_shortest_path"].get<double>() > 3.0);
    CHECK(r["average_shortest_path"].get<double>() < 5.5);
    CHECK(r["average_shortest_path_exact"].get<bool>());
    CHECK(r["reliability"].get<double>() == 1.0);
    for (const char* key : {"reliability", "rmr", "ldh", "control_per_broadcast", "components", "in_degree",
                            "memory_per_node_bytes"}) {
      CHECK_MESSAGE(r.contains(key), key);
    }
  }
}

TEST_CASE("scenario overlay: the same seed gives the same figures") {
  SimOptions options;
  options.nodes = 200;
  options.seed = 9;
  options.broadcasts = 10;
  options.stabilize_shuffle_periods = 3;
  CHECK(Run(options).dump() == Run(options).dump());
}

TEST_CASE("scenario mass-failure: reliability and healing after 20/50/80% crash at once") {
  struct Case {
    std::size_t nodes;
    double fail;
    std::size_t broadcasts;
    double min_reliability;
    bool heal_within_one_period;
  };
  // The bounds of issue 3 scaled to what a small run can show (the
  // 10,000-node figures are in docs/simulation.md). At 80% the run keeps
  // 1,000 nodes so that 99% full views leave room for a last non-full pair.
  // 80% asks the 99.9% even over the first 200 broadcasts after the
  // crash: nodes that lost every neighbour graft what they missed from the
  // recent ids a new neighbour announces (without that: 0.9947 in seed 1).
  for (const Case c : {Case{500, 0.2, 300, 0.999, false}, Case{500, 0.5, 300, 0.999, true},
                       Case{1000, 0.8, 200, 0.999, true}}) {
    for (std::uint64_t seed : {1, 2}) {
      CAPTURE(c.fail);
      CAPTURE(seed);
      SimOptions options;
      options.nodes = c.nodes;
      options.seed = seed;
      options.scenario = Scenario::kMassFailure;
      options.fail_fraction = c.fail;
      options.broadcasts = c.broadcasts;
      const nlohmann::json r = Run(options);
      CHECK(r["invariants_ok"].get<bool>());
      CHECK(r["live_nodes"].get<std::size_t>() ==
            c.nodes - static_cast<std::size_t>(static_cast<double>(c.nodes) * c.fail + 0.5));
      CHECK(r["components"].get<std::size_t>() == 1);
      CHECK(r["reliability"].get<double>() >= c.min_reliability);
      REQUIRE_FALSE(r["healing_time_s"].is_null());
      if (c.heal_within_one_period) CHECK(r["healing_shuffle_periods"].get<double>() <= 1.0);
    }
  }
}

TEST_CASE("scenario churn: full reliability, low RMR and flat memory while nodes come and go") {
  SimOptions options;
  options.nodes = 400;
  options.seed = 4;
  options.scenario = Scenario::kChurn;
  options.churn_periods = 30;
  options.broadcasts = 150;
  const nlohmann::json r = Run(options);
  CHECK(r["invariants_ok"].get<bool>());
  CHECK(r["replaced_nodes"].get<std::size_t>() == 30 * 2);
  CHECK(r["reliability"].get<double>() == 1.0);
  // As for the single sender, the first 2 broadcasts build the tree (they
  // go out eagerly on every link, RMR about 3); the churn figure is the rest.
  CHECK(r["rmr_after_warmup"].get<double>() <= 0.05);
  CHECK(r["memory_growth"].get<double>() <= 1.15);
  CHECK(r["components"].get<std::size_t>() == 1);
}

TEST_CASE("scenario: invalid options are refused") {
  SimOptions options;
  options.nodes = 1;
  CHECK_FALSE(RunScenario(options).ok());
  options.nodes = 10;
  options.fail_fraction = 1.5;
  CHECK_FALSE(RunScenario(options).ok());
}
