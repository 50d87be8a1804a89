#include "sim/graph_metrics.h"

#include <algorithm>
#include <deque>
#include <numeric>

namespace gv::sim {

namespace {

constexpr std::int32_t kDead = -1;

// Live nodes renumbered densely, with each one's live active peers.
struct LiveGraph {
  std::vector<NodeIndex> nodes;          // dense -> simulator index
  std::vector<std::int32_t> dense;       // simulator index -> dense, kDead if not live
  std::vector<std::vector<std::int32_t>> out;  // directed: active view entries that are live
};

LiveGraph BuildLiveGraph(const Simulator& sim) {
  LiveGraph g;
  g.nodes = sim.LiveNodes();
  g.dense.assign(sim.size(), kDead);
  for (std::size_t k = 0; k < g.nodes.size(); ++k) g.dense[g.nodes[k]] = static_cast<std::int32_t>(k);
  g.out.resize(g.nodes.size());
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    for (NodeId peer : sim.hyparview(g.nodes[k]).active_view()) {
      const NodeIndex j = IndexOfId(peer);
      if (j < sim.size() && g.dense[j] != kDead) g.out[k].push_back(g.dense[j]);
    }
  }
  return g;
}

std::size_t CountComponents(const std::vector<std::vector<std::int32_t>>& undirected, std::size_t* largest) {
  const std::size_t n = undirected.size();
  std::vector<std::int32_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](std::int32_t x) {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  for (std::size_t v = 0; v < n; ++v) {
    for (std::int32_t w : undirected[v]) {
      const std::int32_t a = find(static_cast<std::int32_t>(v)), b = find(w);
      if (a != b) parent[a] = b;
    }
  }
  std::vector<std::size_t> size(n, 0);
  std::size_t components = 0;
  for (std::size_t v = 0; v < n; ++v) {
    if (size[find(static_cast<std::int32_t>(v))]++ == 0) ++components;
  }
  if (largest) *largest = n == 0 ? 0 : *std::max_element(size.begin(), size.end());
  return components;
}

std::vector<std::vector<std::int32_t>> Undirected(const LiveGraph& g) {
  std::vector<std::vector<std::int32_t>> u(g.out.size());
  for (std::size_t v = 0; v < g.out.size(); ++v) {
    for (std::int32_t w : g.out[v]) {
      u[v].push_back(w);
      u[w].push_back(static_cast<std::int32_t>(v));
    }
  }
  for (auto& list : u) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  return u;
}

}  // namespace

OverlayHealth MeasureHealth(const Simulator& sim) {
  const LiveGraph g = BuildLiveGraph(sim);
  OverlayHealth health;
  health.live_nodes = g.nodes.size();
  const std::size_t full = sim.config().hyparview.active_view_size;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    if (g.out[k].size() >= full) ++health.full_active;
    health.dead_links += sim.hyparview(g.nodes[k]).active_size() - g.out[k].size();
  }
  health.components = CountComponents(Undirected(g), nullptr);
  return health;
}

OverlayMetrics MeasureOverlay(const Simulator& sim, Prng& rng, std::size_t exact_path_limit, std::size_t path_samples) {
  OverlayMetrics m;
  const LiveGraph g = BuildLiveGraph(sim);
  const std::size_t n = g.nodes.size();
  m.live_nodes = n;
  if (n == 0) return m;

  // In-degree, symmetry, full views.
  std::vector<std::size_t> in_degree(n, 0);
  std::size_t full = 0;
  for (std::size_t v = 0; v < n; ++v) {
    if (g.out[v].size() >= sim.config().hyparview.active_view_size) ++full;
    for (std::int32_t w : g.out[v]) {
      ++in_degree[w];
      if (std::find(g.out[w].begin(), g.out[w].end(), static_cast<std::int32_t>(v)) == g.out[w].end()) {
        ++m.asymmetric_edges;
      }
    }
  }
  m.symmetric = m.asymmetric_edges == 0;
  m.full_active_fraction = static_cast<double>(full) / static_cast<double>(n);
  for (std::size_t d : in_degree) ++m.in_degree_histogram[d];

  const auto u = Undirected(g);
  m.components = CountComponents(u, &m.largest_component);

  // Clustering: for each node, the fraction of its neighbour pairs that are
  // themselves linked; nodes with < 2 neighbours count 0 (Watts-Strogatz).
  double clustering_sum = 0.0;
  for (std::size_t v = 0; v < n; ++v) {
    const auto& nb = u[v];
    const std::size_t k = nb.size();
    if (k < 2) continue;
    std::size_t links = 0;
    for (std::size_t a = 0; a < k; ++a) {
      for (std::size_t b = a + 1; b < k; ++b) {
        if (std::binary_search(u[nb[a]].begin(), u[nb[a]].end(), nb[b])) ++links;
      }
    }
    clustering_sum += static_cast<double>(links) / (static_cast<double>(k * (k - 1)) / 2.0);
  }
  m.clustering_coefficient = clustering_sum / static_cast<double>(n);

  // Shortest paths: BFS from every node, or from a random sample of sources.
  std::vector<std::int32_t> sources(n);
  std::iota(sources.begin(), sources.end(), 0);
  if (n > exact_path_limit) {
    m.shortest_path_exact = false;
    rng.Shuffle(sources);
    sources.resize(std::min(path_samples, n));
  }
  m.path_sources = sources.size();
  std::vector<std::int32_t> dist(n);
  std::vector<std::int32_t> queue(n);
  double path_sum = 0.0;
  std::uint64_t pairs = 0;
  for (std::int32_t s : sources) {
    std::fill(dist.begin(), dist.end(), -1);
    std::size_t head = 0, tail = 0;
    dist[s] = 0;
    queue[tail++] = s;
    while (head < tail) {
      const std::int32_t v = queue[head++];
      for (std::int32_t w : u[v]) {
        if (dist[w] < 0) {
          dist[w] = dist[v] + 1;
          queue[tail++] = w;
          path_sum += dist[w];
          ++pairs;
          m.diameter_seen = std::max<std::size_t>(m.diameter_seen, static_cast<std::size_t>(dist[w]));
        }
      }
    }
  }
  m.average_shortest_path = pairs == 0 ? 0.0 : path_sum / static_cast<double>(pairs);
  return m;
}

}  // namespace gv::sim
