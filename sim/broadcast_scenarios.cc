#include "sim/broadcast_scenarios.h"

#include <algorithm>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "sim/graph_metrics.h"
#include "sim/overlay_scenarios.h"

namespace gv::sim {
namespace {

// Broadcasts still being repaired (graft retries, re-announcements) get this
// long after the last one before figures are taken.
constexpr Duration kDrainTime = Seconds(15);
// 15 bytes: a payload this short lives inside std::string itself (libstdc++'s
// inline buffer), so the simulator does not allocate for every GOSSIP and
// every cached copy (10,000 nodes cache ~6 million). The network model has no
// bandwidth, so the payload size changes no figure but the memory per node.
constexpr std::size_t kPayloadBytes = 15;
// The flooding baseline runs the first this-many broadcasts of the same
// senders on the same overlay: its per-broadcast figures (RMR ~ degree - 2,
// LDH) do not drift with time, and flooding costs ~4x the events of Plumtree,
// so a full-length baseline would dominate the 10,000-node run time.
constexpr std::size_t kFloodingBaselineBroadcasts = 100;
// Sender choice has its own stream, so that the Plumtree run and the flooding
// baseline of one seed use the same senders whatever else draws randomness.
constexpr std::uint64_t kSenderStreamSalt = 0x73656e6465727321ULL;

double Ratio(double numerator, double denominator) { return denominator == 0 ? 0.0 : numerator / denominator; }

}  // namespace

Duration RootBeaconWarmup(const broadcast::PlumtreeConfig& plumtree) {
  return plumtree.root_election_window + kRootBeaconWarmupBeacons * plumtree.root_beacon_interval;
}

namespace {

std::string Payload(std::size_t k) {
  std::string payload = "bc-" + std::to_string(k);
  payload.resize(kPayloadBytes, '.');
  return payload;
}

}  // namespace

// ---------------------------------------------------------------- figures

nlohmann::json ToJson(const BroadcastFigures& f) {
  nlohmann::json j;
  j["broadcasts"] = f.broadcasts;
  j["deliveries"] = f.deliveries;
  j["expected_deliveries"] = f.expected_deliveries;
  j["duplicate_deliveries"] = f.duplicate_deliveries;
  j["reliability"] = f.reliability;
  j["rmr"] = f.rmr;
  j["rmr_after_warmup"] = f.rmr_after_warmup;
  j["rmr_second_half"] = f.rmr_second_half;
  j["ldh"] = f.ldh;
  j["ldh_max"] = f.ldh_max;
  j["gossip_per_broadcast"] = f.gossip_per_broadcast;
  j["control_per_broadcast"] = f.control_per_broadcast;
  j["beacon_gossip_per_broadcast"] = f.beacon_gossip_per_broadcast;
  j["ihave_per_broadcast"] = f.ihave_per_broadcast;
  j["graft_prune_per_node_per_broadcast"] = f.graft_prune_per_node_per_broadcast;
  j["missed_deliveries"] = nlohmann::json::array();
  for (const BroadcastFigures::Missed& m : f.missed) {
    j["missed_deliveries"].push_back({{"broadcast", m.broadcast},
                                        {"origin", m.id.origin.value},
                                        {"seq", m.id.seq},
                                        {"node", IdOfIndex(m.node).value}});
  }
  return j;
}

// ---------------------------------------------------------------- meter

BroadcastMeter::BroadcastMeter(Simulator& sim) : sim_(sim), last_down_call_(sim.size(), -1) {
  sim_.OnMessage([this](const MessageEvent& event) { OnMessage(event); });
  sim_.OnDeliver([this](const DeliverEvent& event) { OnDeliver(event); });
}

BroadcastMeter::~BroadcastMeter() {
  sim_.OnMessage(nullptr);
  sim_.OnDeliver(nullptr);
}

broadcast::MessageId BroadcastMeter::Broadcast(NodeIndex origin) {
  const auto call = static_cast<std::int64_t>(sent_.size());
  for (NodeIndex i = 0; i < sim_.size(); ++i) {
    if (!sim_.alive(i)) last_down_call_[i] = call;
  }
  Sent sent;
  sent.row = hops_plus_one_.size();
  if (hops_plus_one_.capacity() < sent.row + sim_.size()) hops_plus_one_.reserve(2 * (sent.row + sim_.size()));
  hops_plus_one_.resize(sent.row + sim_.size(), 0);
  // The simulator picks the id; the record must exist before the origin's own
  // delivery, which happens inside Broadcast(): index it under the id the
  // simulator will use, then check.
  sent_.push_back(std::move(sent));
  pending_ = sent_.size() - 1;
  const broadcast::MessageId id = sim_.Broadcast(origin, Payload(sent_.size()));
  pending_ = kNone;
  sent_.back().id = id;
  index_[id] = sent_.size() - 1;
  return id;
}

BroadcastMeter::Sent* BroadcastMeter::Find(const broadcast::MessageId& id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &sent_[it->second];
}

void BroadcastMeter::OnMessage(const MessageEvent& event) {
  const auto* message = std::get_if<broadcast::Message>(&event.message);
  if (message == nullptr) return;
  if (const auto* gossip = std::get_if<broadcast::Gossip>(message)) {
    if (Sent* sent = Find(gossip->id)) {
      ++sent->payload_received;
    } else if (broadcast::IsBeaconId(gossip->id)) {
      ++beacon_gossip_;  // the protocol's own upkeep: control, not payload
    }
  } else if (std::holds_alternative<broadcast::IHave>(*message)) {
    ++ihave_;
  } else if (std::holds_alternative<broadcast::Graft>(*message)) {
    ++graft_;
  } else {
    ++prune_;
  }
}

void BroadcastMeter::OnDeliver(const DeliverEvent& event) {
  Sent* sent = Find(event.deliver.id);
  if (sent == nullptr && pending_ != kNone && event.deliver.from == IdOfIndex(event.node)) {
    sent = &sent_[pending_];  // the origin's own delivery, inside Broadcast()
  }
  if (sent == nullptr) return;  // not ours (sent before this meter existed)
  std::uint8_t& slot = hops_plus_one_[sent->row + event.node];
  if (slot != 0) {
    ++duplicate_deliveries_;
    return;
  }
  slot = static_cast<std::uint8_t>(std::min<std::uint32_t>(event.deliver.hops + 1, 255));
  ++sent->delivered;
  sent->ldh = std::max(sent->ldh, event.deliver.hops);
}

BroadcastFigures BroadcastMeter::Figures() const {
  BroadcastFigures f;
  f.broadcasts = sent_.size();
  f.duplicate_deliveries = duplicate_deliveries_;
  if (sent_.empty()) return f;
  std::vector<std::int64_t> last_down = last_down_call_;
  const auto end_call = static_cast<std::int64_t>(sent_.size());
  for (NodeIndex i = 0; i < sim_.size(); ++i) {
    if (!sim_.alive(i)) last_down[i] = end_call;
  }
  double rmr_sum = 0, rmr_late_sum = 0, rmr_half_sum = 0, ldh_sum = 0;
  std::uint64_t gossip = 0;
  for (std::size_t b = 0; b < sent_.size(); ++b) {
    const Sent& s = sent_[b];
    for (NodeIndex i = 0; i < sim_.size(); ++i) {
      if (last_down[i] >= static_cast<std::int64_t>(b)) continue;  // down at or after the send
      ++f.expected_deliveries;
      if (hops_plus_one_[s.row + i] != 0) {
        ++f.deliveries;
      } else if (f.missed.size() < BroadcastFigures::kMaxMissedListed) {
        f.missed.push_back({b, s.id, i});
      }
    }
    const double rmr =
        s.delivered > 1 ? static_cast<double>(s.payload_received) / static_cast<double>(s.delivered - 1) - 1.0 : 0.0;
    rmr_sum += rmr;
    if (b >= 2) rmr_late_sum += rmr;
    if (b >= sent_.size() / 2) rmr_half_sum += rmr;
    ldh_sum += s.ldh;
    f.ldh_max = std::max(f.ldh_max, s.ldh);
    gossip += s.payload_received;
  }
  const double k = static_cast<double>(sent_.size());
  f.reliability = Ratio(static_cast<double>(f.deliveries), static_cast<double>(f.expected_deliveries));
  f.rmr = rmr_sum / k;
  f.rmr_after_warmup = sent_.size() > 2 ? rmr_late_sum / (k - 2) : f.rmr;
  f.rmr_second_half = rmr_half_sum / static_cast<double>(sent_.size() - sent_.size() / 2);
  f.ldh = ldh_sum / k;
  f.gossip_per_broadcast = static_cast<double>(gossip) / k;
  f.control_per_broadcast = static_cast<double>(ihave_ + graft_ + prune_ + beacon_gossip_) / k;
  f.beacon_gossip_per_broadcast = static_cast<double>(beacon_gossip_) / k;
  f.ihave_per_broadcast = static_cast<double>(ihave_) / k;
  const double mean_expected_nodes = static_cast<double>(f.expected_deliveries) / k;
  f.graft_prune_per_node_per_broadcast = Ratio(static_cast<double>(graft_ + prune_), mean_expected_nodes * k);
  return f;
}

nlohmann::json BroadcastMeter::Summary() const { return ToJson(Figures()); }

// ---------------------------------------------------------------- scenarios

const char* SenderModelName(SenderModel model) {
  switch (model) {
    case SenderModel::kSingle:
      return "single";
    case SenderModel::kSet:
      return "set";
    case SenderModel::kUniform:
      return "uniform";
  }
  return "?";
}

namespace {

// A lossy transport (the loss scenario; TCP links need neither) needs
// announcements repeated, and more GRAFTs before a missing id is given up.
// At 30% loss, 10,000 nodes and 1,000 broadcasts (10 million deliveries):
// - A node whose 5 neighbours all push to it eagerly hears of an id from 5
//   GOSSIPs and then, per announce round after the first, 5 IHAVEs. With 3
//   rounds all 15 are lost with probability 0.3^15 = 1.4e-8 per delivery,
//   and seed 4 lost one delivery that way; with 5 rounds, 0.3^25 = 8e-14.
// - A GRAFT and its reply both arrive with probability 0.49: the default 24
//   attempts all fail with probability 0.51^24 = 1e-7 per repair, and a run
//   times out some 240,000 grafts (seed 3 lost one delivery that way); 64
//   attempts: 0.51^64 = 2e-19.
void TuneForLossyLinks(broadcast::PlumtreeConfig& plumtree) {
  plumtree.announce_rounds = 5;
  plumtree.max_graft_attempts = 64;
}

// A stable overlay whose nodes run `plumtree` (built once per scenario: see
// Simulator::ForkWithPlumtree). It is built without root beacons (Plumtree
// carries nothing while it forms, so it can be forked); they start with the
// fresh Plumtrees, and RunPhaseOn lets them shape the tree before it measures.
std::unique_ptr<Simulator> BuildOverlay(const SimOptions& options, const broadcast::PlumtreeConfig& plumtree) {
  SimConfig config = MakeSimConfig(options);
  config.plumtree = plumtree;
  config.plumtree.root_beacon_interval = Duration::zero();
  auto sim = std::make_unique<Simulator>(std::move(config));
  BuildStableOverlay(*sim, options);
  if (plumtree.root_beacon_interval > Duration::zero()) sim->ResetPlumtrees(plumtree);
  return sim;
}

// `base`'s overlay with `plumtree`, without a trace; built again (the same
// overlay: same options, and Plumtree takes no part in building it) if `base`
// cannot be forked.
std::unique_ptr<Simulator> ForkOverlay(const Simulator& base, const SimOptions& options,
                                       const broadcast::PlumtreeConfig& plumtree) {
  if (auto fork = base.ForkWithPlumtree(plumtree)) return fork;
  SimOptions untraced = options;
  untraced.trace = nullptr;
  return BuildOverlay(untraced, plumtree);
}

// The measured phase of RunBroadcastPhase on an overlay already built.
BroadcastRun RunPhaseOn(Simulator& sim, const SimOptions& options, const BroadcastRunSpec& spec);

}  // namespace

BroadcastRun RunBroadcastPhase(const SimOptions& options, const BroadcastRunSpec& spec) {
  std::unique_ptr<Simulator> sim = BuildOverlay(options, spec.plumtree);
  return RunPhaseOn(*sim, options, spec);
}

namespace {

BroadcastRun RunPhaseOn(Simulator& sim, const SimOptions& options, const BroadcastRunSpec& spec) {
  sim.SetLoss(spec.loss);

  Prng senders_rng(options.seed ^ kSenderStreamSalt);
  std::vector<NodeIndex> live = sim.LiveNodes();
  std::vector<NodeIndex> senders;
  BroadcastRun run;
  const broadcast::PlumtreeConfig& plumtree = sim.config().plumtree;
  if (!plumtree.eager_flooding && plumtree.root_beacon_interval > Duration::zero()) {
    // A running cluster has its root and its tree: let the election and a few
    // beacons happen before measuring (the overlay had its settling time too).
    sim.RunFor(RootBeaconWarmup(plumtree));
  }
  if (!live.empty()) {
    senders_rng.Shuffle(live);
    const std::size_t count = spec.senders == SenderModel::kSingle ? 1
                              : spec.senders == SenderModel::kSet  ? std::min(spec.sender_set_size, live.size())
                                                                   : live.size();
    senders.assign(live.begin(), live.begin() + static_cast<std::ptrdiff_t>(count));
  }
  {
    BroadcastMeter meter(sim);
    for (std::size_t k = 0; k < options.broadcasts && !senders.empty(); ++k) {
      meter.Broadcast(senders[senders_rng.Index(senders.size())]);
      sim.RunFor(options.broadcast_interval);
    }
    sim.RunFor(kDrainTime);
    run.figures = meter.Figures();
  }

  nlohmann::json& d = run.details;
  d["sender_model"] = SenderModelName(spec.senders);
  d["senders"] = senders.size();
  d["loss"] = spec.loss;
  const OverlayHealth health = MeasureHealth(sim);
  d["components"] = health.components;
  d["live_nodes"] = health.live_nodes;
  std::size_t memory_total = 0, memory_max = 0;
  broadcast::PlumtreeStats totals;
  std::set<std::uint64_t> roots;  // distinct roots followed at the end
  for (NodeIndex i : sim.LiveNodes()) {
    const std::size_t bytes = sim.NodeMemoryBytes(i);
    memory_total += bytes;
    memory_max = std::max(memory_max, bytes);
    const broadcast::PlumtreeStats& s = sim.plumtree(i).stats();
    totals.graft_timeouts += s.graft_timeouts;
    totals.hop_optimizations += s.hop_optimizations;
    totals.duplicates += s.duplicates;
    totals.missing_dropped += s.missing_dropped;
    totals.origin_trees_created += s.origin_trees_created;
    totals.reannounced += s.reannounced;
    totals.graft_unanswerable += s.graft_unanswerable;
    totals.beacons_sent += s.beacons_sent;
    totals.root_changes += s.root_changes;
    if (auto root = sim.plumtree(i).root()) roots.insert(root->value);
  }
  d["memory_per_node_bytes"] = {
      {"mean", Ratio(static_cast<double>(memory_total), static_cast<double>(health.live_nodes))},
      {"max", memory_max}};
  d["plumtree_totals"] = {{"graft_timeouts", totals.graft_timeouts},
                          {"hop_optimizations", totals.hop_optimizations},
                          {"duplicates", totals.duplicates},
                          {"missing_dropped", totals.missing_dropped},
                          {"origin_trees_created", totals.origin_trees_created},
                          {"reannounced_entries", totals.reannounced},
                          {"graft_unanswerable", totals.graft_unanswerable},
                          {"beacons_sent", totals.beacons_sent},
                          {"root_changes", totals.root_changes}};
  d["roots"] = roots.size();  // distinct roots followed at the end (1 on a connected overlay with beacons)
  std::string why;
  if (!sim.CheckInvariants(&why)) d["invariant_violation"] = why;
  return run;
}


broadcast::PlumtreeConfig FloodingConfig() {
  broadcast::PlumtreeConfig config;
  config.eager_flooding = true;
  return config;
}

// Our Plumtree (on `ours_sim`) and the flooding baseline (on `flooding_sim`,
// the same overlay) for one sender model, as JSON.
nlohmann::json MeasureWithBaseline(Simulator& ours_sim, Simulator& flooding_sim, const SimOptions& options,
                                   BroadcastRunSpec spec, nlohmann::json* violation) {
  BroadcastRunSpec flooding_spec = spec;
  flooding_spec.plumtree = FloodingConfig();
  SimOptions flooding_options = options;
  flooding_options.broadcasts = std::min(options.broadcasts, kFloodingBaselineBroadcasts);
  flooding_options.trace = nullptr;  // the trace is of the run being reported
  // The baseline runs on a second thread. The two runs share nothing: the
  // flooding simulator is a fork with its own nodes, queue, PRNG and hooks,
  // and each run draws its senders from its own Prng. So the figures are
  // those of running them one after the other (the same JSON), in less wall
  // time when a second core is free (10,000 nodes: the baseline is a sixth
  // of the events).
  std::future<BroadcastRun> flooding_run = std::async(std::launch::async, [&] {
    return RunPhaseOn(flooding_sim, flooding_options, flooding_spec);
  });
  BroadcastRun ours = RunPhaseOn(ours_sim, options, spec);
  BroadcastRun flooding = flooding_run.get();

  nlohmann::json j = ToJson(ours.figures);
  for (auto it = ours.details.begin(); it != ours.details.end(); ++it) j[it.key()] = it.value();
  nlohmann::json baseline = ToJson(flooding.figures);
  baseline["components"] = flooding.details["components"];
  j["flooding"] = baseline;
  j["ldh_vs_flooding"] = Ratio(ours.figures.ldh, flooding.figures.ldh);
  j["ldh_max_minus_flooding"] =
      static_cast<std::int64_t>(ours.figures.ldh_max) - static_cast<std::int64_t>(flooding.figures.ldh_max);
  for (const BroadcastRun* run : {&ours, &flooding}) {
    if (run->details.contains("invariant_violation") && violation->is_null()) {
      *violation = run->details["invariant_violation"];
    }
  }
  return j;
}

}  // namespace

nlohmann::json RunBroadcastScenario(const SimOptions& options) {
  nlohmann::json violation;
  nlohmann::json report;
  BroadcastRunSpec spec;
  switch (options.scenario) {
    case Scenario::kMultiSender:
      spec.senders = SenderModel::kSet;
      break;
    case Scenario::kLoss:
      spec.senders = SenderModel::kUniform;
      spec.loss = options.loss_fraction;
      TuneForLossyLinks(spec.plumtree);
      break;
    case Scenario::kSingleSender:
    default:
      spec.senders = SenderModel::kSingle;
      break;
  }
  // One overlay for every phase: the headline run goes on (and traces) the
  // one built, the others on forks of it taken before any broadcast.
  std::unique_ptr<Simulator> base = BuildOverlay(options, spec.plumtree);
  std::unique_ptr<Simulator> flooding = ForkOverlay(*base, options, FloodingConfig());
  std::unique_ptr<Simulator> uniform, uniform_flooding;
  if (options.scenario == Scenario::kMultiSender) {
    uniform = ForkOverlay(*base, options, spec.plumtree);
    uniform_flooding = ForkOverlay(*base, options, FloodingConfig());
  }
  report = MeasureWithBaseline(*base, *flooding, options, spec, &violation);
  base.reset();
  flooding.reset();
  if (uniform) {
    BroadcastRunSpec uniform_spec = spec;
    uniform_spec.senders = SenderModel::kUniform;
    SimOptions untraced = options;
    untraced.trace = nullptr;  // the trace is of the headline run
    report["uniform_senders"] = MeasureWithBaseline(*uniform, *uniform_flooding, untraced, uniform_spec, &violation);
  }
  if (!violation.is_null()) report["invariant_violation"] = violation;
  return report;
}

nlohmann::json CompareBroadcastVariants(const SimOptions& options) {
  SenderModel senders = SenderModel::kSingle;
  if (options.scenario == Scenario::kMultiSender) senders = SenderModel::kSet;
  if (options.scenario == Scenario::kLoss || options.scenario == Scenario::kChurn) senders = SenderModel::kUniform;

  std::vector<std::pair<std::string, broadcast::PlumtreeConfig>> variants;
  variants.emplace_back("flooding", FloodingConfig());
  variants.emplace_back("paper", broadcast::PaperPlumtreeConfig());
  {
    broadcast::PlumtreeConfig c = broadcast::PaperPlumtreeConfig();
    c.hop_optimization_threshold = 0;
    variants.emplace_back("paper_without_hop_rule", c);
  }
  for (std::uint32_t dup : {2u, 3u, 5u}) {
    broadcast::PlumtreeConfig c = broadcast::PaperPlumtreeConfig();
    c.hop_optimization_threshold = 0;
    c.prune_after_duplicates = dup;
    variants.emplace_back("shared_tree_dup" + std::to_string(dup), c);
  }
  variants.emplace_back("default", broadcast::PlumtreeConfig{});
  for (std::uint32_t dup : {1u, 2u, 5u}) {
    broadcast::PlumtreeConfig c;
    c.prune_after_duplicates = dup;
    variants.emplace_back("default_dup" + std::to_string(dup), c);
  }
  for (std::uint32_t threshold : {0u, 1u, 3u}) {
    broadcast::PlumtreeConfig c;
    c.origin_hop_optimization_threshold = threshold;
    variants.emplace_back("default_origin_hop_threshold" + std::to_string(threshold), c);
  }
  {
    broadcast::PlumtreeConfig c;
    c.origin_tree_starts_flooding = true;
    variants.emplace_back("default_origin_tree_starts_flooding", c);
  }
  {
    broadcast::PlumtreeConfig c;
    c.hop_optimization_threshold = 3;
    variants.emplace_back("default_shared_hop_threshold3", c);
  }

  nlohmann::json table = nlohmann::json::array();
  for (const auto& [name, config] : variants) {
    BroadcastRunSpec spec;
    spec.plumtree = config;
    spec.senders = senders;
    if (options.scenario == Scenario::kLoss) {
      spec.loss = options.loss_fraction;
      TuneForLossyLinks(spec.plumtree);
    }
    BroadcastRun run = RunBroadcastPhase(options, spec);
    nlohmann::json row = ToJson(run.figures);
    row["variant"] = name;
    row["sender_model"] = SenderModelName(senders);
    row["plumtree_totals"] = run.details["plumtree_totals"];
    if (run.details.contains("invariant_violation")) row["invariant_violation"] = run.details["invariant_violation"];
    table.push_back(std::move(row));
  }
  return table;
}

}  // namespace gv::sim
