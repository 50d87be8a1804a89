#include "daemon/net_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace gv::net {

std::string SocketAddress::ToString() const {
  if (storage.ss_family == AF_INET6) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<SocketAddress> ParseSocketAddress(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bad address '" + std::string(text) + "': " + why +
                                   " (expected IP:PORT, e.g. 127.0.0.1:7401 or [::1]:7401)");
  };
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("unterminated [IPv6] or missing :PORT");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :PORT");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("IPv6 addresses need brackets");
  }
  int port = -1;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 0 ||
      port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  if (host.find('\0') != std::string_view::npos) return bad("the host contains a NUL byte");
  SocketAddress out;
  out.host = std::string(host);
  out.port = port;
  if (out.host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, out.host.c_str(), &a6->sin6_addr) != 1) return bad("not an IPv6 address");
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, out.host.c_str(), &a4->sin_addr) != 1) return bad("not an IPv4 address");
  }
  return out;
}

int PortOf(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

std::string FormatSocketAddress(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(PortOf(addr));
  }
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof(buf));
  return std::string(buf) + ":" + std::to_string(PortOf(addr));
}

}  // namespace gv::net
