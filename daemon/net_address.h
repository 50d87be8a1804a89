// "IP:PORT" parsing for the command line and the listeners. IPv4 as
// "127.0.0.1:7401", IPv6 as "[::1]:7401". Host names are not resolved: an
// agent binds and advertises literal addresses.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace gv::net {

struct SocketAddress {
  sockaddr_storage storage{};
  std::string host;  // without brackets
  int port = 0;
  std::string ToString() const;  // canonical "IP:PORT" / "[IP]:PORT"
};

Result<SocketAddress> ParseSocketAddress(std::string_view text);
int PortOf(const sockaddr_storage& addr);
std::string FormatSocketAddress(const sockaddr_storage& addr);

}  // namespace gv::net
