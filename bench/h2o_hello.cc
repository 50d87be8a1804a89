// h2o_hello: the reference HTTP server for `make bench-cluster`.
//
// A libh2o (libuv build) hello-world: one loop thread, every request answered
// with a fixed 12-byte text/plain body. It is set up the way the agent's
// daemon/http/server.cc sets up h2o (same listen backlog, TCP_NODELAY, one
// catch-all handler), so "agent GET req/s ÷ hello-world req/s" measured with
// the same wrk command in the same run isolates what the agent adds per
// request: routing, the store lookup, its headers.
//
// Usage: h2o_hello [--listen IP:PORT]   (default 127.0.0.1:0 = any free port)
// Prints "listening on IP:PORT" on stdout once it accepts connections; exits
// 0 on SIGTERM/SIGINT.
#define H2O_USE_LIBUV 1
#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int kListenBacklog = 512;  // as in daemon/http/server.cc

h2o_globalconf_t g_config;
h2o_context_t g_context;
h2o_accept_ctx_t g_accept_context;
uv_tcp_t g_listener;
uv_signal_t g_sigterm;
uv_signal_t g_sigint;

int OnRequest(h2o_handler_t*, h2o_req_t* req) {
  static const char kBody[] = "hello world\n";
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, nullptr, H2O_STRLIT("text/plain"));
  // A Content-Length (not chunked), as the agent's Responder::Finish sends it.
  req->res.content_length = sizeof(kBody) - 1;
  h2o_send_inline(req, kBody, sizeof(kBody) - 1);
  return 0;
}

// h2o owns each accepted connection's handle from h2o_accept on and calls
// this once the socket is closed: the handle is freed exactly here.
void OnConnectionClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); }

void OnAccept(uv_stream_t* listener, int status) {
  if (status != 0) return;
  auto* connection = new uv_tcp_t;
  uv_tcp_init(listener->loop, connection);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(connection)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(connection), OnConnectionClosed);
    return;
  }
  uv_tcp_nodelay(connection, 1);
  h2o_socket_t* sock = h2o_uv_socket_create(reinterpret_cast<uv_stream_t*>(connection), OnConnectionClosed);
  h2o_accept(&g_accept_context, sock);
}

// A signal stops the loop; the process exits right after, so open client
// connections are simply reset (a benchmark server has nothing to flush).
void OnSignal(uv_signal_t* handle, int) { uv_stop(handle->loop); }

bool ParseListenAddress(const std::string& text, sockaddr_in* out) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  char* end = nullptr;
  long port = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (end == text.c_str() + colon + 1 || *end != '\0' || port < 0 || port > 65535) return false;
  std::memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<std::uint16_t>(port));
  return inet_pton(AF_INET, host.c_str(), &out->sin_addr) == 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_address = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen_address = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--listen IP:PORT]\n", argv[0]);
      return 2;
    }
  }
  sockaddr_in address{};
  if (!ParseListenAddress(listen_address, &address)) {
    std::fprintf(stderr, "h2o_hello: bad --listen '%s' (want IPv4:PORT)\n", listen_address.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // h2o handles EPIPE on writes to a closed connection

  uv_loop_t* loop = uv_default_loop();
  h2o_config_init(&g_config);
  h2o_hostconf_t* host = h2o_config_register_host(&g_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t* pathconf = h2o_config_register_path(host, "/", 0);
  h2o_handler_t* handler = h2o_create_handler(pathconf, sizeof(h2o_handler_t));
  handler->on_req = OnRequest;
  h2o_context_init(&g_context, loop, &g_config);
  g_accept_context.ctx = &g_context;
  g_accept_context.hosts = g_config.hosts;

  uv_tcp_init(loop, &g_listener);
  int rc = uv_tcp_bind(&g_listener, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&g_listener), kListenBacklog, OnAccept);
  if (rc != 0) {
    std::fprintf(stderr, "h2o_hello: cannot listen on %s: %s\n", listen_address.c_str(), uv_strerror(rc));
    return 1;
  }
  sockaddr_in bound{};
  int bound_length = sizeof(bound);
  uv_tcp_getsockname(&g_listener, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  char host_text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &bound.sin_addr, host_text, sizeof(host_text));
  std::printf("listening on %s:%u\n", host_text, static_cast<unsigned>(ntohs(bound.sin_port)));
  std::fflush(stdout);

  uv_signal_init(loop, &g_sigterm);
  uv_signal_start(&g_sigterm, OnSignal, SIGTERM);
  uv_signal_init(loop, &g_sigint);
  uv_signal_start(&g_sigint, OnSignal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
