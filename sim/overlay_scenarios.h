// The overlay-side scenarios of `grapevine sim` (overlay, mass-failure, churn)
// and the dispatcher that runs any scenario by name.
//
// Split with sim/broadcast_scenarios.h: the broadcast scenarios
// (single-sender, multi-sender, loss) live there; the broadcast phases of
// mass-failure and churn are measured with its BroadcastMeter, declared in
// sim/broadcast_scenarios.h as:
//
//   nlohmann::json RunBroadcastScenario(const SimOptions& options);  // single/multi/loss
//   class BroadcastMeter {                       // installs the simulator's hooks
//    public:
//     explicit BroadcastMeter(Simulator& sim);
//     broadcast::MessageId Broadcast(NodeIndex origin);  // counts live nodes at send time
//     nlohmann::json Summary() const;  // reliability, rmr, ldh, ldh_max,
//                                      // control_per_broadcast, graft_prune_per_node_per_broadcast
//   };
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "sim/graph_metrics.h"
#include "sim/sim_options.h"
#include "sim/simulator.h"

namespace gv::sim {

// Joins options.nodes nodes one every options.join_interval, then runs
// options.stabilize_shuffle_periods shuffle periods. Used by every scenario.
void BuildStableOverlay(Simulator& sim, const SimOptions& options);

// Overlay metrics as JSON (components, symmetric, full_active_fraction,
// in_degree, clustering_coefficient, average_shortest_path, ...).
nlohmann::json OverlayMetricsJson(const OverlayMetrics& metrics);

nlohmann::json RunOverlayScenario(const SimOptions& options);
nlohmann::json RunMassFailureScenario(const SimOptions& options);
nlohmann::json RunChurnScenario(const SimOptions& options);

// Any scenario; adds "scenario", "nodes", "seed", "invariants_ok". Invalid
// options, or an invariant violated at any check of the run, give a non-ok
// Status (the violation's text names the node and the seed). Wall time is
// the caller's (sim/ never reads a clock; daemon/cmd_sim.cc adds "wall_ms").
Result<nlohmann::json> RunScenario(const SimOptions& options);

}  // namespace gv::sim
