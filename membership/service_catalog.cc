#include "membership/service_catalog.h"

#include <algorithm>
#include <tuple>

namespace gv::membership {

namespace {

Status Invalid(const std::string& what) { return Status::InvalidArgument(what); }
Status OverLimit(const std::string& what, std::size_t count, const char* limit_name, std::size_t limit) {
  return Status::TooLarge(what + " is " + std::to_string(count) + ", over " + limit_name + " = " +
                          std::to_string(limit));
}

bool OwnerLive(const MemberRecord* owner) {
  return owner != nullptr && (owner->status == MemberStatus::kAlive || owner->status == MemberStatus::kSuspect);
}

}  // namespace

const char* ServiceStatusName(ServiceStatus status) {
  switch (status) {
    case ServiceStatus::kPassing: return "passing";
    case ServiceStatus::kCritical: return "critical";
    case ServiceStatus::kRemoved: return "removed";
  }
  return "unknown";
}

bool IsValidServiceName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool IsValidServiceId(std::string_view id, std::size_t max_id_bytes) {
  if (id.empty() || id.size() > max_id_bytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status ValidateServiceRecord(const ServiceRecord& record, const ServiceRecordLimits& limits) {
  if (!record.owner.valid()) return Invalid("owner is node id 0");
  if (record.owner_epoch == 0) return Invalid("owner_epoch is 0");
  if (record.version == 0) return Invalid("version is 0 (versions start at 1)");
  if (!IsValidServiceId(record.id, limits.max_id_bytes)) {
    return Invalid("id '" + record.id.substr(0, 80) + "' is not 1-" + std::to_string(limits.max_id_bytes) +
                   " characters of [A-Za-z0-9._-]");
  }
  if (!IsValidServiceName(record.name)) {
    return Invalid("name '" + record.name.substr(0, 80) +
                   "' is not 1-63 characters of [a-z0-9-] (a DNS label, no '-' at either end)");
  }
  if (record.address.size() > limits.max_address_bytes) {
    return OverLimit("the address", record.address.size(), "max_address_bytes", limits.max_address_bytes);
  }
  if (record.tags.size() > limits.max_tags) return OverLimit("the tag count", record.tags.size(), "max_tags", limits.max_tags);
  if (record.meta.size() > limits.max_meta) return OverLimit("the meta count", record.meta.size(), "max_meta", limits.max_meta);
  std::size_t bytes = 0;
  for (const std::string& tag : record.tags) bytes += tag.size();
  for (const auto& [key, value] : record.meta) {
    if (key.empty()) return Invalid("a meta key is empty");
    bytes += key.size() + value.size();
  }
  if (bytes > limits.max_tag_and_meta_bytes) {
    return OverLimit("the size of tags and meta", bytes, "max_tag_and_meta_bytes", limits.max_tag_and_meta_bytes);
  }
  if (record.ttl_ms > limits.max_ttl_ms) return OverLimit("ttl_ms", record.ttl_ms, "max_ttl_ms", limits.max_ttl_ms);
  return Status::Ok();
}

int CompareServicePrecedence(const ServiceRecord& a, const ServiceRecord& b) {
  auto key = [](const ServiceRecord& r) {
    return std::tie(r.owner_epoch, r.version, r.status, r.status_since_wall_ms, r.name, r.address, r.port, r.ttl_ms,
                    r.tags, r.meta);
  };
  if (key(a) < key(b)) return -1;
  if (key(b) < key(a)) return 1;
  return 0;
}

ServiceCatalog::ServiceCatalog(NodeId self, std::uint64_t self_epoch, ServiceCatalogConfig config)
    : self_(self), self_epoch_(self_epoch), config_(config) {}

std::uint64_t ServiceCatalog::NameIndex(std::string_view name) const {
  auto it = name_index_.find(name);
  return it == name_index_.end() ? 0 : it->second;
}

void ServiceCatalog::Bump(const std::string& name) {
  ++index_;
  name_index_[name] = index_;
}

void ServiceCatalog::Put(const ServiceRecord& record) {
  auto key = ServiceKey(record.owner, record.id);
  auto it = records_.find(key);
  // A renamed service changes the instances of both names.
  if (it != records_.end() && it->second.name != record.name) Bump(it->second.name);
  records_[key] = record;
  Bump(record.name);
}

ServiceRecord* ServiceCatalog::FindLocal(std::string_view id) {
  auto it = records_.find(ServiceKey(self_, std::string(id)));
  if (it == records_.end() || it->second.status == ServiceStatus::kRemoved) return nullptr;
  return &it->second;
}

std::size_t ServiceCatalog::local_count() const {
  std::size_t count = 0;
  for (auto it = records_.lower_bound(ServiceKey(self_, std::string())); it != records_.end() && it->first.first == self_;
       ++it) {
    if (it->second.status != ServiceStatus::kRemoved) ++count;
  }
  return count;
}

Result<ServiceRecord> ServiceCatalog::Register(const ServiceRegistration& registration, const LocatorClock& clock,
                                               std::vector<ServiceRecord>& broadcasts) {
  ServiceRecord record;
  record.owner = self_;
  record.owner_epoch = self_epoch_;
  record.id = registration.id;
  record.name = registration.name;
  record.address = registration.address;
  record.port = registration.port;
  record.tags = registration.tags;
  record.meta = registration.meta;
  record.ttl_ms = registration.ttl_ms;
  record.status = ServiceStatus::kPassing;
  record.status_since_wall_ms = clock.wall_ms;
  auto it = records_.find(ServiceKey(self_, registration.id));
  // A removed id keeps counting from its tombstone, so the new registration
  // outranks the tombstone everywhere.
  record.version = it == records_.end() ? 1 : it->second.version + 1;
  GV_RETURN_IF_ERROR(ValidateServiceRecord(record, config_.limits));
  const bool live = it != records_.end() && it->second.status != ServiceStatus::kRemoved;
  if (!live && local_count() >= config_.max_local_services) {
    return OverLimit("this agent's service count", local_count(), "max_local_services", config_.max_local_services);
  }
  if (live) {
    const ServiceRecord& old = it->second;
    const bool same = old.name == record.name && old.address == record.address && old.port == record.port &&
                      old.tags == record.tags && old.meta == record.meta && old.ttl_ms == record.ttl_ms;
    if (same) {
      GV_RETURN_IF_ERROR(Pass(record.id, clock, broadcasts));
      return it->second;
    }
  }
  ++metrics_.registrations;
  Put(record);
  if (record.ttl_ms > 0) {
    ttl_deadlines_[record.id] = clock.now + Millis(static_cast<std::int64_t>(record.ttl_ms));
  } else {
    ttl_deadlines_.erase(record.id);
  }
  broadcasts.push_back(record);
  return record;
}

Status ServiceCatalog::Pass(std::string_view id, const LocatorClock& clock, std::vector<ServiceRecord>& broadcasts) {
  ServiceRecord* record = FindLocal(id);
  if (record == nullptr) return Status::NotFound("no service with id '" + std::string(id) + "' is registered at this agent");
  if (record->ttl_ms > 0) {
    ttl_deadlines_[record->id] = clock.now + Millis(static_cast<std::int64_t>(record->ttl_ms));
  }
  if (record->status == ServiceStatus::kCritical) {
    ServiceRecord next = *record;
    next.status = ServiceStatus::kPassing;
    next.version += 1;
    next.status_since_wall_ms = clock.wall_ms;
    Put(next);
    broadcasts.push_back(next);
  }
  return Status::Ok();
}

Status ServiceCatalog::Deregister(std::string_view id, const LocatorClock& clock,
                                  std::vector<ServiceRecord>& broadcasts) {
  ServiceRecord* record = FindLocal(id);
  if (record == nullptr) return Status::NotFound("no service with id '" + std::string(id) + "' is registered at this agent");
  ServiceRecord tombstone = *record;
  tombstone.status = ServiceStatus::kRemoved;
  tombstone.version += 1;
  tombstone.status_since_wall_ms = clock.wall_ms;
  ttl_deadlines_.erase(tombstone.id);
  ++metrics_.deregistrations;
  Put(tombstone);
  broadcasts.push_back(tombstone);
  return Status::Ok();
}

void ServiceCatalog::AnnounceLocal(std::vector<ServiceRecord>& broadcasts) const {
  for (auto it = records_.lower_bound(ServiceKey(self_, std::string())); it != records_.end() && it->first.first == self_;
       ++it) {
    broadcasts.push_back(it->second);
  }
}

ServiceMergeOutcome ServiceCatalog::Merge(const ServiceRecord& record, const LocatorClock& clock,
                                          const MemberList& members) {
  if (!ValidateServiceRecord(record, config_.limits).ok()) {
    ++metrics_.records_refused;
    return ServiceMergeOutcome::kRefused;
  }
  if (record.owner == self_) return ServiceMergeOutcome::kStale;
  const MemberRecord* owner = members.Find(record.owner);
  if (owner != nullptr && (owner->status == MemberStatus::kLeft || owner->epoch > record.owner_epoch)) {
    return ServiceMergeOutcome::kStale;
  }
  auto it = records_.find(ServiceKey(record.owner, record.id));
  if (it != records_.end() && CompareServicePrecedence(record, it->second) <= 0) return ServiceMergeOutcome::kStale;
  // A tombstone of reaped age is never stored (and clears what it supersedes).
  const bool reap_age = clock.wall_ms >= record.status_since_wall_ms &&
                        clock.wall_ms - record.status_since_wall_ms >= config_.reap_after_ms;
  if (record.status == ServiceStatus::kRemoved && reap_age) {
    if (it != records_.end()) {
      const std::string name = it->second.name;
      records_.erase(it);
      ++metrics_.reaped;
      Bump(name);
    }
    return ServiceMergeOutcome::kStale;
  }
  if (it == records_.end() && records_.size() >= config_.max_services) {
    ++metrics_.records_refused;
    return ServiceMergeOutcome::kRefused;
  }
  Put(record);
  return ServiceMergeOutcome::kApplied;
}

void ServiceCatalog::OwnerChanged(NodeId owner, const MemberRecord* member) {
  if (owner == self_) return;
  const bool gone = member == nullptr || member->status == MemberStatus::kLeft;
  for (auto it = records_.lower_bound(ServiceKey(owner, std::string())); it != records_.end() && it->first.first == owner;) {
    const std::string name = it->second.name;
    Bump(name);
    // Services of a departed owner, or of an earlier run of it, are gone.
    if (gone || it->second.owner_epoch < member->epoch) {
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
}

void ServiceCatalog::Tick(const LocatorClock& clock, const MemberList& members, std::vector<ServiceRecord>& broadcasts) {
  for (auto it = ttl_deadlines_.begin(); it != ttl_deadlines_.end();) {
    if (it->second > clock.now) {
      ++it;
      continue;
    }
    ServiceRecord* record = FindLocal(it->first);
    if (record != nullptr && record->status == ServiceStatus::kPassing) {
      ServiceRecord next = *record;
      next.status = ServiceStatus::kCritical;
      next.version += 1;
      next.status_since_wall_ms = clock.wall_ms;
      ++metrics_.ttl_expiries;
      Put(next);
      broadcasts.push_back(next);
    }
    it = ttl_deadlines_.erase(it);
  }
  for (auto it = records_.begin(); it != records_.end();) {
    const ServiceRecord& record = it->second;
    const bool old = clock.wall_ms >= record.status_since_wall_ms &&
                     clock.wall_ms - record.status_since_wall_ms >= config_.reap_after_ms;
    // Tombstones, and records whose owner this node does not know (reaped,
    // or never announced), go once they are old.
    const bool drop = old && (record.status == ServiceStatus::kRemoved ||
                              (record.owner != self_ && members.Find(record.owner) == nullptr));
    if (drop) {
      const std::string name = record.name;
      it = records_.erase(it);
      ++metrics_.reaped;
      Bump(name);
    } else {
      ++it;
    }
  }
}

std::vector<ServiceInstance> ServiceCatalog::Instances(std::string_view name, const MemberList& members,
                                                       bool include_critical) const {
  std::vector<ServiceInstance> out;
  for (const auto& [key, record] : records_) {
    if (record.name != name || record.status == ServiceStatus::kRemoved) continue;
    const MemberRecord* owner = members.Find(record.owner);
    if (owner != nullptr && (owner->status == MemberStatus::kLeft || owner->epoch > record.owner_epoch)) continue;
    ServiceInstance instance{&record, owner, record.status == ServiceStatus::kPassing && OwnerLive(owner)};
    if (instance.passing || include_critical) out.push_back(instance);
  }
  return out;
}

std::vector<std::string> ServiceCatalog::Names(const MemberList& members) const {
  std::set<std::string> names;
  for (const auto& [key, record] : records_) {
    if (record.status == ServiceStatus::kRemoved) continue;
    const MemberRecord* owner = members.Find(record.owner);
    if (owner != nullptr && (owner->status == MemberStatus::kLeft || owner->epoch > record.owner_epoch)) continue;
    names.insert(record.name);
  }
  return {names.begin(), names.end()};
}

}  // namespace gv::membership
