// Shape of the overlay formed by the live nodes' HyParView active views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "common/prng.h"
#include "sim/simulator.h"

namespace gv::sim {

struct OverlayMetrics {
  std::size_t live_nodes = 0;
  std::size_t components = 0;              // connected components of the undirected graph
  std::size_t largest_component = 0;
  bool symmetric = true;                   // every live active edge has its reverse
  std::size_t asymmetric_edges = 0;
  double full_active_fraction = 0.0;       // live nodes whose active view is full
  std::map<std::size_t, std::size_t> in_degree_histogram;  // in-degree -> live nodes
  double clustering_coefficient = 0.0;     // mean local clustering (Watts-Strogatz), undirected
  double average_shortest_path = 0.0;      // mean over reachable ordered pairs
  std::size_t diameter_seen = 0;           // longest shortest path found from the BFS sources
  bool shortest_path_exact = true;         // false: BFS from `path_samples` random sources
  std::size_t path_sources = 0;
};

// Edges go only between live nodes (an active entry naming a crashed node is
// a failure not yet detected, and carries no traffic). BFS is exact from every
// node when live_nodes <= exact_path_limit, else from `path_samples` sources
// drawn from `rng`.
OverlayMetrics MeasureOverlay(const Simulator& sim, Prng& rng, std::size_t exact_path_limit = 2000,
                              std::size_t path_samples = 200);

// Components and full-view fraction only (cheap; for healing checks).
struct OverlayHealth {
  std::size_t components = 0;
  std::size_t full_active = 0;   // live nodes whose active view holds active_view_size live peers
  std::size_t live_nodes = 0;
  std::size_t dead_links = 0;    // active-view entries naming a crashed node (not yet detected)
};
OverlayHealth MeasureHealth(const Simulator& sim);

}  // namespace gv::sim
