// HttpClient: blocking HTTP/1.1 over POSIX sockets with poll() deadlines.
//
// Invariants:
// - Every blocking step (connect, send, receive) waits in poll() for at most
//   the time left until the request's deadline; no call blocks without one.
// - Buffers are bounded: response headers by kMaxHeaderBytes, bodies by
//   options_.max_response_bytes, one SSE line or event by the same bound.
// - socket_ holds a connection only while it is known to sit between two
//   responses (the previous body was read to its framed end and the server did
//   not ask to close); anything else closes it, so a reused connection never
//   starts mid-response.
#include "daemon/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

// picohttpparser is compiled into libh2o (the exported phr_* symbols), but
// Debian ships no header for it. These are the declarations of the copy that
// h2o 2.2.5 bundles (deps/picohttpparser/picohttpparser.h). The chunked decoder
// is embedded below with spare zeroed bytes after it, so a library with a
// longer decoder struct than this declaration still writes into our memory.
extern "C" {
struct phr_header {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
};
int phr_parse_response(const char* buf, size_t len, int* minor_version, int* status, const char** msg,
                       size_t* msg_len, struct phr_header* headers, size_t* num_headers, size_t last_len);
struct phr_chunked_decoder {
  size_t bytes_left_in_chunk;
  char consume_trailer;
  char _hex_count;
  char _state;
};
ssize_t phr_decode_chunked(struct phr_chunked_decoder* decoder, char* buf, size_t* bufsz);
}

namespace gv::cli {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxHeaders = 100;
constexpr std::size_t kReadChunkBytes = 16 * 1024;

struct ChunkedDecoder {
  phr_chunked_decoder decoder;
  unsigned char reserve[64];  // see the note on the declaration above
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool ContainsToken(std::string_view list, std::string_view token) {
  // Comma-separated, case-insensitive ("keep-alive, Upgrade").
  std::string lower = Lower(list);
  std::size_t pos = 0;
  while (pos <= lower.size()) {
    std::size_t comma = lower.find(',', pos);
    std::string_view item = std::string_view(lower).substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == token) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

// Milliseconds left until `deadline` (0 when passed), or -1 for "no deadline".
int PollTimeoutMs(std::optional<SteadyClock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - SteadyClock::now()).count();
  if (left <= 0) return 0;
  // Round up so a sub-millisecond remainder does not spin.
  return static_cast<int>(std::min<long long>(left + 1, 1 << 30));
}

Result<sockaddr_storage> ParseAddress(const std::string& address, socklen_t* len) {
  std::string host;
  std::string port_text;
  if (!address.empty() && address.front() == '[') {
    std::size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return Status::InvalidArgument("bad address '" + address + "': expected [IPv6]:PORT");
    }
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    std::size_t colon = address.rfind(':');
    if (colon == std::string::npos) return Status::InvalidArgument("bad address '" + address + "': expected IP:PORT");
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument("bad port in address '" + address + "'");
  }
  const int port = std::stoi(port_text);
  if (port <= 0 || port > 65535) return Status::InvalidArgument("port out of range in address '" + address + "'");
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in6);
  } else {
    return Status::InvalidArgument("bad address '" + address + "': '" + host +
                                   "' is not a literal IPv4 or IPv6 address (host names are not resolved)");
  }
  return storage;
}

// Incremental text/event-stream parser (WHATWG HTML, "event stream
// interpretation"): lines end with CRLF, LF or CR; ":..." is a comment; a
// "field: value" line drops one space after the colon; "data" lines are joined
// with '\n'; a blank line dispatches the event unless its data is empty; the
// event name defaults to "message". "id" and "retry" are accepted and unused.
class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

  // Feeds bytes; returns false when on_event asked to stop. Sets *too_large
  // when a line or an event exceeds the bound.
  bool Feed(std::string_view bytes, const std::function<bool(std::string_view, std::string_view)>& on_event,
            bool* too_large) {
    for (char c : bytes) {
      if (skip_lf_) {
        skip_lf_ = false;
        if (c == '\n') continue;
      }
      if (c == '\r' || c == '\n') {
        skip_lf_ = c == '\r';
        if (!Line(on_event)) return false;
        line_.clear();
        continue;
      }
      if (line_.size() + data_.size() >= max_event_bytes_) {
        *too_large = true;
        return false;
      }
      line_.push_back(c);
    }
    return true;
  }

 private:
  bool Line(const std::function<bool(std::string_view, std::string_view)>& on_event) {
    std::string_view line(line_);
    if (first_line_) {
      first_line_ = false;
      if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // a leading BOM
    }
    if (line.empty()) {
      if (!has_data_) {
        event_.clear();
        return true;
      }
      std::string event = event_.empty() ? std::string("message") : std::move(event_);
      std::string data = std::move(data_);
      event_.clear();
      data_.clear();
      has_data_ = false;
      return on_event(event, data);
    }
    if (line.front() == ':') return true;
    std::size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "event") {
      event_.assign(value);
    } else if (field == "data") {
      if (has_data_) data_.push_back('\n');
      data_.append(value);
      has_data_ = true;
    }
    return true;
  }

  std::size_t max_event_bytes_;
  std::string line_;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  bool skip_lf_ = false;
  bool first_line_ = true;
};

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

std::string_view HttpResponse::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

struct HttpClient::Socket {
  int fd = -1;
  // Bytes received past the end of the previous response (a server should not
  // send any before the next request; kept so nothing is silently dropped).
  std::string leftover;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

// One request/response exchange on a connected socket.
class Exchange {
 public:
  Exchange(int fd, std::string* leftover, std::string_view address, std::size_t max_body_bytes)
      : fd_(fd), buffer_(std::move(*leftover)), address_(address), max_body_bytes_(max_body_bytes) {
    leftover->clear();
  }

  // True once any byte of the response arrived (a reused connection that
  // fails before that can be retried on a fresh one).
  bool got_bytes() const { return got_bytes_; }

  Status SendAll(std::string_view data, std::optional<SteadyClock::time_point> deadline) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        GV_RETURN_IF_ERROR(Wait(POLLOUT, deadline, "sending the request"));
        continue;
      }
      return Status::Unavailable("lost the connection to " + std::string(address_) + " while sending: " +
                                 ErrnoText(errno));
    }
    return Status::Ok();
  }

  // Appends at most kReadChunkBytes to buffer_. Returns the byte count, 0 at EOF.
  Result<std::size_t> Read(std::optional<SteadyClock::time_point> deadline, const char* what) {
    for (;;) {
      char chunk[kReadChunkBytes];
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        got_bytes_ = true;
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return static_cast<std::size_t>(n);
      }
      if (n == 0) return std::size_t{0};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        GV_RETURN_IF_ERROR(Wait(POLLIN, deadline, what));
        continue;
      }
      return Status::Unavailable("lost the connection to " + std::string(address_) + " while " + what + ": " +
                                 ErrnoText(errno));
    }
  }

  struct Head {
    int status = 0;
    int minor_version = 1;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  // Reads and parses the status line and headers; the body's first bytes
  // stay in buffer_. Skips interim 1xx responses.
  Result<Head> ReadHead(std::optional<SteadyClock::time_point> deadline) {
    for (;;) {
      std::size_t last_len = 0;
      for (;;) {
        phr_header headers[kMaxHeaders];
        std::size_t num_headers = kMaxHeaders;
        int minor = 0;
        int status = 0;
        const char* msg = nullptr;
        std::size_t msg_len = 0;
        int parsed = buffer_.empty() ? -2
                                     : phr_parse_response(buffer_.data(), buffer_.size(), &minor, &status, &msg,
                                                          &msg_len, headers, &num_headers, last_len);
        if (parsed == -1) {
          return Status::Corruption("unparsable HTTP response from " + std::string(address_) +
                                    " (is that address an agent's --http port?)");
        }
        if (parsed > 0) {
          Head head;
          head.status = status;
          head.minor_version = minor;
          for (std::size_t i = 0; i < num_headers; ++i) {
            if (headers[i].name == nullptr) continue;  // obsolete line folding
            head.headers.emplace_back(Lower(std::string_view(headers[i].name, headers[i].name_len)),
                                      std::string(headers[i].value, headers[i].value_len));
          }
          buffer_.erase(0, static_cast<std::size_t>(parsed));
          if (status >= 100 && status < 200 && status != 101) break;  // interim: read the next head
          return head;
        }
        if (buffer_.size() >= kMaxHeaderBytes) {
          return Status::TooLarge("response headers from " + std::string(address_) + " exceed " +
                                  std::to_string(kMaxHeaderBytes) + " bytes");
        }
        last_len = buffer_.size();
        auto n = Read(deadline, "waiting for the response");
        if (!n.ok()) return n.status();
        if (*n == 0) {
          return Status::Unavailable("the server at " + std::string(address_) +
                                     " closed the connection before answering");
        }
      }
    }
  }

  // How the body is framed, from the head.
  struct Framing {
    enum Kind { kNone, kLength, kChunked, kUntilClose } kind = kNone;
    std::uint64_t length = 0;
    bool keep_alive = true;
  };

  Result<Framing> FramingOf(const Head& head, std::string_view method) const {
    Framing f;
    std::string_view connection;
    std::string_view transfer_encoding;
    std::optional<std::string_view> content_length;
    for (const auto& [name, value] : head.headers) {
      if (name == "connection") connection = value;
      if (name == "transfer-encoding") transfer_encoding = value;
      if (name == "content-length") {
        if (content_length && *content_length != value) {
          return Status::Corruption("conflicting Content-Length headers from " + std::string(address_));
        }
        content_length = value;
      }
    }
    f.keep_alive = head.minor_version >= 1 ? !ContainsToken(connection, "close") : ContainsToken(connection, "keep-alive");
    if (method == "HEAD" || head.status == 204 || head.status == 304) {
      f.kind = Framing::kNone;
      return f;
    }
    if (!transfer_encoding.empty()) {
      if (!ContainsToken(transfer_encoding, "chunked")) {
        return Status::Corruption("unsupported Transfer-Encoding '" + std::string(transfer_encoding) + "' from " +
                                  std::string(address_));
      }
      f.kind = Framing::kChunked;
      return f;
    }
    if (content_length) {
      std::string_view text = *content_length;
      if (text.empty() || text.size() > 19 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Status::Corruption("bad Content-Length '" + std::string(text) + "' from " + std::string(address_));
      }
      f.kind = Framing::kLength;
      f.length = std::stoull(std::string(text));
      if (f.length > max_body_bytes_) return BodyTooLarge();
      return f;
    }
    f.kind = Framing::kUntilClose;
    f.keep_alive = false;
    return f;
  }

  Status BodyTooLarge() const {
    return Status::TooLarge("response body from " + std::string(address_) + " exceeds " +
                            std::to_string(max_body_bytes_) + " bytes");
  }

  // How a body is consumed: a response (total size bounded by
  // max_body_bytes_, one deadline) or an endless stream (the consumer bounds
  // what it keeps; each read waits at most `idle`, or forever if unset).
  struct BodyMode {
    bool stream = false;
    std::optional<std::chrono::milliseconds> idle;
  };

  // Reads the body per `framing`, handing decoded bytes to `sink` as they
  // arrive (sink returns false to stop early). On success *complete says
  // whether the body reached its framed end.
  Status ReadBody(const Framing& framing, std::optional<SteadyClock::time_point> deadline, BodyMode mode,
                  const std::function<bool(std::string_view)>& sink, bool* complete, std::string* leftover) {
    const std::optional<std::chrono::milliseconds> idle = mode.idle;
    *complete = false;
    auto next_deadline = [&]() -> std::optional<SteadyClock::time_point> {
      if (idle) return SteadyClock::now() + *idle;
      return deadline;
    };
    std::uint64_t delivered = 0;
    auto deliver = [&](std::string_view bytes) -> int {  // 1 go on, 0 stop, -1 too large
      if (bytes.empty()) return 1;
      delivered += bytes.size();
      if (!mode.stream && delivered > max_body_bytes_) return -1;
      return sink(bytes) ? 1 : 0;
    };
    switch (framing.kind) {
      case Framing::kNone:
        *complete = true;
        leftover->swap(buffer_);
        return Status::Ok();
      case Framing::kLength: {
        std::uint64_t left = framing.length;
        std::optional<SteadyClock::time_point> d = next_deadline();
        for (;;) {
          std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer_.size()));
          int r = deliver(std::string_view(buffer_).substr(0, take));
          buffer_.erase(0, take);
          left -= take;
          if (r < 0) return BodyTooLarge();
          if (r == 0) return Status::Ok();
          if (left == 0) {
            *complete = true;
            leftover->swap(buffer_);
            return Status::Ok();
          }
          auto n = Read(d, "reading the response body");
          if (!n.ok()) return n.status();
          if (*n == 0) {
            return Status::Unavailable("the server at " + std::string(address_) + " closed the connection with " +
                                       std::to_string(left) + " body bytes still to come");
          }
          d = next_deadline();
        }
      }
      case Framing::kChunked: {
        ChunkedDecoder dec{};
        dec.decoder.consume_trailer = 1;
        std::optional<SteadyClock::time_point> d = next_deadline();
        for (;;) {
          if (!buffer_.empty()) {
            std::size_t size = buffer_.size();
            ssize_t ret = phr_decode_chunked(&dec.decoder, buffer_.data(), &size);
            if (ret == -1) {
              return Status::Corruption("bad chunked encoding in the response from " + std::string(address_));
            }
            // buffer_[0, size) is now decoded body; on completion `ret` bytes
            // after it are the start of whatever follows the body.
            std::string rest;
            if (ret >= 0) rest = buffer_.substr(size, static_cast<std::size_t>(ret));
            int r = deliver(std::string_view(buffer_).substr(0, size));
            buffer_.clear();
            if (r < 0) return BodyTooLarge();
            if (r == 0) return Status::Ok();
            if (ret >= 0) {
              *complete = true;
              *leftover = std::move(rest);
              return Status::Ok();
            }
          }
          // Chunk framing overhead is bounded too: a server that sends only
          // chunk-size lines and extensions cannot grow buffer_ without limit,
          // since every read is decoded and cleared above.
          auto n = Read(d, "reading the response body");
          if (!n.ok()) return n.status();
          if (*n == 0) {
            return Status::Unavailable("the server at " + std::string(address_) +
                                       " closed the connection in the middle of a chunked body");
          }
          d = next_deadline();
        }
      }
      case Framing::kUntilClose: {
        std::optional<SteadyClock::time_point> d = next_deadline();
        for (;;) {
          int r = deliver(buffer_);
          buffer_.clear();
          if (r < 0) return BodyTooLarge();
          if (r == 0) return Status::Ok();
          auto n = Read(d, "reading the response body");
          if (!n.ok()) return n.status();
          if (*n == 0) {
            *complete = true;
            return Status::Ok();
          }
          d = next_deadline();
        }
      }
    }
    return Status::Aborted("unreachable body framing");
  }

 private:
  Status Wait(short events, std::optional<SteadyClock::time_point> deadline, const char* what) {
    for (;;) {
      pollfd p{fd_, events, 0};
      int timeout = PollTimeoutMs(deadline);
      if (timeout == 0) {
        return Status::Aborted("timed out " + std::string(what) + " (agent at " + std::string(address_) + ")");
      }
      int r = ::poll(&p, 1, timeout);
      if (r > 0) return Status::Ok();
      if (r == 0) {
        if (PollTimeoutMs(deadline) == 0) {
          return Status::Aborted("timed out " + std::string(what) + " (agent at " + std::string(address_) + ")");
        }
        continue;
      }
      if (errno == EINTR) continue;
      return Status::IOError("poll failed: " + ErrnoText(errno));
    }
  }

  int fd_;
  std::string buffer_;
  std::string_view address_;
  std::size_t max_body_bytes_;
  bool got_bytes_ = false;
};

Result<int> Connect(const std::string& address, SteadyClock::time_point deadline) {
  socklen_t len = 0;
  auto addr = ParseAddress(address, &len);
  if (!addr.ok()) return addr.status();
  int fd = ::socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError("socket() failed: " + ErrnoText(errno));
  auto unreachable = [&](const std::string& why) {
    ::close(fd);
    return Status::Unavailable("cannot reach the agent at " + address + ": " + why +
                               " (is `grapevine agent` running there? pass its HTTP address with --http IP:PORT)");
  };
  int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), len);
  if (r != 0 && errno != EINPROGRESS) return unreachable(ErrnoText(errno));
  if (r != 0) {
    for (;;) {
      pollfd p{fd, POLLOUT, 0};
      int timeout = PollTimeoutMs(deadline);
      int pr = timeout == 0 ? 0 : ::poll(&p, 1, timeout);
      if (pr < 0 && errno == EINTR) continue;
      if (pr < 0) return unreachable("poll failed: " + ErrnoText(errno));
      if (pr == 0) {
        ::close(fd);
        return Status::Aborted("timed out connecting to the agent at " + address);
      }
      break;
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) return unreachable(ErrnoText(err));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// True when an idle keep-alive connection was closed (or reset) by the server.
bool IdleConnectionClosed(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char probe;
  ssize_t n = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  // Data on an idle connection would be a protocol violation: treat it as closed too.
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

std::string BuildRequest(std::string_view method, std::string_view target, std::string_view host,
                         std::string_view body, const std::vector<std::pair<std::string, std::string>>& headers,
                         bool stream) {
  std::string out;
  out.reserve(256 + body.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  bool has_accept = false;
  for (const auto& [name, value] : headers) {
    if (Lower(name) == "accept") has_accept = true;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (stream && !has_accept) out.append("Accept: text/event-stream\r\n");
  if (!body.empty() || method == "PUT" || method == "POST" || method == "PATCH") {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n");
  out.append(body);
  return out;
}

// "HTTP 404 from 127.0.0.1:7401: key 'x' not found" — the server's {"error"} when it sent one.
Status HttpErrorStatus(const std::string& address, int status, const std::string& body) {
  std::string message;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    message = j["error"].get<std::string>();
  } else {
    message = body.substr(0, 200);
  }
  std::string text = "HTTP " + std::to_string(status) + " from " + address + ": " + message;
  if (status == 404) return Status::NotFound(text);
  if (status >= 500) return Status::Unavailable(text);
  return Status::InvalidArgument(text);
}

}  // namespace

HttpClient::HttpClient(std::string address, HttpClientOptions options)
    : address_(std::move(address)), options_(options) {}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view target, std::string_view body,
                                         std::vector<std::pair<std::string, std::string>> headers) {
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(options_.timeout_ms);
  const std::string request = BuildRequest(method, target, address_, body, headers, false);
  // At most two attempts: the second only when a reused keep-alive connection
  // failed before any response byte arrived (the server closed it while idle;
  // it cannot have processed this request and answered).
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    if (socket_ && IdleConnectionClosed(socket_->fd)) socket_.reset();
    if (socket_) {
      reused = true;
    } else {
      auto fd = Connect(address_, deadline);
      if (!fd.ok()) return fd.status();
      socket_ = std::make_unique<Socket>();
      socket_->fd = *fd;
    }
    Exchange exchange(socket_->fd, &socket_->leftover, address_, options_.max_response_bytes);
    Status sent = exchange.SendAll(request, deadline);
    Result<Exchange::Head> head = sent.ok() ? exchange.ReadHead(deadline) : Result<Exchange::Head>(sent);
    if (!head.ok()) {
      socket_.reset();
      const bool retryable = reused && attempt == 0 && !exchange.got_bytes() &&
                             head.status().code() == StatusCode::kUnavailable;
      if (retryable) continue;
      return head.status();
    }
    auto framing = exchange.FramingOf(*head, method);
    if (!framing.ok()) {
      socket_.reset();
      return framing.status();
    }
    HttpResponse response;
    response.status = head->status;
    response.headers = std::move(head->headers);
    bool complete = false;
    std::string leftover;
    Status read = exchange.ReadBody(
        *framing, deadline, Exchange::BodyMode{},
        [&](std::string_view bytes) {
          response.body.append(bytes);
          return true;
        },
        &complete, &leftover);
    if (!read.ok()) {
      socket_.reset();
      return read;
    }
    if (framing->keep_alive && complete) {
      socket_->leftover = std::move(leftover);
    } else {
      socket_.reset();
    }
    return response;
  }
}

Status HttpClient::StreamEvents(std::string_view target, std::uint64_t idle_timeout_ms,
                                const std::function<bool(std::string_view event, std::string_view data)>& on_event) {
  // A stream always starts on a fresh connection: it will not be reused
  // unless it ends cleanly, and a stale keep-alive socket would only add a retry.
  socket_.reset();
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(options_.timeout_ms);
  auto fd = Connect(address_, deadline);
  if (!fd.ok()) return fd.status();
  socket_ = std::make_unique<Socket>();
  socket_->fd = *fd;
  Exchange exchange(socket_->fd, &socket_->leftover, address_, options_.max_response_bytes);
  Status sent = exchange.SendAll(BuildRequest("GET", target, address_, {}, {}, true), deadline);
  if (!sent.ok()) {
    socket_.reset();
    return sent;
  }
  auto head = exchange.ReadHead(deadline);
  if (!head.ok()) {
    socket_.reset();
    return head.status();
  }
  auto framing = exchange.FramingOf(*head, "GET");
  if (!framing.ok()) {
    socket_.reset();
    return framing.status();
  }
  bool complete = false;
  std::string leftover;
  if (head->status != 200) {
    std::string body;
    Status read = exchange.ReadBody(
        *framing, deadline, Exchange::BodyMode{},
        [&](std::string_view bytes) {
          body.append(bytes);
          return true;
        },
        &complete, &leftover);
    socket_.reset();
    GV_RETURN_IF_ERROR(read);
    return HttpErrorStatus(address_, head->status, body);
  }
  SseParser parser(options_.max_response_bytes);
  bool stopped = false;
  bool too_large = false;
  Exchange::BodyMode mode;
  mode.stream = true;
  if (idle_timeout_ms > 0) mode.idle = std::chrono::milliseconds(idle_timeout_ms);
  Status read = exchange.ReadBody(
      *framing, std::nullopt, mode,
      [&](std::string_view bytes) {
        if (!parser.Feed(bytes, on_event, &too_large)) {
          stopped = true;
          return false;
        }
        return true;
      },
      &complete, &leftover);
  if (read.ok() && complete && framing->keep_alive && !stopped) {
    socket_->leftover = std::move(leftover);
  } else {
    socket_.reset();
  }
  if (too_large) {
    return Status::TooLarge("an event in the stream from " + address_ + " exceeds " +
                            std::to_string(options_.max_response_bytes) + " bytes");
  }
  if (!read.ok() && read.code() == StatusCode::kAborted) {
    return Status::Aborted("no data from " + address_ + " for " + std::to_string(idle_timeout_ms) +
                           " ms (stream idle timeout)");
  }
  return read;
}

std::string EncodeKeyPath(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string EncodeQueryValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace gv::cli
