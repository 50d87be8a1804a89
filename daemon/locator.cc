#include "daemon/locator.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "daemon/http/url.h"
#include "daemon/json_views.h"
#include "daemon/net_address.h"
#include "wire/member_record.h"
#include "wire/overlay_record.h"
#include "wire/service_record.h"

namespace gv::daemon {

using http::Request;
using http::Responder;
using http::Response;
using membership::MemberRecord;
using membership::MemberStatus;
using membership::ServiceRecord;
using membership::ServiceStatus;
using nlohmann::json;

namespace {

constexpr std::string_view kServicesPrefix = "/v1/services/";
constexpr std::string_view kPassSuffix = "/pass";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Response FromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound: return Response::Error(404, "not_found", status.message());
    case StatusCode::kTooLarge: return Response::Error(413, "too_large", status.message());
    case StatusCode::kInvalidArgument: return Response::Error(400, "bad_request", status.message());
    default: return Response::Error(500, "internal", status.ToString());
  }
}

bool IsIpLiteral(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// A registration body: {"id","name","address","port","tags":[],"meta":{},"ttl":"10s"}.
// Every field is checked for its type; `default_address` fills a missing address.
Result<membership::ServiceRegistration> ParseRegistration(std::string_view body, const std::string& default_address) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("the body is not a JSON object");
  static const char* kKnown[] = {"id", "name", "address", "port", "tags", "meta", "ttl"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return it.key() == k; }) ==
        std::end(kKnown)) {
      return Status::InvalidArgument("unknown field \"" + it.key().substr(0, 64) +
                                     "\" (known: id, name, address, port, tags, meta, ttl)");
    }
  }
  membership::ServiceRegistration r;
  if (!j.contains("name") || !j["name"].is_string()) return Status::InvalidArgument("\"name\" (a string) is required");
  r.name = j["name"].get<std::string>();
  if (!membership::IsValidServiceName(r.name)) {
    return Status::InvalidArgument("\"name\" must be 1-63 characters of [a-z0-9-], no '-' at either end (a DNS label)");
  }
  if (j.contains("id")) {
    if (!j["id"].is_string()) return Status::InvalidArgument("\"id\" must be a string");
    r.id = j["id"].get<std::string>();
  } else {
    r.id = r.name;  // as Consul: one instance per name unless ids are given
  }
  if (!membership::IsValidServiceId(r.id)) {
    return Status::InvalidArgument("\"id\" must be 1-128 characters of [A-Za-z0-9._-]");
  }
  if (j.contains("address")) {
    if (!j["address"].is_string()) return Status::InvalidArgument("\"address\" must be a string");
    r.address = j["address"].get<std::string>();
  } else {
    r.address = default_address;
  }
  if (!IsIpLiteral(r.address)) {
    return Status::InvalidArgument("\"address\" must be an IPv4 or IPv6 literal (got '" + r.address.substr(0, 64) + "')");
  }
  if (j.contains("port")) {
    if (!j["port"].is_number_integer() || j["port"].get<std::int64_t>() < 0 || j["port"].get<std::int64_t>() > 65535) {
      return Status::InvalidArgument("\"port\" must be an integer 0-65535");
    }
    r.port = static_cast<std::uint16_t>(j["port"].get<std::int64_t>());
  }
  if (j.contains("tags")) {
    if (!j["tags"].is_array()) return Status::InvalidArgument("\"tags\" must be an array of strings");
    for (const auto& tag : j["tags"]) {
      if (!tag.is_string()) return Status::InvalidArgument("\"tags\" must be an array of strings");
      r.tags.push_back(tag.get<std::string>());
    }
  }
  if (j.contains("meta")) {
    if (!j["meta"].is_object()) return Status::InvalidArgument("\"meta\" must be an object of strings");
    for (auto it = j["meta"].begin(); it != j["meta"].end(); ++it) {
      if (!it.value().is_string()) return Status::InvalidArgument("\"meta\" values must be strings");
      r.meta[it.key()] = it.value().get<std::string>();
    }
  }
  if (j.contains("ttl") && !j["ttl"].is_null()) {
    if (!j["ttl"].is_string()) return Status::InvalidArgument("\"ttl\" must be a duration string such as \"10s\"");
    const std::string ttl = j["ttl"].get<std::string>();
    if (!ttl.empty()) {
      auto d = http::ParseDuration(ttl);
      if (!d.ok()) return Status::InvalidArgument("\"ttl\": " + d.status().message());
      const std::int64_t ms = ToMillis(*d);
      if (ms <= 0) return Status::InvalidArgument("\"ttl\" must be at least 1ms (omit it for no TTL)");
      r.ttl_ms = static_cast<std::uint64_t>(ms);
    }
  }
  return r;
}

}  // namespace

// ------------------------------------------------------------ blocking reads

// What a waiting read covers.
enum class WatchKind { kMembers, kServiceNames, kService };

struct LocatorWaiter {
  uv_timer_t timer;  // first member: the close callback frees the waiter
  Locator::Impl* impl = nullptr;
  std::uint64_t id = 0;
  WatchKind kind = WatchKind::kMembers;
  std::uint64_t index = 0;
  Request request;
  Responder responder;
};

struct Locator::Impl {
  Locator* owner;
  uv_loop_t* loop;
  uv_timer_t check_timer{};
  std::map<std::uint64_t, LocatorWaiter*> waiters;
  std::uint64_t next_id = 1;
  bool started = false;
  bool closing = false;
  int open_handles = 0;
  std::function<void()> on_closed;

  Impl(Locator* o, uv_loop_t* l) : owner(o), loop(l) {
    uv_timer_init(loop, &check_timer);
    check_timer.data = this;
    ++open_handles;
  }

  std::uint64_t CurrentIndex(WatchKind kind, const Request& req) const {
    switch (kind) {
      case WatchKind::kMembers: return owner->members_->index();
      case WatchKind::kServiceNames: return owner->catalog_->index();
      case WatchKind::kService:
        return owner->catalog_->NameIndex(std::string_view(req.path).substr(kServicesPrefix.size()));
    }
    return 0;
  }

  Response Read(WatchKind kind, const Request& req) const {
    switch (kind) {
      case WatchKind::kMembers: return owner->MembersResponse(req);
      case WatchKind::kServiceNames: return owner->NamesResponse();
      case WatchKind::kService: return owner->InstancesResponse(req);
    }
    return Response::Error(500, "internal", "unknown read");
  }

  // Answers at once, or holds the read with ?index=N until CurrentIndex > N.
  void Get(WatchKind kind, Request& req, Responder responder) {
    const std::string* index_param = req.Param("index");
    if (index_param == nullptr) {
      responder.Finish(Read(kind, req));
      return;
    }
    auto index = http::ParseUint(*index_param);
    if (!index.ok()) {
      responder.Finish(Response::Error(400, "bad_request", "?index: " + index.status().message()));
      return;
    }
    std::int64_t wait_ms = owner->options_.default_wait_ms;
    if (const std::string* wait = req.Param("wait")) {
      auto d = http::ParseDuration(*wait);
      if (!d.ok()) {
        responder.Finish(Response::Error(400, "bad_request", "?wait: " + d.status().message()));
        return;
      }
      wait_ms = std::min<std::int64_t>(ToMillis(*d), owner->options_.max_wait_ms);
    }
    if (CurrentIndex(kind, req) > *index || wait_ms <= 0 || closing) {
      responder.Finish(Read(kind, req));
      return;
    }
    if (waiters.size() >= owner->options_.max_blocking_reads) {
      responder.Finish(Response::Error(503, "unavailable", "too many blocking reads; retry without ?index or later"));
      return;
    }
    auto* waiter = new LocatorWaiter{};
    uv_timer_init(loop, &waiter->timer);
    ++open_handles;
    waiter->timer.data = waiter;
    waiter->impl = this;
    waiter->id = next_id++;
    waiter->kind = kind;
    waiter->index = *index;
    waiter->request = std::move(req);
    waiter->responder = responder;
    waiters[waiter->id] = waiter;
    uv_timer_start(&waiter->timer, [](uv_timer_t* t) {
      auto* w = static_cast<LocatorWaiter*>(t->data);
      w->impl->Wake(w);
    }, static_cast<std::uint64_t>(wait_ms), 0);
  }

  void Wake(LocatorWaiter* waiter) {
    waiters.erase(waiter->id);
    waiter->responder.Finish(Read(waiter->kind, waiter->request));
    uv_close(reinterpret_cast<uv_handle_t*>(&waiter->timer), [](uv_handle_t* h) {
      auto* w = reinterpret_cast<LocatorWaiter*>(h);
      Impl* impl = w->impl;
      delete w;
      impl->HandleClosed();
    });
  }

  // After any change: answers the reads whose index moved.
  void WakeChanged() {
    std::vector<LocatorWaiter*> ready;
    for (auto& [id, waiter] : waiters) {
      if (CurrentIndex(waiter->kind, waiter->request) > waiter->index) ready.push_back(waiter);
    }
    for (LocatorWaiter* waiter : ready) Wake(waiter);
  }

  void HandleClosed() {
    if (--open_handles == 0 && closing && on_closed) {
      auto cb = std::move(on_closed);
      on_closed = nullptr;
      cb();
    }
  }

  void Close(std::function<void()> cb) {
    if (closing) return;
    closing = true;
    on_closed = std::move(cb);
    std::vector<LocatorWaiter*> waiting;
    for (auto& [id, waiter] : waiters) waiting.push_back(waiter);
    for (LocatorWaiter* waiter : waiting) Wake(waiter);
    uv_timer_stop(&check_timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&check_timer),
             [](uv_handle_t* h) { static_cast<Impl*>(h->data)->HandleClosed(); });
  }
};

// ------------------------------------------------------------ the locator

Locator::Locator(uv_loop_t* loop, LocatorHost host, LocatorOptions options)
    : loop_(loop), host_(std::move(host)), options_(options), rng_(host_.self.value ^ host_.wall_ms()) {
  membership::LocalMember local{host_.self,        host_.name,        host_.peer_address,
                                host_.http_address, host_.dns_address, host_.tags};
  membership::MemberListConfig member_config;
  member_config.suspicion_timeout = Millis(static_cast<std::int64_t>(options_.suspicion_timeout_ms));
  member_config.reap_after_ms = options_.reap_after_ms;
  member_config.max_members = options_.max_members;
  // The wall clock at start is the first incarnation (and the epoch): a
  // restarted node outranks every record of its earlier runs.
  members_ = std::make_unique<membership::MemberList>(std::move(local), std::max<std::uint64_t>(1, host_.wall_ms()),
                                                      member_config);
  membership::ServiceCatalogConfig catalog_config;
  catalog_config.reap_after_ms = options_.reap_after_ms;
  catalog_config.max_services = options_.max_services;
  catalog_config.max_local_services = options_.max_local_services;
  catalog_ = std::make_unique<membership::ServiceCatalog>(host_.self, members_->epoch(), catalog_config);
  impl_ = std::make_unique<Impl>(this, loop_);
}

Locator::~Locator() {
  if (impl_->open_handles != 0) {
    std::fprintf(stderr, "Locator destroyed while open; call Close() and run the loop first\n");
    std::abort();
  }
}

membership::LocatorClock Locator::Clock() const {
  return membership::LocatorClock{TimeFromMicros(static_cast<std::int64_t>(uv_now(loop_)) * 1000), host_.wall_ms()};
}

bool Locator::IsLocatorPayload(std::string_view payload) {
  return wire::HasFileIdentifier(payload, wire::kMemberRecordFileIdentifier) ||
         wire::HasFileIdentifier(payload, wire::kServiceRecordFileIdentifier);
}

void Locator::Start() {
  if (impl_->started) return;
  impl_->started = true;
  last_state_sync_ms_ = uv_now(loop_);
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  members_->Announce(Clock(), out);
  Flush(out, services);
  uv_timer_start(&impl_->check_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->owner->Check(); },
                 options_.check_interval_ms, options_.check_interval_ms);
}

void Locator::Flush(membership::MemberOutbox& member_out, std::vector<ServiceRecord>& service_out) {
  for (const MemberRecord& record : member_out.broadcasts) {
    ++metrics_.broadcasts_sent;
    if (host_.broadcast) host_.broadcast(wire::EncodeMemberRecord(record));
  }
  for (const ServiceRecord& record : service_out) {
    ++metrics_.broadcasts_sent;
    if (host_.broadcast) host_.broadcast(wire::EncodeServiceRecord(record));
  }
  OnMemberChanges(member_out.changes);
  member_out = {};
  service_out.clear();
  impl_->WakeChanged();
}

void Locator::OnMemberChanges(const std::vector<membership::MemberChange>& changes) {
  for (const membership::MemberChange& change : changes) {
    const MemberRecord* member = members_->Find(change.node);
    catalog_->OwnerChanged(change.node, member);
    if (change.before == change.after) continue;
    if (host_.on_member_changed) host_.on_member_changed(change.node, member);
    const std::string name = member != nullptr ? member->name : change.node.ToString();
    const char* after = change.after ? membership::MemberStatusName(*change.after) : "reaped";
    if (change.after == MemberStatus::kFailed || change.after == MemberStatus::kSuspect) {
      spdlog::warn("member {} ({}) is {}", name, change.node.ToString(), after);
    } else {
      spdlog::info("member {} ({}) is {}", name, change.node.ToString(), after);
    }
  }
}

void Locator::OnBroadcast(std::string_view payload, NodeId origin) {
  if (impl_->closing) return;
  const membership::LocatorClock clock = Clock();
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  if (wire::HasFileIdentifier(payload, wire::kMemberRecordFileIdentifier)) {
    auto record = wire::DecodeMemberRecord(payload);
    if (!record.ok()) {
      ++metrics_.records_invalid;
      spdlog::warn("dropping a member record from {}: {}", origin.ToString(), record.status().ToString());
      return;
    }
    // A node speaks for itself (alive, left) or as the reporter of a suspicion.
    if (record->reporter != origin) {
      ++metrics_.records_invalid;
      spdlog::warn("dropping a member record from {}: it is asserted by {}", origin.ToString(),
                   record->reporter.ToString());
      return;
    }
    ++metrics_.records_received;
    members_->Merge(*record, clock, out);
  } else if (wire::HasFileIdentifier(payload, wire::kServiceRecordFileIdentifier)) {
    auto record = wire::DecodeServiceRecord(payload);
    if (!record.ok() || record->owner != origin) {
      ++metrics_.records_invalid;
      spdlog::warn("dropping a service record from {}: {}", origin.ToString(),
                   record.ok() ? "it names another owner" : record.status().ToString());
      return;
    }
    ++metrics_.records_received;
    catalog_->Merge(*record, clock, *members_);
  } else {
    ++metrics_.records_invalid;
    return;
  }
  Flush(out, services);
}

void Locator::OnPeerState(NodeId from, std::string_view data) {
  if (impl_->closing) return;
  auto table = wire::DecodeLocatorTable(data);
  if (!table.ok()) {
    ++metrics_.records_invalid;
    spdlog::warn("dropping a locator table from {}: {}", from.ToString(), table.status().ToString());
    return;
  }
  ++metrics_.tables_received;
  const membership::LocatorClock clock = Clock();
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  // Members first, so services find their owners.
  for (const MemberRecord& record : table->members) members_->Merge(record, clock, out);
  OnMemberChanges(out.changes);
  out.changes.clear();
  for (const ServiceRecord& record : table->services) catalog_->Merge(record, clock, *members_);
  Flush(out, services);
  if (table->reply_wanted) SendTable(from, /*reply_wanted=*/false);
}

void Locator::SendTable(NodeId peer, bool reply_wanted) {
  if (!host_.send_to_peer) return;
  wire::LocatorTable table;
  table.reply_wanted = reply_wanted;
  for (const auto& [id, record] : members_->members()) table.members.push_back(record);
  for (const auto& [key, record] : catalog_->records()) table.services.push_back(record);
  for (std::string& buffer : wire::EncodeLocatorTable(table)) {
    ++metrics_.tables_sent;
    host_.send_to_peer(peer, std::move(buffer));
  }
}

void Locator::OnNeighborUp(NodeId peer) {
  if (impl_->closing) return;
  neighbors_.insert(peer);
  SendTable(peer, /*reply_wanted=*/false);
  if (!announced_to_neighbor_ && !left_) {
    // Our start-up broadcast may have reached nobody: repeat it (and our
    // services) now that a neighbour can carry it. Merging is idempotent.
    announced_to_neighbor_ = true;
    membership::MemberOutbox out;
    std::vector<ServiceRecord> services;
    members_->Announce(Clock(), out);
    catalog_->AnnounceLocal(services);
    Flush(out, services);
  }
}

void Locator::OnPeerFailed(NodeId peer) {
  if (impl_->closing) return;
  neighbors_.erase(peer);
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  members_->PeerFailed(peer, Clock(), out);
  Flush(out, services);
}

void Locator::OnNeighborDown(NodeId peer) { neighbors_.erase(peer); }

void Locator::Check() {
  const membership::LocatorClock clock = Clock();
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  members_->Tick(clock, out);
  OnMemberChanges(out.changes);
  out.changes.clear();
  catalog_->Tick(clock, *members_, services);
  Flush(out, services);
  const std::uint64_t now_ms = uv_now(loop_);
  if (!neighbors_.empty() && now_ms - last_state_sync_ms_ >= options_.state_sync_interval_ms) {
    last_state_sync_ms_ = now_ms;
    std::vector<NodeId> peers(neighbors_.begin(), neighbors_.end());
    SendTable(peers[rng_.Index(peers.size())], /*reply_wanted=*/true);
  }
}

void Locator::Leave() {
  if (left_ || impl_->closing) return;
  left_ = true;
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  members_->Leave(Clock(), out);
  Flush(out, services);
}

void Locator::Close(std::function<void()> on_closed) { impl_->Close(std::move(on_closed)); }

// ------------------------------------------------------------ lookups

std::vector<Locator::ServiceAnswer> Locator::HealthyInstances(std::string_view service_name) const {
  std::vector<ServiceAnswer> out;
  for (const membership::ServiceInstance& instance : catalog_->Instances(service_name, *members_, false)) {
    out.push_back(ServiceAnswer{instance.owner != nullptr ? instance.owner->name : std::string(),
                                instance.record->address, instance.record->port});
  }
  return out;
}

std::optional<std::string> Locator::NodeAddress(std::string_view node_name) const {
  const MemberRecord* member = members_->FindByName(node_name);
  if (member == nullptr || (member->status != MemberStatus::kAlive && member->status != MemberStatus::kSuspect)) {
    return std::nullopt;
  }
  auto address = net::ParseSocketAddress(member->address);
  if (!address.ok()) return std::nullopt;
  return address->host;
}

// ------------------------------------------------------------ HTTP

http::Response Locator::WithIndex(http::Response response, std::uint64_t index) const {
  response.headers.emplace_back("X-Grapevine-Index", std::to_string(index));
  return response;
}

http::Response Locator::MembersResponse(const http::Request& req) const {
  std::optional<MemberStatus> status_filter;
  if (const std::string* status = req.Param("status")) {
    MemberStatus parsed;
    if (!membership::ParseMemberStatus(*status, &parsed)) {
      return Response::Error(400, "bad_request", "?status must be alive, suspect, failed or left");
    }
    status_filter = parsed;
  }
  std::optional<std::pair<std::string, std::string>> tag_filter;
  if (const std::string* tag = req.Param("tag")) {
    const auto eq = tag->find('=');
    if (eq == std::string::npos || eq == 0) return Response::Error(400, "bad_request", "?tag must be KEY=VALUE");
    tag_filter = std::make_pair(tag->substr(0, eq), tag->substr(eq + 1));
  }
  std::vector<const MemberRecord*> listed;
  for (const auto& [id, record] : members_->members()) {
    if (status_filter && record.status != *status_filter) continue;
    if (tag_filter) {
      auto it = record.tags.find(tag_filter->first);
      if (it == record.tags.end() || it->second != tag_filter->second) continue;
    }
    listed.push_back(&record);
  }
  std::sort(listed.begin(), listed.end(), [](const MemberRecord* a, const MemberRecord* b) {
    return std::tie(a->name, a->node) < std::tie(b->name, b->node);
  });
  json out = json::array();
  for (const MemberRecord* record : listed) out.push_back(MemberJson(*record));
  return WithIndex(Response::Json(200, Dump(out)), members_->index());
}

http::Response Locator::NamesResponse() const {
  return WithIndex(Response::Json(200, Dump(json(catalog_->Names(*members_)))), catalog_->index());
}

http::Response Locator::InstancesResponse(const http::Request& req) const {
  const std::string name = req.path.substr(kServicesPrefix.size());
  if (!membership::IsValidServiceName(name)) {
    return Response::Error(400, "bad_request", "'" + name.substr(0, 64) + "' is not a service name (1-63 of [a-z0-9-])");
  }
  json out = json::array();
  for (const membership::ServiceInstance& instance : catalog_->Instances(name, *members_, req.Has("all"))) {
    const ServiceRecord& r = *instance.record;
    out.push_back({{"id", r.id},
                   {"name", r.name},
                   {"node", r.owner.ToString()},
                   {"node_name", instance.owner != nullptr ? instance.owner->name : std::string()},
                   {"address", r.address},
                   {"port", r.port},
                   {"tags", r.tags},
                   {"meta", r.meta},
                   {"ttl_ms", r.ttl_ms},
                   {"version", r.version},
                   {"status", instance.passing ? "passing" : "critical"}});
  }
  return WithIndex(Response::Json(200, Dump(out)), catalog_->index());
}

void Locator::RegisterRoutes(http::HttpServer& server) {
  Impl* impl = impl_.get();
  server.Route("GET", "/v1/members", [impl](Request& req, Responder r) { impl->Get(WatchKind::kMembers, req, r); });
  server.Route("GET", "/v1/services",
               [impl](Request& req, Responder r) { impl->Get(WatchKind::kServiceNames, req, r); });
  server.Route("GET", std::string(kServicesPrefix),
               [impl](Request& req, Responder r) { impl->Get(WatchKind::kService, req, r); });
  server.Route("PUT", "/v1/services", [this](Request& req, Responder r) { r.Finish(HandleRegister(req)); });
  server.Route("PUT", std::string(kServicesPrefix), [this](Request& req, Responder r) { r.Finish(HandlePass(req)); });
  server.Route("DELETE", std::string(kServicesPrefix),
               [this](Request& req, Responder r) { r.Finish(HandleDeregister(req)); });
}

http::Response Locator::HandleRegister(const http::Request& req) {
  if (left_ || impl_->closing) return Response::Error(503, "unavailable", "the agent is leaving");
  auto address = net::ParseSocketAddress(host_.peer_address);
  auto registration = ParseRegistration(req.body, address.ok() ? address->host : std::string());
  if (!registration.ok()) return FromStatus(registration.status());
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  auto record = catalog_->Register(*registration, Clock(), services);
  if (!record.ok()) return FromStatus(record.status());
  Flush(out, services);
  return WithIndex(Response::Json(200, Dump(json{{"id", record->id},
                                                  {"name", record->name},
                                                  {"version", record->version},
                                                  {"status", membership::ServiceStatusName(record->status)}})),
                   catalog_->index());
}

http::Response Locator::HandlePass(const http::Request& req) {
  std::string_view rest = std::string_view(req.path).substr(kServicesPrefix.size());
  if (rest.size() <= kPassSuffix.size() || rest.substr(rest.size() - kPassSuffix.size()) != kPassSuffix) {
    return Response::Error(404, "not_found", "PUT /v1/services/<id>/pass refreshes a TTL; nothing else is under /v1/services/");
  }
  const std::string id(rest.substr(0, rest.size() - kPassSuffix.size()));
  if (!membership::IsValidServiceId(id)) return Response::Error(400, "bad_request", "'" + id.substr(0, 64) + "' is not a service id");
  if (left_ || impl_->closing) return Response::Error(503, "unavailable", "the agent is leaving");
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  Status status = catalog_->Pass(id, Clock(), services);
  if (!status.ok()) return FromStatus(status);
  Flush(out, services);
  return WithIndex(Response::Json(200, Dump(json{{"id", id}, {"status", "passing"}})), catalog_->index());
}

http::Response Locator::HandleDeregister(const http::Request& req) {
  const std::string id = req.path.substr(kServicesPrefix.size());
  if (!membership::IsValidServiceId(id)) return Response::Error(400, "bad_request", "'" + id.substr(0, 64) + "' is not a service id");
  if (left_ || impl_->closing) return Response::Error(503, "unavailable", "the agent is leaving");
  membership::MemberOutbox out;
  std::vector<ServiceRecord> services;
  Status status = catalog_->Deregister(id, Clock(), services);
  if (!status.ok()) return FromStatus(status);
  Flush(out, services);
  return WithIndex(Response::Json(200, Dump(json{{"id", id}, {"deregistered", true}})), catalog_->index());
}

// ------------------------------------------------------------ metrics

void Locator::WriteMetrics(PrometheusWriter& w) const {
  std::map<MemberStatus, std::uint64_t> by_status;
  for (const auto& [id, record] : members_->members()) ++by_status[record.status];
  auto members = w.Family("grapevine_members", PrometheusWriter::Type::kGauge, "Members known, by status");
  for (MemberStatus s : {MemberStatus::kAlive, MemberStatus::kSuspect, MemberStatus::kFailed, MemberStatus::kLeft}) {
    members.Sample(static_cast<double>(by_status[s]), {{"status", membership::MemberStatusName(s)}});
  }
  std::uint64_t passing = 0, critical = 0;
  for (const std::string& name : catalog_->Names(*members_)) {
    for (const auto& instance : catalog_->Instances(name, *members_, true)) ++(instance.passing ? passing : critical);
  }
  w.Family("grapevine_services", PrometheusWriter::Type::kGauge, "Service instances known, by health")
      .Sample(static_cast<double>(passing), {{"status", "passing"}})
      .Sample(static_cast<double>(critical), {{"status", "critical"}});
  w.Gauge("grapevine_services_local", "Services registered at this agent", static_cast<double>(catalog_->local_count()));
  const membership::MemberListMetrics& m = members_->metrics();
  w.Counter("grapevine_suspicions_raised_total", "Suspicions this node raised (a neighbour's connection failed)",
            static_cast<double>(m.suspicions_raised));
  w.Counter("grapevine_suspicions_refuted_total", "Members seen going from suspect back to alive",
            static_cast<double>(m.suspicions_refuted));
  w.Counter("grapevine_refutations_total", "Suspicions about this node it refuted", static_cast<double>(m.refutations));
  w.Counter("grapevine_failures_declared_total", "Suspects this node declared failed",
            static_cast<double>(m.failures_declared));
  w.Counter("grapevine_members_reaped_total", "Failed or left members dropped after reap_after",
            static_cast<double>(m.reaped));
  const membership::ServiceCatalogMetrics& s = catalog_->metrics();
  w.Counter("grapevine_service_registrations_total", "Service registrations at this agent",
            static_cast<double>(s.registrations));
  w.Counter("grapevine_service_deregistrations_total", "Service deregistrations at this agent",
            static_cast<double>(s.deregistrations));
  w.Counter("grapevine_service_ttl_expiries_total", "Local services gone critical (TTL lapsed)",
            static_cast<double>(s.ttl_expiries));
  w.Counter("grapevine_locator_records_received_total", "Member and service broadcasts received",
            static_cast<double>(metrics_.records_received));
  w.Counter("grapevine_locator_records_invalid_total", "Locator broadcasts or tables dropped as invalid",
            static_cast<double>(metrics_.records_invalid + m.records_refused + s.records_refused));
  w.Counter("grapevine_locator_tables_sent_total", "Locator tables sent to neighbours",
            static_cast<double>(metrics_.tables_sent));
  w.Counter("grapevine_locator_tables_received_total", "Locator tables received from neighbours",
            static_cast<double>(metrics_.tables_received));
}

}  // namespace gv::daemon
