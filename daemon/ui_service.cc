// UiService (see ui_service.h and docs/ui.md).
#include "daemon/ui_service.h"

#include <nlohmann/json.hpp>

#include <set>
#include <utility>

#include "daemon/json_views.h"

namespace gv::daemon {
namespace {

using json = nlohmann::json;
using http::Request;
using http::Responder;
using http::Response;

constexpr std::string_view kUiPrefix = "/ui/";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string SseEvent(std::string_view type, const std::string& data) {
  std::string out;
  out.reserve(data.size() + type.size() + 16);
  out.append("event: ").append(type).append("\ndata: ").append(data).append("\n\n");
  return out;
}

}  // namespace

struct UiService::Impl {
  uv_loop_t* loop;
  UiHost host;
  UiOptions options;
  uv_timer_t timer{};
  bool timer_running = false;
  bool closing = false;
  std::function<void()> on_closed;

  std::vector<Responder> streams;
  std::uint64_t last_keepalive_ms = 0;
  std::optional<wire::OverlayRecord> last_self;  // as last sent

  // Pending changes, newest wins per node.
  std::map<NodeId, json> records;
  std::set<NodeId> left;
  std::map<NodeId, json> members;
  json applies = json::array();
  std::uint64_t dropped_applies = 0;

  Impl(uv_loop_t* l, UiHost h, UiOptions o) : loop(l), host(std::move(h)), options(o) {
    uv_timer_init(loop, &timer);
    timer.data = this;
  }

  bool Watched() const { return !closing && !streams.empty(); }

  void Clear() {
    records.clear();
    left.clear();
    members.clear();
    applies = json::array();
    dropped_applies = 0;
  }

  void ServeAsset(Request& req, Responder responder) {
    std::string_view rest = std::string_view(req.path).substr(kUiPrefix.size());
    if (rest.empty()) rest = "index.html";
    for (const UiAsset& asset : UiAssets()) {
      if (asset.path != rest) continue;
      Response response;
      response.status = 200;
      response.content_type = std::string(asset.content_type);
      if (response.content_type.starts_with("text/")) response.content_type += "; charset=utf-8";
      response.body.assign(reinterpret_cast<const char*>(asset.data), asset.size);
      // The page is rebuilt with the binary; a reload after an upgrade must not mix versions.
      response.headers.emplace_back("Cache-Control", "no-cache");
      response.headers.emplace_back("X-Content-Type-Options", "nosniff");
      responder.Finish(std::move(response));
      return;
    }
    responder.Finish(Response::Error(404, "not_found", "no such file in the web UI: /ui/" + std::string(rest.substr(0, 128))));
  }

  // /v1/status for a page served by another agent of the cluster: CORS only
  // for origins that are members' HTTP addresses.
  void ServeStatus(Request& req, Responder responder) {
    Response response = Response::Json(200, host.status_json());
    const std::string_view origin = req.Header("origin");
    if (!origin.empty()) {
      for (const auto& [id, member] : host.members().members()) {
        if (!member.http.empty() && origin == "http://" + member.http) {
          response.headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
          break;
        }
      }
      response.headers.emplace_back("Vary", "Origin");
    }
    response.headers.emplace_back("Cache-Control", "no-store");
    responder.Finish(std::move(response));
  }

  void ServeEvents(Request&, Responder responder) {
    if (closing) {
      responder.Finish(Response::Error(503, "unavailable", "the agent is shutting down"));
      return;
    }
    DropDeadStreams();
    if (streams.size() >= options.max_streams) {
      responder.Finish(Response::Error(503, "unavailable", "too many event streams"));
      return;
    }
    json members_json = json::array();
    for (const auto& [id, member] : host.members().members()) members_json.push_back(MemberJson(member));
    json snapshot = {{"self", host.self.ToString()},
                     {"topology", json::parse(host.topology_json(), nullptr, false)},
                     {"members", std::move(members_json)},
                     {"flush_interval_ms", options.flush_interval_ms}};
    // With other streams open, last_self stays what they were sent.
    if (streams.empty()) last_self = host.local_record();
    responder.StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    // Retry after 1 s when the connection drops (EventSource reconnects by itself).
    responder.Send("retry: 1000\n\n" + SseEvent("snapshot", Dump(snapshot)));
    if (streams.empty()) Clear();  // nothing pending is older than this snapshot
    streams.push_back(responder);
    if (!timer_running) {
      timer_running = true;
      last_keepalive_ms = uv_now(loop);
      uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->Flush(); }, options.flush_interval_ms,
                     options.flush_interval_ms);
    }
  }

  void DropDeadStreams() {
    std::erase_if(streams, [](const Responder& r) { return !r.alive(); });
  }

  void Flush() {
    DropDeadStreams();
    if (streams.empty()) {
      Clear();
      uv_timer_stop(&timer);
      timer_running = false;
      return;
    }
    const std::uint64_t now = uv_now(loop);
    wire::OverlayRecord self_record = host.local_record();
    if (!last_self || *last_self != self_record) {
      records[host.self] = OverlayRecordJson(self_record, 0, true);
      last_self = std::move(self_record);
    }
    std::string chunk;
    if (!records.empty() || !left.empty() || !members.empty() || !applies.empty() || dropped_applies != 0) {
      json batch = json::object();
      json recs = json::array();
      for (auto& [id, r] : records) recs.push_back(std::move(r));
      json gone = json::array();
      for (NodeId id : left) gone.push_back(id.ToString());
      json mems = json::array();
      for (auto& [id, m] : members) mems.push_back(std::move(m));
      batch["records"] = std::move(recs);
      batch["left"] = std::move(gone);
      batch["members"] = std::move(mems);
      batch["applies"] = std::move(applies);
      batch["dropped_applies"] = dropped_applies;
      Clear();
      chunk = SseEvent("batch", Dump(batch));
      last_keepalive_ms = now;
    } else if (now - last_keepalive_ms >= options.keepalive_ms) {
      chunk = ": keepalive\n\n";
      last_keepalive_ms = now;
    }
    if (chunk.empty()) return;
    for (Responder& stream : streams) stream.Send(chunk);
  }

  void CloseAll(std::function<void()> done) {
    if (closing) return;
    closing = true;
    on_closed = std::move(done);
    for (Responder& stream : streams) stream.End();
    streams.clear();
    Clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), [](uv_handle_t* h) {
      Impl* impl = static_cast<Impl*>(h->data);
      auto cb = std::move(impl->on_closed);
      if (cb) cb();
    });
  }
};

UiService::UiService(uv_loop_t* loop, UiHost host, UiOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(host), options)) {}

UiService::~UiService() = default;

void UiService::RegisterRoutes(http::HttpServer& server) {
  Impl* impl = impl_.get();
  server.Route("GET", std::string(kUiPrefix), [impl](Request& req, Responder r) { impl->ServeAsset(req, std::move(r)); });
  server.Route("GET", "/ui", [](Request&, Responder r) {
    Response response;
    response.status = 301;
    response.content_type = "text/plain";
    response.body = "see /ui/\n";
    response.headers.emplace_back("Location", "/ui/");
    r.Finish(std::move(response));
  });
  server.Route("GET", "/ui/api/status", [impl](Request& req, Responder r) { impl->ServeStatus(req, std::move(r)); });
  server.Route("GET", "/v1/events", [impl](Request& req, Responder r) { impl->ServeEvents(req, std::move(r)); });
}

bool UiService::watched() const { return impl_->Watched(); }

void UiService::OnRecord(const wire::OverlayRecord& record, std::uint64_t age_ms) {
  if (!impl_->Watched()) return;
  impl_->left.erase(record.node);
  impl_->records[record.node] = OverlayRecordJson(record, age_ms, record.node == impl_->host.self);
}

void UiService::OnRecordLeft(NodeId node) {
  if (!impl_->Watched()) return;
  impl_->records.erase(node);
  impl_->left.insert(node);
}

void UiService::OnMemberChanged(NodeId node, const membership::MemberRecord* member) {
  if (!impl_->Watched()) return;
  if (member != nullptr) {
    impl_->members[node] = MemberJson(*member);
  } else {
    impl_->members[node] = json{{"id", node.ToString()}, {"status", "reaped"}};
  }
}

void UiService::OnApplied(const std::vector<statestore::DeltaId>& applied, const statestore::Delta* delta) {
  if (!impl_->Watched()) return;
  for (const statestore::DeltaId& id : applied) {
    if (impl_->applies.size() >= impl_->options.max_applies_per_batch) {
      ++impl_->dropped_applies;
      continue;
    }
    json entry = {{"origin", id.origin.ToString()}, {"seq", id.seq}};
    if (delta != nullptr && delta->origin == id.origin && delta->seq == id.seq) {
      json keys = json::array();
      for (const statestore::Op& op : delta->ops) {
        if (keys.size() >= 8) break;
        keys.push_back(op.key);
      }
      entry["keys"] = std::move(keys);
      entry["ops"] = delta->ops.size();
    }
    impl_->applies.push_back(std::move(entry));
  }
}

void UiService::Close(std::function<void()> on_closed) { impl_->CloseAll(std::move(on_closed)); }

}  // namespace gv::daemon
