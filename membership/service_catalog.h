// ServiceCatalog: the service locator's services (issue 6,
// docs/services.md), sans-IO.
//
// A service is owned by the agent it was registered at. The owner tracks its
// TTL (monotonic deadlines) and broadcasts only transitions, each with a
// higher per-service version: registered (passing), critical when the TTL
// lapses without a pass, passing again on a pass, removed (a tombstone) on
// deregistration. Every node merges the records it receives with
// CompareServicePrecedence — a strict total order on (owner epoch, version,
// then every field) — so merging is commutative and idempotent.
//
// What a query sees combines the record with its owner's member record:
//   owner alive or suspect, record passing  -> passing
//   owner alive or suspect, record critical -> critical
//   owner failed, or not (yet) known        -> critical
//   owner left, record removed, or the record is from an earlier run of the
//   owner (owner_epoch below the member's epoch) -> not listed at all.
// Records of departed owners and tombstones are dropped after reap_after_ms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "common/time.h"
#include "membership/member_list.h"

namespace gv::membership {

// Passing and critical are health; removed is a deregistration tombstone.
enum class ServiceStatus : std::uint8_t { kPassing = 0, kCritical = 1, kRemoved = 2 };

// "passing", "critical", "removed".
const char* ServiceStatusName(ServiceStatus status);

struct ServiceRecord {
  NodeId owner;                   // the agent it was registered at
  std::uint64_t owner_epoch = 0;  // the owner's epoch (MemberRecord::epoch) at registration
  std::string id;                 // unique per owner
  std::string name;
  std::string address;            // an IP literal, as registered
  std::uint16_t port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> meta;
  std::uint64_t ttl_ms = 0;       // 0: healthy while the owner lives
  ServiceStatus status = ServiceStatus::kPassing;
  std::uint64_t version = 0;      // raised by the owner at every transition, from 1
  std::uint64_t status_since_wall_ms = 0;
  bool operator==(const ServiceRecord&) const = default;
};

struct ServiceRecordLimits {
  std::size_t max_id_bytes = 128;
  std::size_t max_address_bytes = 64;
  std::size_t max_tags = 64;
  std::size_t max_meta = 64;
  std::size_t max_tag_and_meta_bytes = 4096;  // tags, meta keys and values together
  std::uint64_t max_ttl_ms = 24ull * 3600 * 1000;
};

// A service name: 1-63 of [a-z0-9-], not starting or ending with '-' (a DNS label).
bool IsValidServiceName(std::string_view name);
// A service id: 1-max_id_bytes of [A-Za-z0-9._-] (it appears in URL paths).
bool IsValidServiceId(std::string_view id, std::size_t max_id_bytes = 128);
Status ValidateServiceRecord(const ServiceRecord& record, const ServiceRecordLimits& limits = {});
// Strict total order over records of one (owner, id): higher (owner_epoch,
// version) first, then status, then every other field. <0, 0 or >0.
int CompareServicePrecedence(const ServiceRecord& a, const ServiceRecord& b);

using ServiceKey = std::pair<NodeId, std::string>;  // (owner, id)

struct ServiceCatalogConfig {
  std::uint64_t reap_after_ms = 24ull * 3600 * 1000;
  std::size_t max_local_services = 1000;
  std::size_t max_services = 50000;
  ServiceRecordLimits limits;
};

// What a client registers (PUT /v1/services).
struct ServiceRegistration {
  std::string id;
  std::string name;
  std::string address;
  std::uint16_t port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> meta;
  std::uint64_t ttl_ms = 0;
};

// One instance as a query sees it.
struct ServiceInstance {
  const ServiceRecord* record = nullptr;
  const MemberRecord* owner = nullptr;  // null when the owner is not known
  bool passing = false;
};

struct ServiceCatalogMetrics {
  std::uint64_t registrations = 0;
  std::uint64_t deregistrations = 0;
  std::uint64_t ttl_expiries = 0;  // local services gone critical
  std::uint64_t records_refused = 0;
  std::uint64_t reaped = 0;
};

enum class ServiceMergeOutcome { kApplied, kStale, kRefused };

class ServiceCatalog {
 public:
  ServiceCatalog(NodeId self, std::uint64_t self_epoch, ServiceCatalogConfig config = {});

  // Local services. Register refuses an invalid registration
  // (InvalidArgument) and a new one over max_local_services (TooLarge), and
  // changes nothing then. A re-registration of the same id with the same
  // fields is a pass; with other fields a new version.
  Result<ServiceRecord> Register(const ServiceRegistration& registration, const LocatorClock& clock,
                                 std::vector<ServiceRecord>& broadcasts);
  // NotFound for an id this node does not own (or that is removed).
  Status Pass(std::string_view id, const LocatorClock& clock, std::vector<ServiceRecord>& broadcasts);
  Status Deregister(std::string_view id, const LocatorClock& clock, std::vector<ServiceRecord>& broadcasts);
  // Every local service again (after the first neighbour appeared).
  void AnnounceLocal(std::vector<ServiceRecord>& broadcasts) const;

  // A record from another node. Records about services this node owns are
  // its own to decide: they are ignored (kStale); so are records of an owner
  // that left or of an earlier run of it (`members` knows a higher epoch).
  ServiceMergeOutcome Merge(const ServiceRecord& record, const LocatorClock& clock, const MemberList& members);
  // The owner's member record changed (or is gone: nullptr): the instances'
  // visible health may have changed, and a left owner's services go.
  void OwnerChanged(NodeId owner, const MemberRecord* member);
  // TTL expiries of local services (broadcast as critical) and reaping.
  void Tick(const LocatorClock& clock, const MemberList& members, std::vector<ServiceRecord>& broadcasts);

  // Instances of `name` (critical ones too with include_critical), ordered by
  // (owner, id).
  std::vector<ServiceInstance> Instances(std::string_view name, const MemberList& members,
                                         bool include_critical) const;
  // Names with at least one listed instance (passing or critical), sorted.
  std::vector<std::string> Names(const MemberList& members) const;

  const std::map<ServiceKey, ServiceRecord>& records() const { return records_; }
  std::size_t local_count() const;
  std::uint64_t index() const { return index_; }
  // The index of the last change to `name`'s instances (0: never changed).
  std::uint64_t NameIndex(std::string_view name) const;
  const ServiceCatalogMetrics& metrics() const { return metrics_; }

 private:
  void Put(const ServiceRecord& record);
  void Bump(const std::string& name);
  ServiceRecord* FindLocal(std::string_view id);

  NodeId self_;
  std::uint64_t self_epoch_;
  ServiceCatalogConfig config_;
  std::map<ServiceKey, ServiceRecord> records_;
  // TTL deadlines of this node's passing services with a TTL.
  std::map<std::string, TimePoint, std::less<>> ttl_deadlines_;
  std::map<std::string, std::uint64_t, std::less<>> name_index_;
  std::uint64_t index_ = 1;
  ServiceCatalogMetrics metrics_;
};

}  // namespace gv::membership
