// The broadcast side of `grapevine sim`: measuring Plumtree on the simulated
// HyParView overlay, and the single-sender, multi-sender and loss scenarios.
//
// Definitions (docs/simulation.md):
//   reliability = deliveries / expected deliveries, where a broadcast expects
//                 one delivery at every node live when it was sent and still
//                 live (never seen down) at the end of the phase;
//   RMR         = payload (GOSSIP) messages received / (nodes that delivered - 1) - 1,
//                 per broadcast, averaged over broadcasts;
//   LDH         = the largest `hops` of any delivery of a broadcast (the origin
//                 delivers at hop 0, its direct receivers at hop 1), averaged
//                 over broadcasts (`ldh`) and its maximum (`ldh_max`);
//   control     = every broadcast-layer message that is not a measured
//                 broadcast's GOSSIP (IHAVE, GRAFT, PRUNE, and the root
//                 beacons' GOSSIPs); membership traffic is counted separately.
//
// Sender models: `single` (one random node sends everything), `set` (each
// broadcast from a random member of a fixed set of kSenderSetSize random
// nodes: a cluster where a few nodes write most changes) and `uniform` (each
// broadcast from a uniformly random live node). multi-sender reports `set` as
// its headline figures and `uniform` beside them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broadcast/plumtree.h"
#include "sim/sim_options.h"
#include "sim/simulator.h"

namespace gv::sim {

constexpr std::size_t kSenderSetSize = 10;
// Root beacons sent (after the election window) before a broadcast phase is
// measured: the first builds the tree from first arrivals, the next ones
// move nodes nearer the root by the hop-difference rule.
constexpr std::int64_t kRootBeaconWarmupBeacons = 4;
Duration RootBeaconWarmup(const broadcast::PlumtreeConfig& plumtree);

struct BroadcastFigures {
  std::size_t broadcasts = 0;
  std::uint64_t deliveries = 0;           // by expected nodes
  std::uint64_t expected_deliveries = 0;
  std::uint64_t duplicate_deliveries = 0;  // a node delivering one id twice (must stay 0)
  double reliability = 0.0;
  double rmr = 0.0;                 // mean over broadcasts
  double rmr_after_warmup = 0.0;    // mean over broadcasts 3.. (the tree has formed)
  double rmr_second_half = 0.0;     // mean over the second half: the steady state
  double ldh = 0.0;                 // mean over broadcasts
  std::uint32_t ldh_max = 0;
  double gossip_per_broadcast = 0.0;
  double control_per_broadcast = 0.0;
  double beacon_gossip_per_broadcast = 0.0;  // root beacons' GOSSIPs (part of control)
  double ihave_per_broadcast = 0.0;
  double graft_prune_per_node_per_broadcast = 0.0;
  // The first kMaxMissedListed expected deliveries that did not happen, in
  // broadcast order: where to look when reliability is below 1.
  struct Missed {
    std::size_t broadcast = 0;  // index of the Broadcast() call, from 0
    broadcast::MessageId id;
    NodeIndex node = 0;
  };
  static constexpr std::size_t kMaxMissedListed = 16;
  std::vector<Missed> missed;
};
nlohmann::json ToJson(const BroadcastFigures& figures);

// Installs the simulator's message and deliver hooks for its lifetime (one
// meter per simulator at a time) and measures the broadcasts it sends.
class BroadcastMeter {
 public:
  explicit BroadcastMeter(Simulator& sim);
  ~BroadcastMeter();
  BroadcastMeter(const BroadcastMeter&) = delete;
  BroadcastMeter& operator=(const BroadcastMeter&) = delete;

  // Broadcasts a small payload from `origin` (which must be live) and notes
  // which nodes are live at this moment.
  broadcast::MessageId Broadcast(NodeIndex origin);

  BroadcastFigures Figures() const;
  // Figures() as JSON: reliability, rmr, rmr_after_warmup, ldh, ldh_max,
  // control_per_broadcast, graft_prune_per_node_per_broadcast, ...
  nlohmann::json Summary() const;

 private:
  struct Sent {
    broadcast::MessageId id;
    std::uint64_t payload_received = 0;
    // Where this broadcast's row starts in hops_plus_one_.
    std::size_t row = 0;
    std::uint32_t ldh = 0;
    std::uint32_t delivered = 0;
  };
  void OnMessage(const MessageEvent& event);
  void OnDeliver(const DeliverEvent& event);
  Sent* Find(const broadcast::MessageId& id);

  Simulator& sim_;
  std::vector<Sent> sent_;
  // One row of sim.size() bytes per broadcast: hops + 1 of each node's
  // delivery (0: not delivered), saturating at 255. One array rather than a
  // vector per broadcast: a 10 kB allocation per broadcast made malloc
  // consolidate its small free chunks every time.
  std::vector<std::uint8_t> hops_plus_one_;
  std::map<broadcast::MessageId, std::size_t> index_;
  // Index of the last Broadcast() call at which each node was not live.
  std::vector<std::int64_t> last_down_call_;
  // The record being sent while inside Broadcast(): the origin delivers its own
  // message before the simulator returns the id.
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t pending_ = kNone;
  std::uint64_t duplicate_deliveries_ = 0;
  std::uint64_t ihave_ = 0;
  std::uint64_t graft_ = 0;
  std::uint64_t prune_ = 0;
  std::uint64_t beacon_gossip_ = 0;
};

enum class SenderModel : std::uint8_t { kSingle, kSet, kUniform };
const char* SenderModelName(SenderModel model);

// One measured broadcast phase on a fresh stable overlay built from `options`.
struct BroadcastRunSpec {
  broadcast::PlumtreeConfig plumtree;
  SenderModel senders = SenderModel::kSingle;
  std::size_t sender_set_size = kSenderSetSize;  // kSet only
  double loss = 0.0;  // broadcast-layer loss during the phase
};
struct BroadcastRun {
  BroadcastFigures figures;
  nlohmann::json details;  // components, memory, plumtree counters, invariant_violation
};
BroadcastRun RunBroadcastPhase(const SimOptions& options, const BroadcastRunSpec& spec);

// single-sender, multi-sender, loss: our Plumtree and the eager-flooding
// baseline on the same overlay with the same senders.
nlohmann::json RunBroadcastScenario(const SimOptions& options);

// The random-sender variants side by side (the paper's algorithm, duplicate
// thresholds, origin trees, hop thresholds) for options.scenario's sender
// model: what docs/simulation.md reports as the gain over the paper.
nlohmann::json CompareBroadcastVariants(const SimOptions& options);

}  // namespace gv::sim
