// Random faults against every invariant: many small overlays, each driven
// through joins, crashes, restarts, slow nodes and broadcasts at random
// moments, with CheckInvariants after every step. A failure names the seed;
// `sim_stress_test -tc="*" ` reruns it.
#include <doctest/doctest.h>

#include <string>

#include "sim/simulator.h"

using namespace gv;
using namespace gv::sim;

TEST_CASE("sim stress: random crashes, restarts, slow nodes and broadcasts keep every invariant") {
  constexpr NodeIndex kNodes = 60;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    SimOptions options;
    options.nodes = kNodes;
    options.seed = seed;
    options.shuffle_interval = Seconds(2);  // many shuffles in a short run
    SimConfig config = MakeSimConfig(options);
    // Small views make evictions, refusals and crossing connections frequent.
    config.hyparview.active_view_size = 3 + seed % 3;
    config.hyparview.passive_view_size = 6;
    config.network.crash_closes_connections = seed % 2 == 0;
    Simulator sim(config);
    sim.JoinAll(Millis(1));
    Prng script(seed);
    for (int step = 0; step < 300; ++step) {
      sim.RunFor(Millis(script.Range(1, 80)));
      if (script.Chance(0.05)) {
        const auto node = static_cast<NodeIndex>(script.Index(kNodes));
        if (sim.alive(node)) {
          sim.Crash(node);
        } else {
          sim.Restart(node);
        }
      }
      if (script.Chance(0.2)) {
        const std::vector<NodeIndex> live = sim.LiveNodes();
        if (!live.empty()) sim.Broadcast(live[script.Index(live.size())], "stress");
      }
      if (script.Chance(0.01)) sim.SetSlow(static_cast<NodeIndex>(script.Index(kNodes)), script.Chance(0.5));
      std::string why;
      const bool ok = sim.CheckInvariants(&why);
      REQUIRE_MESSAGE(ok, "step " << step << ": " << why);
    }
  }
}
