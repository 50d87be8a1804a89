// MemberList: the full member list of the service locator as replicated
// state (DESIGN.md §2, issue 6, docs/services.md), sans-IO.
//
// Every node holds one MemberRecord per known member. Records spread by
// broadcast (the daemon sends what this core puts in the outbox) and by the
// table exchange with a new neighbour; both are merged with Merge(), whose
// precedence (CompareMemberPrecedence) is a strict total order, so merging
// is commutative, associative and idempotent: nodes that saw the same
// records in any order, with duplicates, hold the same list.
//
// SWIM/Serf rules:
//   - only a node raises its own incarnation: at start (its wall clock, so a
//     restarted node outranks its earlier run) and to refute — on hearing
//     suspect, failed or left about itself at or above its incarnation it
//     broadcasts alive with that incarnation + 1;
//   - an active-view neighbour whose connection failed reports PeerFailed;
//     this node then broadcasts suspect(peer, incarnation as known);
//   - a suspect not refuted within suspicion_timeout becomes failed, on every
//     node from the same suspect record: the failed record is derived from it
//     deterministically (same reporter, status_since = suspect's +
//     timeout), so the reporter's broadcast of it merges as a no-op
//     everywhere else;
//   - failed and left records are reaped reap_after_ms after status_since
//     (the asserter's wall clock), and a reaped-age record is refused, so a
//     slow peer's table cannot bring a reaped member back. Only the member
//     itself can, with a higher incarnation.
// Time comes in as a LocatorClock: `now` (monotonic, for the suspicion
// timers) and `wall_ms` (for status_since and reaping).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "common/time.h"

namespace gv::membership {

// Ordered by precedence at equal incarnation: left > failed > suspect > alive.
enum class MemberStatus : std::uint8_t { kAlive = 0, kSuspect = 1, kFailed = 2, kLeft = 3 };

// "alive", "suspect", "failed", "left".
const char* MemberStatusName(MemberStatus status);
bool ParseMemberStatus(std::string_view text, MemberStatus* out);

struct MemberRecord {
  NodeId node;
  std::string name;     // a DNS label: 1-63 letters, digits or '-'
  std::string address;  // peer address "IP:PORT"
  std::string http;     // HTTP API address
  std::string dns;      // DNS address
  std::map<std::string, std::string> tags;
  // Raised only by the node itself (at start and to refute a suspicion).
  std::uint64_t incarnation = 0;
  // The incarnation the node started with: services carry it, so a restarted
  // node's services from an earlier run are recognised as gone.
  std::uint64_t epoch = 0;
  MemberStatus status = MemberStatus::kAlive;
  // Who asserted `status`: the node itself for alive and left, the suspecting
  // node for suspect and failed. Never 0.
  NodeId reporter;
  // The asserter's wall clock (ms) when it asserted `status`.
  std::uint64_t status_since_wall_ms = 0;
  bool operator==(const MemberRecord&) const = default;
};

struct MemberRecordLimits {
  std::size_t max_address_bytes = 256;
  std::size_t max_tag_bytes = 4096;  // keys and values together (daemon/agent_config.h kMaxTagBytes)
  std::size_t max_tags = 256;
};

// Whether `name` is a node name: 1-63 letters, digits or '-' (a DNS label).
bool IsValidNodeName(std::string_view name);

// The rules every record obeys, however it arrived: non-zero node and
// reporter, a valid name, bounded strings, tags within max_tag_bytes,
// incarnation >= epoch >= 1, alive and left asserted by the node itself,
// suspect and failed by another node.
Status ValidateMemberRecord(const MemberRecord& record, const MemberRecordLimits& limits = {});

// SWIM/Serf precedence as a strict total order over records of one node:
// higher incarnation first, then status (left > failed > suspect > alive),
// then every other field, so two distinct records are never tied.
// Returns <0, 0 or >0 as a ranks below, equal to or above b.
int CompareMemberPrecedence(const MemberRecord& a, const MemberRecord& b);

struct LocatorClock {
  TimePoint now;               // monotonic: suspicion and TTL deadlines
  std::uint64_t wall_ms = 0;   // wall clock: status_since and reaping
};

struct MemberListConfig {
  Duration suspicion_timeout = Millis(1000);
  std::uint64_t reap_after_ms = 24ull * 3600 * 1000;
  std::size_t max_members = 10000;
  MemberRecordLimits limits;
};

// What this node is, as it announces itself.
struct LocalMember {
  NodeId id;
  std::string name, address, http, dns;
  std::map<std::string, std::string> tags;
};

// A member whose visible state changed: `before`/`after` are absent when
// the member was unknown / is gone (reaped).
struct MemberChange {
  NodeId node;
  std::optional<MemberStatus> before;
  std::optional<MemberStatus> after;
};

struct MemberOutbox {
  std::vector<MemberRecord> broadcasts;  // to send as broadcasts, in order
  std::vector<MemberChange> changes;     // for the service catalog, metrics and logs
};

enum class MergeOutcome {
  kApplied,   // the record superseded what this node held
  kStale,     // equal to or below what it held (or of reaped age)
  kRefused,   // invalid, or a new member over max_members
  kRefuted,   // about this node: answered with a higher incarnation (or ignored when it was not news)
};

struct MemberListMetrics {
  std::uint64_t suspicions_raised = 0;   // by this node (PeerFailed)
  std::uint64_t refutations = 0;         // of suspicions about this node
  std::uint64_t suspicions_refuted = 0;  // members seen going suspect -> alive
  std::uint64_t failures_declared = 0;   // suspect -> failed on this node's timer
  std::uint64_t reaped = 0;
  std::uint64_t records_refused = 0;
};

class MemberList {
 public:
  // `start_incarnation` (>= 1): the node's wall clock in ms at start, so it
  // outranks every record of its earlier runs. It is also the node's epoch.
  MemberList(LocalMember local, std::uint64_t start_incarnation, MemberListConfig config = {});

  // Our alive record, to broadcast (at start and after a neighbour appears).
  void Announce(const LocatorClock& clock, MemberOutbox& out);
  // Our left record (graceful leave). Suspicions about us are not refuted
  // afterwards.
  void Leave(const LocatorClock& clock, MemberOutbox& out);
  // An active-view neighbour's connection failed: suspect it (once per
  // incarnation) and broadcast the suspicion.
  void PeerFailed(NodeId peer, const LocatorClock& clock, MemberOutbox& out);
  MergeOutcome Merge(const MemberRecord& record, const LocatorClock& clock, MemberOutbox& out);
  // Suspicion timeouts and reaping.
  void Tick(const LocatorClock& clock, MemberOutbox& out);

  const MemberRecord& self() const { return members_.at(self_); }
  NodeId self_id() const { return self_; }
  std::uint64_t epoch() const { return epoch_; }
  const MemberRecord* Find(NodeId node) const;
  // The live record (not left, not reaped) with this name; with two (a name
  // reused by a new node id), the higher incarnation.
  const MemberRecord* FindByName(std::string_view name) const;
  const std::map<NodeId, MemberRecord>& members() const { return members_; }
  // Bumped at every visible change (the X-Grapevine-Index of /v1/members).
  std::uint64_t index() const { return index_; }
  const MemberListMetrics& metrics() const { return metrics_; }

 private:
  void Set(const MemberRecord& record, MemberOutbox& out);
  void Refute(std::uint64_t above, const LocatorClock& clock, MemberOutbox& out);
  bool ReapAge(const MemberRecord& record, const LocatorClock& clock) const;

  NodeId self_;
  std::uint64_t epoch_;
  MemberListConfig config_;
  bool left_ = false;
  std::map<NodeId, MemberRecord> members_;
  // Suspects and when this node declares them failed, from the first suspect
  // record it held at that incarnation.
  std::map<NodeId, TimePoint> suspicion_deadlines_;
  std::uint64_t index_ = 1;
  MemberListMetrics metrics_;
};

}  // namespace gv::membership
