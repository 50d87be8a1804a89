#include "sim/overlay_scenarios.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "sim/broadcast_scenarios.h"

namespace gv::sim {

namespace {

// Health is sampled this often while a scenario waits for the overlay to heal.
constexpr Duration kHealthStep = Millis(250);
// Broadcasts still in flight get this long to finish before figures are taken.
constexpr Duration kDrainTime = Seconds(5);

double ToSeconds(Duration d) { return static_cast<double>(d.count()) / 1e6; }

// Runs the simulator to `until`, then checks every invariant; the first
// violation is kept in the report (RunScenario turns it into an error).
void RunChecked(Simulator& sim, TimePoint until, nlohmann::json& report) {
  sim.RunUntil(until);
  std::string why;
  if (!report.contains("invariant_violation") && !sim.CheckInvariants(&why)) report["invariant_violation"] = why;
}

nlohmann::json MemoryJson(const Simulator& sim) {
  std::size_t total = 0, max = 0;
  const std::vector<NodeIndex> live = sim.LiveNodes();
  for (NodeIndex i : live) {
    const std::size_t bytes = sim.NodeMemoryBytes(i);
    total += bytes;
    max = std::max(max, bytes);
  }
  nlohmann::json j;
  j["mean"] = live.empty() ? 0.0 : static_cast<double>(total) / static_cast<double>(live.size());
  j["max"] = max;
  return j;
}

nlohmann::json MessageCountsJson(const Simulator& sim) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t t = 0; t < kMessageTypes; ++t) j[MessageTypeName(t)] = sim.counters().sent[t];
  return j;
}

// Merges the broadcast figures in without overwriting the overlay's own keys.
void MergeBroadcastFigures(nlohmann::json& report, const nlohmann::json& figures) {
  for (auto it = figures.begin(); it != figures.end(); ++it) {
    if (!report.contains(it.key())) report[it.key()] = it.value();
  }
}

NodeIndex RandomLive(Simulator& sim, const std::vector<NodeIndex>& live) {
  return live[sim.rng().Index(live.size())];
}

// Healed (docs/simulation.md): one component, every failure detected (no
// active entry names a crashed node), and at least 99% of the live nodes
// with a full active view — the stable overlay's own level. "Fully healed"
// asks for 100%, which a single node short of a partner (odd free slots, or
// the last two non-full nodes not knowing each other) can postpone
// indefinitely; both are reported.
bool Healed(const OverlayHealth& h) {
  return h.components == 1 && h.dead_links == 0 && h.full_active * 100 >= h.live_nodes * 99;
}
bool FullyHealed(const OverlayHealth& h) {
  return h.components == 1 && h.dead_links == 0 && h.full_active == h.live_nodes;
}

}  // namespace

namespace {
// BuildStableOverlay, with the invariants checked at the end (into `report`).
void JoinAndStabilizeChecked(Simulator& sim, const SimOptions& options, nlohmann::json& report) {
  sim.JoinAll(options.join_interval);
  RunChecked(sim, sim.now() + options.shuffle_interval * static_cast<std::int64_t>(options.stabilize_shuffle_periods),
             report);
}
}  // namespace

void BuildStableOverlay(Simulator& sim, const SimOptions& options) {
  sim.JoinAll(options.join_interval);
  sim.RunFor(options.shuffle_interval * static_cast<std::int64_t>(options.stabilize_shuffle_periods));
}

nlohmann::json OverlayMetricsJson(const OverlayMetrics& m) {
  nlohmann::json j;
  j["live_nodes"] = m.live_nodes;
  j["components"] = m.components;
  j["largest_component"] = m.largest_component;
  j["symmetric"] = m.symmetric;
  j["asymmetric_edges"] = m.asymmetric_edges;
  j["full_active_fraction"] = m.full_active_fraction;
  nlohmann::json histogram = nlohmann::json::object();
  for (const auto& [degree, nodes] : m.in_degree_histogram) histogram[std::to_string(degree)] = nodes;
  j["in_degree"] = histogram;
  j["clustering_coefficient"] = m.clustering_coefficient;
  j["average_shortest_path"] = m.average_shortest_path;
  j["average_shortest_path_exact"] = m.shortest_path_exact;
  j["average_shortest_path_sources"] = m.path_sources;
  j["diameter_seen"] = m.diameter_seen;
  return j;
}

nlohmann::json RunOverlayScenario(const SimOptions& options) {
  Simulator sim(MakeSimConfig(options));
  nlohmann::json report;
  JoinAndStabilizeChecked(sim, options, report);
  Prng metric_rng(options.seed ^ 0x6f7665726c6179ULL);
  MergeBroadcastFigures(report, OverlayMetricsJson(MeasureOverlay(sim, metric_rng)));
  report["memory_per_node_bytes"] = MemoryJson(sim);
  report["membership_messages"] = MessageCountsJson(sim);
  // A short random-sender phase over the measured overlay, so the broadcast
  // figures of the contract exist for this scenario too.
  BroadcastMeter meter(sim);
  const std::vector<NodeIndex> live = sim.LiveNodes();
  const std::size_t broadcasts = std::min<std::size_t>(options.broadcasts, 100);
  for (std::size_t k = 0; k < broadcasts; ++k) {
    meter.Broadcast(RandomLive(sim, live));
    sim.RunFor(options.broadcast_interval);
  }
  RunChecked(sim, sim.now() + kDrainTime, report);
  report["broadcasts"] = broadcasts;
  MergeBroadcastFigures(report, meter.Summary());
  return report;
}

nlohmann::json RunMassFailureScenario(const SimOptions& options) {
  Simulator sim(MakeSimConfig(options));
  nlohmann::json report;
  JoinAndStabilizeChecked(sim, options, report);

  // The paper's experiment: shuffles stop, then a fraction of the nodes
  // fails at once, then broadcasts start right away.
  sim.SetShuffleEnabled(false);
  std::vector<NodeIndex> order = sim.LiveNodes();
  sim.rng().Shuffle(order);
  const auto failures = static_cast<std::size_t>(std::llround(options.fail_fraction * static_cast<double>(order.size())));
  for (std::size_t k = 0; k < failures && k < order.size(); ++k) sim.Crash(order[k]);
  const TimePoint failed_at = sim.now();
  const std::vector<NodeIndex> live = sim.LiveNodes();
  report["failed_nodes"] = failures;

  std::optional<TimePoint> healed_at, fully_healed_at;
  TimePoint next_health = sim.now();
  auto check_health = [&] {
    while (!fully_healed_at && next_health <= sim.now()) {
      const OverlayHealth health = MeasureHealth(sim);
      if (!healed_at && Healed(health)) healed_at = next_health;
      if (FullyHealed(health)) fully_healed_at = next_health;
      next_health += kHealthStep;
    }
  };

  BroadcastMeter meter(sim);
  if (!live.empty()) {
    for (std::size_t k = 0; k < options.broadcasts; ++k) {
      meter.Broadcast(RandomLive(sim, live));
      // Step through the gap between broadcasts at the health-check grid.
      const TimePoint next = sim.now() + options.broadcast_interval;
      while (sim.now() < next) {
        sim.RunUntil(fully_healed_at ? next : std::min(next, next_health));
        check_health();
      }
    }
  }
  RunChecked(sim, sim.now() + kDrainTime, report);
  check_health();
  // No heal yet: keep watching (without broadcasts) for up to 10 shuffle periods after the failure.
  const TimePoint watch_until = failed_at + options.shuffle_interval * 10;
  while (!fully_healed_at && sim.now() < watch_until) {
    sim.RunUntil(next_health);
    check_health();
  }
  std::string why;
  if (!report.contains("invariant_violation") && !sim.CheckInvariants(&why)) report["invariant_violation"] = why;

  report["broadcasts"] = options.broadcasts;
  MergeBroadcastFigures(report, meter.Summary());
  if (healed_at) {
    const Duration healing = *healed_at - failed_at;
    report["healing_time_s"] = ToSeconds(healing);
    report["healing_shuffle_periods"] = ToSeconds(healing) / ToSeconds(options.shuffle_interval);
  } else {
    report["healing_time_s"] = nullptr;
    report["healing_shuffle_periods"] = nullptr;
  }
  if (fully_healed_at) {
    report["full_healing_time_s"] = ToSeconds(*fully_healed_at - failed_at);
  } else {
    report["full_healing_time_s"] = nullptr;
  }
  const OverlayHealth health = MeasureHealth(sim);
  report["full_active_fraction_after"] =
      health.live_nodes == 0 ? 0.0 : static_cast<double>(health.full_active) / static_cast<double>(health.live_nodes);
  Prng metric_rng(options.seed ^ 0x6661696c757265ULL);
  MergeBroadcastFigures(report, OverlayMetricsJson(MeasureOverlay(sim, metric_rng)));
  report["memory_per_node_bytes"] = MemoryJson(sim);
  return report;
}

nlohmann::json RunChurnScenario(const SimOptions& options) {
  Simulator sim(MakeSimConfig(options));
  nlohmann::json report;
  JoinAndStabilizeChecked(sim, options, report);

  // The agenda: crashes, restarts and broadcasts, in time order (ties in
  // insertion order), applied between simulator runs.
  enum class Action : std::uint8_t { kCrash, kRestart, kBroadcast };
  std::multimap<TimePoint, std::pair<Action, NodeIndex>> agenda;
  const TimePoint start = sim.now();
  const Duration period = options.shuffle_interval;
  const std::size_t periods = options.churn_periods;
  const auto per_period = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::llround(options.churn_fraction_per_period * static_cast<double>(options.nodes))));
  const Duration spacing = options.broadcasts == 0 ? period : (period * static_cast<std::int64_t>(periods)) /
                                                                  static_cast<std::int64_t>(options.broadcasts);
  for (std::size_t k = 0; k < options.broadcasts; ++k) {
    agenda.emplace(start + spacing * static_cast<std::int64_t>(k), std::make_pair(Action::kBroadcast, NodeIndex{0}));
  }

  // One long-lived sender (a node that writes the configuration) that churn
  // never replaces: the scenario measures what churn does to the tree and
  // to memory; random senders are measured by multi-sender.
  const NodeIndex sender = RandomLive(sim, sim.LiveNodes());
  BroadcastMeter meter(sim);
  std::vector<double> memory_series;
  std::size_t replaced = 0;
  std::vector<bool> leaving(sim.size(), false);  // crash or restart scheduled
  for (std::size_t p = 0; p < periods; ++p) {
    const TimePoint period_start = start + period * static_cast<std::int64_t>(p);
    // Pick this period's victims among live nodes not already on the agenda;
    // each crashes at a random moment and comes back (empty, as a new node
    // would) half a period later.
    std::vector<NodeIndex> candidates;
    for (NodeIndex i : sim.LiveNodes()) {
      if (!leaving[i] && i != sender) candidates.push_back(i);
    }
    sim.rng().Shuffle(candidates);
    for (std::size_t k = 0; k < per_period && k < candidates.size(); ++k) {
      const Duration offset(static_cast<std::int64_t>(sim.rng().Uniform(static_cast<std::uint64_t>(period.count()))));
      leaving[candidates[k]] = true;
      agenda.emplace(period_start + offset, std::make_pair(Action::kCrash, candidates[k]));
      agenda.emplace(period_start + offset + period / 2, std::make_pair(Action::kRestart, candidates[k]));
    }
    const TimePoint period_end = period_start + period;
    while (!agenda.empty() && agenda.begin()->first < period_end) {
      const auto [at, action] = *agenda.begin();
      agenda.erase(agenda.begin());
      sim.RunUntil(at);
      switch (action.first) {
        case Action::kCrash:
          sim.Crash(action.second);
          ++replaced;
          break;
        case Action::kRestart:
          sim.Restart(action.second);
          leaving[action.second] = false;
          break;
        case Action::kBroadcast:
          meter.Broadcast(sender);
          break;
      }
    }
    RunChecked(sim, period_end, report);
    memory_series.push_back(MemoryJson(sim)["mean"].get<double>());
  }
  // Pending restarts (and any broadcast left) finish, then the last broadcasts drain.
  while (!agenda.empty()) {
    const auto [at, action] = *agenda.begin();
    agenda.erase(agenda.begin());
    sim.RunUntil(at);
    if (action.first == Action::kRestart) sim.Restart(action.second);
    if (action.first == Action::kCrash) sim.Crash(action.second);
    if (action.first == Action::kBroadcast) meter.Broadcast(sender);
  }
  RunChecked(sim, sim.now() + kDrainTime, report);

  report["broadcasts"] = options.broadcasts;
  report["replaced_nodes"] = replaced;
  report["replaced_per_period"] = per_period;
  report["sender"] = IdOfIndex(sender).value;
  MergeBroadcastFigures(report, meter.Summary());
  if (!memory_series.empty()) {
    // Flat memory: Plumtree remembers ids for seen_ttl (payloads for
    // payload_ttl), so memory rises until that much history exists and must
    // stay flat after. memory_growth compares the last period's mean with the
    // mean at the end of that warm-up (capped at half the run): 1.0 = flat.
    const Duration history = std::max(sim.config().plumtree.seen_ttl, sim.config().plumtree.payload_ttl);
    const auto warmup = std::min<std::size_t>(
        memory_series.size() / 2, static_cast<std::size_t>((history + period - Duration(1)) / period));
    report["memory_per_node_first_period_bytes"] = memory_series.front();
    report["memory_per_node_after_warmup_bytes"] = memory_series[warmup];
    report["memory_warmup_periods"] = warmup;
    report["memory_per_node_last_period_bytes"] = memory_series.back();
    report["memory_per_node_max_period_bytes"] = *std::max_element(memory_series.begin(), memory_series.end());
    report["memory_growth"] = memory_series.back() / memory_series[warmup];
  }
  Prng metric_rng(options.seed ^ 0x636875726eULL);
  MergeBroadcastFigures(report, OverlayMetricsJson(MeasureOverlay(sim, metric_rng)));
  report["memory_per_node_bytes"] = MemoryJson(sim);
  return report;
}

Result<nlohmann::json> RunScenario(const SimOptions& options) {
  if (options.nodes < 2 || options.nodes > 1'000'000) {
    return Status::InvalidArgument("--nodes must be between 2 and 1000000");
  }
  if (!(options.fail_fraction >= 0.0 && options.fail_fraction < 1.0)) {
    return Status::InvalidArgument("--fail must be in [0, 1)");
  }
  if (!(options.loss_fraction >= 0.0 && options.loss_fraction < 1.0)) {
    return Status::InvalidArgument("--loss must be in [0, 1)");
  }
  if (options.broadcasts > 10'000'000) return Status::InvalidArgument("--broadcasts must be at most 10000000");
  nlohmann::json report;
  switch (options.scenario) {
    case Scenario::kOverlay:
      report = RunOverlayScenario(options);
      break;
    case Scenario::kMassFailure:
      report = RunMassFailureScenario(options);
      report["fail_fraction"] = options.fail_fraction;
      break;
    case Scenario::kChurn:
      report = RunChurnScenario(options);
      break;
    case Scenario::kSingleSender:
    case Scenario::kMultiSender:
    case Scenario::kLoss:
      report = RunBroadcastScenario(options);
      break;
  }
  report["scenario"] = ScenarioName(options.scenario);
  report["nodes"] = options.nodes;
  report["seed"] = options.seed;
  report["invariants_ok"] = !report.contains("invariant_violation");
  if (report.contains("invariant_violation")) {
    return Status::Aborted("invariant violated: " + report["invariant_violation"].get<std::string>());
  }
  return report;
}

}  // namespace gv::sim
