// SimOptions: what one `grapevine sim` run is asked to do. The command line
// (daemon/cmd_sim.cc) fills it; the scenario functions (sim/overlay_scenarios.h,
// sim/broadcast_scenarios.h) read it. Every figure a scenario prints is
// a function of these options alone (plus wall time), so the same options give
// the same JSON except `wall_ms`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string_view>

#include "common/time.h"

namespace gv::sim {

enum class Scenario : std::uint8_t {
  kOverlay,       // join N nodes, let the overlay stabilise, measure its shape
  kSingleSender,  // one origin broadcasts K messages
  kMultiSender,   // K broadcasts from random origins
  kMassFailure,   // crash a fraction, then K broadcasts with shuffles stopped
  kChurn,         // replace churn_fraction_per_period each shuffle period, broadcasting
  kLoss,          // K broadcasts over links that drop a fraction of broadcast messages
};

// "overlay", "single-sender", ... as on the command line; nullopt if unknown.
std::optional<Scenario> ParseScenario(std::string_view name);
const char* ScenarioName(Scenario scenario);

struct SimOptions {
  std::size_t nodes = 1000;
  std::uint64_t seed = 1;
  Scenario scenario = Scenario::kOverlay;
  double fail_fraction = 0.5;   // kMassFailure: fraction of nodes crashed at once
  double loss_fraction = 0.1;   // kLoss: probability that a broadcast-layer message is dropped
  std::size_t broadcasts = 1000;

  // Where to write the event trace (JSON lines, docs/simulation.md); null = none.
  // Not owned; must outlive the run.
  std::ostream* trace = nullptr;

  // ---- timing, in simulated time ----
  // Nodes join one after another this far apart, each through a random node
  // that joined before it.
  Duration join_interval = Millis(2);
  // HyParView's shuffle period (the paper's "cycle"); healing time is reported
  // in these units.
  Duration shuffle_interval = Seconds(10);
  // After the last join the overlay runs this many shuffle periods before any
  // measurement (the paper lets its overlay settle for 50 cycles; ours is
  // stable well before 10, see docs/simulation.md).
  std::size_t stabilize_shuffle_periods = 10;
  // Time between two broadcasts in the broadcast scenarios.
  Duration broadcast_interval = Millis(50);

  // ---- kChurn ----
  std::size_t churn_periods = 100;
  double churn_fraction_per_period = 0.005;
};

}  // namespace gv::sim
