// Prints the Plumtree variants side by side (JSON array) for one scenario's
// sender model: the gain of our defaults over the paper's algorithm on the
// same overlays and senders. A measurement tool, not a test.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "sim/broadcast_scenarios.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s NODES SEED single-sender|multi-sender|loss BROADCASTS [LOSS]\n", argv[0]);
    return 2;
  }
  gv::sim::SimOptions options;
  options.nodes = std::strtoull(argv[1], nullptr, 10);
  options.seed = std::strtoull(argv[2], nullptr, 10);
  const auto scenario = gv::sim::ParseScenario(argv[3]);
  if (!scenario || options.nodes == 0) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  options.scenario = *scenario;
  options.broadcasts = std::strtoull(argv[4], nullptr, 10);
  if (argc > 5) options.loss_fraction = std::strtod(argv[5], nullptr);
  std::cout << gv::sim::CompareBroadcastVariants(options).dump(1) << "\n";
  return 0;
}
