#include "daemon/http/server.h"

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <new>
#include <set>

#include "daemon/net_address.h"

namespace gv::http {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Error";
  }
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

}  // namespace

Response Response::Error(int status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\"error\":\"" + JsonEscape(message) + "\",\"code\":\"" + JsonEscape(code) + "\"}\n";
  return r;
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

std::string_view Request::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

// ---------------------------------------------------------------------------

struct RouteEntry {
  std::string path;
  bool prefix = false;
  std::map<std::string, Handler> by_method;
  std::map<std::string, std::size_t> max_body_by_method;  // 0: the server's max_body_bytes
};

struct H2oHandler {
  h2o_handler_t base;  // first member: h2o hands us back a pointer to it
  HttpServer::Impl* impl;
};

struct HttpServer::Impl {
  HttpServer* owner = nullptr;
  uv_loop_t* loop = nullptr;
  HttpServerOptions options;
  h2o_globalconf_t config{};
  h2o_context_t ctx{};
  h2o_accept_ctx_t accept_ctx{};
  uv_tcp_t* listener = nullptr;  // freed in its close callback
  std::vector<RouteEntry> routes;
  std::set<RequestState*> open_states;  // requests h2o still holds
  std::size_t open_connections = 0;
  std::map<int, std::uint64_t> responses_by_status;
  std::uint64_t rejected_requests = 0;
  bool context_live = false;
  bool closing = false;
  std::function<void()> on_closed;

  void MaybeFinishClose();
};

// Generator wrapper: h2o calls proceed/stop with a pointer to `generator`.
struct StreamGenerator {
  h2o_generator_t generator;  // first member
  RequestState* state;
};

struct RequestState {
  HttpServer::Impl* impl = nullptr;
  h2o_req_t* req = nullptr;  // null once h2o has disposed the request or stopped the stream
  bool answered = false;
  bool streaming = false;
  bool end_requested = false;
  bool final_sent = false;
  bool sending = false;  // h2o holds in_flight until it calls proceed
  StreamGenerator gen{};
  std::deque<std::string> queued;
  std::size_t queued_bytes = 0;
  std::vector<std::string> in_flight;
  std::vector<h2o_iovec_t> iov;
  // Runs (once per arming) when nothing waits to be sent any more: a producer
  // that streams more than the buffer allows sends its next piece then.
  std::function<void()> on_drained;

  void Flush();
};

namespace {

// Lives in the request's memory pool; h2o runs DisposeSlot when it frees the
// request, which is how we learn the client is gone.
struct PoolSlot {
  std::shared_ptr<RequestState> state;
};

void DisposeSlot(void* p) {
  auto* slot = static_cast<PoolSlot*>(p);
  RequestState* state = slot->state.get();
  state->req = nullptr;
  state->on_drained = nullptr;  // it may hold a Responder: break the cycle
  state->impl->open_states.erase(state);
  slot->~PoolSlot();
}

void StreamProceed(h2o_generator_t* g, h2o_req_t*) {
  auto* gen = reinterpret_cast<StreamGenerator*>(g);
  RequestState* state = gen->state;
  state->sending = false;
  state->in_flight.clear();
  state->Flush();
  if (!state->sending && state->queued.empty() && state->on_drained && state->req != nullptr) {
    auto drained = std::move(state->on_drained);
    state->on_drained = nullptr;
    drained();  // may Send() again
  }
}

void StreamStop(h2o_generator_t* g, h2o_req_t*) {
  auto* gen = reinterpret_cast<StreamGenerator*>(g);
  gen->state->req = nullptr;  // h2o forbids further sends on this request
  gen->state->queued.clear();
  gen->state->queued_bytes = 0;
  gen->state->on_drained = nullptr;
}

void AddHeaders(h2o_req_t* req, const std::string& content_type,
                const std::vector<std::pair<std::string, std::string>>& headers) {
  h2o_iovec_t ct = h2o_strdup(&req->pool, content_type.data(), content_type.size());
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, nullptr, ct.base, ct.len);
  for (const auto& [name, value] : headers) {
    h2o_iovec_t n = h2o_strdup(&req->pool, name.data(), name.size());
    h2o_iovec_t v = h2o_strdup(&req->pool, value.data(), value.size());
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, nullptr, v.base, v.len);
  }
}

}  // namespace

void RequestState::Flush() {
  if (req == nullptr || sending || final_sent) return;
  if (queued.empty() && !end_requested) return;
  in_flight.assign(std::make_move_iterator(queued.begin()), std::make_move_iterator(queued.end()));
  queued.clear();
  queued_bytes = 0;
  iov.clear();
  for (auto& chunk : in_flight) iov.push_back(h2o_iovec_init(chunk.data(), chunk.size()));
  h2o_send_state_t send_state = end_requested ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
  if (end_requested) final_sent = true;
  sending = !end_requested;
  h2o_send(req, iov.data(), iov.size(), send_state);
}

bool Responder::alive() const { return state_ && state_->req != nullptr && !state_->final_sent; }

void Responder::Finish(Response response) {
  if (!state_ || state_->answered) return;
  state_->answered = true;
  ++state_->impl->responses_by_status[response.status];
  h2o_req_t* req = state_->req;
  if (req == nullptr) return;
  req->res.status = response.status;
  req->res.reason = ReasonPhrase(response.status);
  AddHeaders(req, response.content_type, response.headers);
  req->res.content_length = response.body.size();
  state_->final_sent = true;
  h2o_send_inline(req, response.body.data(), response.body.size());
}

void Responder::StartStream(int status, std::string content_type,
                            std::vector<std::pair<std::string, std::string>> headers) {
  if (!state_ || state_->answered) return;
  state_->answered = true;
  state_->streaming = true;
  ++state_->impl->responses_by_status[status];
  h2o_req_t* req = state_->req;
  if (req == nullptr) return;
  req->res.status = status;
  req->res.reason = ReasonPhrase(status);
  AddHeaders(req, content_type, headers);
  state_->gen.generator.proceed = StreamProceed;
  state_->gen.generator.stop = StreamStop;
  state_->gen.state = state_.get();
  h2o_start_response(req, &state_->gen.generator);
  // Push the headers out now: an SSE client waits for them before any event.
  state_->sending = true;
  h2o_send(req, nullptr, 0, H2O_SEND_STATE_IN_PROGRESS);
}

void Responder::Send(std::string chunk) {
  if (!state_ || !state_->streaming || state_->end_requested || state_->req == nullptr) return;
  state_->queued_bytes += chunk.size();
  state_->queued.push_back(std::move(chunk));
  if (state_->queued_bytes > state_->impl->options.max_stream_buffer_bytes) {
    // A client that does not read: drop what waits and end the stream rather
    // than grow without bound.
    state_->queued.clear();
    state_->queued_bytes = 0;
    state_->end_requested = true;
  }
  state_->Flush();
}

std::size_t Responder::buffered_bytes() const {
  if (!state_) return 0;
  std::size_t bytes = state_->queued_bytes;
  for (const std::string& chunk : state_->in_flight) bytes += chunk.size();
  return bytes;
}

void Responder::OnDrained(std::function<void()> drained) {
  if (!state_ || !state_->streaming || state_->end_requested || state_->req == nullptr) return;
  if (!state_->sending && state_->queued.empty()) {
    drained();
    return;
  }
  state_->on_drained = std::move(drained);
}

void Responder::End() {
  if (!state_ || !state_->streaming || state_->end_requested) return;
  state_->end_requested = true;
  state_->Flush();
}

// ---------------------------------------------------------------------------

namespace {

int OnRequest(h2o_handler_t* self, h2o_req_t* req) {
  HttpServer::Impl* impl = reinterpret_cast<H2oHandler*>(self)->impl;

  auto state = std::make_shared<RequestState>();
  state->impl = impl;
  state->req = req;
  void* mem = h2o_mem_alloc_shared(&req->pool, sizeof(PoolSlot), DisposeSlot);
  new (mem) PoolSlot{state};
  impl->open_states.insert(state.get());
  Responder responder(state);

  auto reject = [&](int status, std::string_view code, std::string_view message) {
    ++impl->rejected_requests;
    responder.Finish(Response::Error(status, code, message));
    return 0;
  };

  Request request;
  request.method.assign(req->method.base, req->method.len);
  request.raw_path.assign(req->path.base, req->path.len);
  std::string_view raw(request.raw_path);
  std::string_view path_part = raw.substr(0, std::min(req->query_at, raw.size()));
  std::string_view query_part = req->query_at < raw.size() ? raw.substr(req->query_at + 1) : std::string_view();

  auto path = PercentDecode(path_part);
  if (!path.ok()) return reject(400, "bad_request", path.status().message());
  request.path = std::move(*path);
  auto query = ParseQuery(query_part, impl->options.max_query_params);
  if (!query.ok()) return reject(400, "bad_request", query.status().message());
  request.query = std::move(*query);

  // Longest matching route.
  const RouteEntry* best = nullptr;
  for (const RouteEntry& route : impl->routes) {
    bool match = route.prefix ? request.path.compare(0, route.path.size(), route.path) == 0 : request.path == route.path;
    if (match && (best == nullptr || route.path.size() > best->path.size())) best = &route;
  }
  if (best == nullptr) {
    return reject(404, "not_found", "no such endpoint: " + request.method + " " + request.path);
  }
  auto it = best->by_method.find(request.method);
  if (it == best->by_method.end()) {
    std::string allowed;
    for (const auto& [m, h] : best->by_method) allowed += (allowed.empty() ? "" : ", ") + m;
    return reject(405, "method_not_allowed",
                  request.method + " is not allowed on " + request.path + " (allowed: " + allowed + ")");
  }
  std::size_t max_body_bytes = impl->options.max_body_bytes;
  if (auto limit = best->max_body_by_method.find(request.method);
      limit != best->max_body_by_method.end() && limit->second != 0) {
    max_body_bytes = limit->second;
  }
  if (req->entity.base != nullptr) {
    if (req->entity.len > max_body_bytes) {
      return reject(413, "too_large",
                    "request body of " + std::to_string(req->entity.len) + " bytes exceeds the limit of " +
                        std::to_string(max_body_bytes) + " bytes");
    }
    request.body.assign(req->entity.base, req->entity.len);
  }
  for (std::size_t i = 0; i < req->headers.size; ++i) {
    const h2o_header_t& h = req->headers.entries[i];
    request.headers.emplace_back(std::string(h.name->base, h.name->len), std::string(h.value.base, h.value.len));
  }
  try {
    it->second(request, responder);
  } catch (const std::exception& e) {
    // Handlers report errors as responses; an exception here is a bug, but it
    // must not cross into h2o's C callback.
    responder.Finish(Response::Error(500, "internal", std::string("internal error: ") + e.what()));
  }
  return 0;
}

// h2o takes over the handle's `data` field, so the owner travels beside the
// handle instead: the close callback casts back to the enclosing Connection.
struct Connection {
  uv_tcp_t handle;  // first member
  HttpServer::Impl* impl;
};

void OnConnectionClosed(uv_handle_t* handle) {
  auto* conn = reinterpret_cast<Connection*>(handle);
  HttpServer::Impl* impl = conn->impl;
  delete conn;
  --impl->open_connections;
  impl->MaybeFinishClose();
}

void OnAccept(uv_stream_t* listener, int status) {
  auto* impl = static_cast<HttpServer::Impl*>(listener->data);
  if (status != 0 || impl->closing) return;
  auto* conn = new Connection{};
  conn->impl = impl;
  uv_tcp_init(listener->loop, &conn->handle);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&conn->handle)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&conn->handle),
             [](uv_handle_t* h) { delete reinterpret_cast<Connection*>(h); });
    return;
  }
  uv_tcp_nodelay(&conn->handle, 1);
  ++impl->open_connections;
  h2o_socket_t* sock = h2o_uv_socket_create(reinterpret_cast<uv_stream_t*>(&conn->handle), OnConnectionClosed);
  h2o_accept(&impl->accept_ctx, sock);
}

}  // namespace

void HttpServer::Impl::MaybeFinishClose() {
  if (!closing || listener != nullptr || open_connections != 0) return;
  if (context_live) {
    context_live = false;
    // h2o_context_request_shutdown arms HTTP/2's one-second GOAWAY timer even
    // when no HTTP/2 connection exists; with every connection gone it has
    // nothing left to do, and h2o_context_dispose requires empty timeouts.
    if (h2o_timeout_is_linked(&ctx.http2._graceful_shutdown_timeout)) {
      h2o_timeout_unlink(&ctx.http2._graceful_shutdown_timeout);
    }
    h2o_context_dispose(&ctx);  // closes h2o's timers; the loop frees them
    h2o_config_dispose(&config);
  }
  if (on_closed) {
    auto cb = std::move(on_closed);
    on_closed = nullptr;
    cb();
  }
}

HttpServer::HttpServer(uv_loop_t* loop, HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->owner = this;
  impl_->loop = loop;
  impl_->options = options;
  h2o_config_init(&impl_->config);
  // h2o's own hard cap; our handler answers bodies above max_body_bytes with a JSON 413.
  impl_->config.max_request_entity_size =
      std::max(options.max_body_bytes * options.oversize_body_read_factor + 1, options.max_large_body_bytes);
  impl_->config.http1.req_timeout = options.idle_timeout_ms;
  h2o_hostconf_t* host = h2o_config_register_host(&impl_->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t* pathconf = h2o_config_register_path(host, "/", 0);
  auto* handler = reinterpret_cast<H2oHandler*>(h2o_create_handler(pathconf, sizeof(H2oHandler)));
  handler->base.on_req = OnRequest;
  handler->impl = impl_.get();
  h2o_context_init(&impl_->ctx, loop, &impl_->config);
  impl_->context_live = true;
  impl_->accept_ctx.ctx = &impl_->ctx;
  impl_->accept_ctx.hosts = impl_->config.hosts;
}

HttpServer::~HttpServer() {
  // Close() must have completed: destroying a live server would leave h2o
  // holding pointers into freed memory.
  if (impl_->context_live || impl_->listener != nullptr || impl_->open_connections != 0) {
    std::fprintf(stderr, "HttpServer destroyed while open; call Close() and run the loop first\n");
    std::abort();
  }
}

const std::map<int, std::uint64_t>& HttpServer::responses_by_status() const { return impl_->responses_by_status; }
std::uint64_t HttpServer::rejected_requests() const { return impl_->rejected_requests; }

void HttpServer::Route(std::string method, std::string path, Handler handler, bool large_body) {
  bool prefix = !path.empty() && path.back() == '/';
  const std::size_t max_body = large_body ? impl_->options.max_large_body_bytes : 0;
  for (RouteEntry& route : impl_->routes) {
    if (route.path == path) {
      route.max_body_by_method[method] = max_body;
      route.by_method[std::move(method)] = std::move(handler);
      return;
    }
  }
  RouteEntry entry;
  entry.path = std::move(path);
  entry.prefix = prefix;
  entry.max_body_by_method[method] = max_body;
  entry.by_method[std::move(method)] = std::move(handler);
  impl_->routes.push_back(std::move(entry));
}

Status HttpServer::Listen(const std::string& address) {
  auto addr = net::ParseSocketAddress(address);
  if (!addr.ok()) return addr.status();
  auto* listener = new uv_tcp_t;
  uv_tcp_init(impl_->loop, listener);
  listener->data = impl_.get();
  auto fail = [&](const char* what, int rc) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return Status::IOError(std::string("HTTP ") + what + " " + address + ": " + uv_strerror(rc));
  };
  int rc = uv_tcp_bind(listener, reinterpret_cast<const sockaddr*>(&addr->storage), 0);
  if (rc != 0) return fail("cannot bind", rc);
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener), 512, OnAccept);
  if (rc != 0) return fail("cannot listen on", rc);
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = net::PortOf(bound);
  impl_->listener = listener;
  return Status::Ok();
}

void HttpServer::Close(std::function<void()> on_closed) {
  Impl* impl = impl_.get();
  if (impl->closing) return;
  impl->closing = true;
  impl->on_closed = std::move(on_closed);
  // End every open stream so its connection can finish.
  std::vector<RequestState*> states(impl->open_states.begin(), impl->open_states.end());
  for (RequestState* state : states) {
    if (state->streaming && !state->end_requested) {
      state->end_requested = true;
      state->Flush();
    }
  }
  if (impl->listener != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(impl->listener), [](uv_handle_t* h) {
      auto* owner_impl = static_cast<HttpServer::Impl*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      owner_impl->listener = nullptr;
      owner_impl->MaybeFinishClose();
    });
  }
  h2o_context_request_shutdown(&impl->ctx);
  impl->MaybeFinishClose();
}

}  // namespace gv::http
