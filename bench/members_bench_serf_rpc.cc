#include "bench/members_bench_serf_rpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

namespace gv::bench {
namespace {

// A member list of 100 Serf agents is ~15 KB; anything near this is not Serf.
constexpr std::size_t kMaxValueBytes = 4u << 20;

std::uint64_t BigEndian(std::string_view bytes, std::size_t offset, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return value;
}

}  // namespace

Result<std::optional<std::size_t>> MsgpackValueLength(std::string_view bytes, std::size_t max_depth) {
  // Walks the value iteratively: `pending` holds, per open container level, how
  // many values are still expected in it; the top level expects exactly one.
  std::vector<std::uint64_t> pending = {1};
  std::size_t pos = 0;
  while (!pending.empty()) {
    if (pending.back() == 0) {
      pending.pop_back();
      continue;
    }
    --pending.back();
    if (pos >= bytes.size()) return std::optional<std::size_t>();
    const unsigned char type = static_cast<unsigned char>(bytes[pos]);
    std::size_t header = 1;       // bytes before the payload
    std::uint64_t payload = 0;    // raw bytes after the header
    std::uint64_t children = 0;   // nested values after the header
    // A length field of `width` bytes right after the type byte.
    auto length_field = [&](std::size_t width) -> bool {
      if (pos + 1 + width > bytes.size()) return false;
      header = 1 + width;
      payload = BigEndian(bytes, pos + 1, width);
      return true;
    };
    if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3) {
      // fixint, nil, bool: the type byte is the value
    } else if (type >= 0x80 && type <= 0x8f) {
      children = 2u * (type & 0x0f);
    } else if (type >= 0x90 && type <= 0x9f) {
      children = type & 0x0f;
    } else if (type >= 0xa0 && type <= 0xbf) {
      payload = type & 0x1f;
    } else {
      switch (type) {
        case 0xc4: case 0xd9: if (!length_field(1)) return std::optional<std::size_t>(); break;  // bin8, str8
        case 0xc5: case 0xda: if (!length_field(2)) return std::optional<std::size_t>(); break;  // bin16, str16
        case 0xc6: case 0xdb: if (!length_field(4)) return std::optional<std::size_t>(); break;  // bin32, str32
        case 0xc7: if (!length_field(1)) return std::optional<std::size_t>(); header += 1; break;  // ext8: + type
        case 0xc8: if (!length_field(2)) return std::optional<std::size_t>(); header += 1; break;
        case 0xc9: if (!length_field(4)) return std::optional<std::size_t>(); header += 1; break;
        case 0xca: payload = 4; break;  // float32
        case 0xcb: payload = 8; break;  // float64
        case 0xcc: case 0xd0: payload = 1; break;
        case 0xcd: case 0xd1: payload = 2; break;
        case 0xce: case 0xd2: payload = 4; break;
        case 0xcf: case 0xd3: payload = 8; break;
        case 0xd4: payload = 2; break;  // fixext1: type + 1
        case 0xd5: payload = 3; break;
        case 0xd6: payload = 5; break;
        case 0xd7: payload = 9; break;
        case 0xd8: payload = 17; break;
        case 0xdc: if (!length_field(2)) return std::optional<std::size_t>(); children = payload; payload = 0; break;
        case 0xdd: if (!length_field(4)) return std::optional<std::size_t>(); children = payload; payload = 0; break;
        case 0xde: if (!length_field(2)) return std::optional<std::size_t>(); children = 2 * payload; payload = 0; break;
        case 0xdf: if (!length_field(4)) return std::optional<std::size_t>(); children = 2 * payload; payload = 0; break;
        default:
          return Status::Corruption("MessagePack: byte 0x" + std::string(1, "0123456789abcdef"[type >> 4]) +
                                    std::string(1, "0123456789abcdef"[type & 15]) + " at offset " +
                                    std::to_string(pos) + " starts no value");
      }
    }
    if (payload > kMaxValueBytes || children > kMaxValueBytes) {
      return Status::Corruption("MessagePack: a length of " + std::to_string(std::max(payload, children)) +
                                " at offset " + std::to_string(pos) + " is over the limit");
    }
    pos += header + static_cast<std::size_t>(payload);
    if (pos > bytes.size()) return std::optional<std::size_t>();
    if (children > 0) {
      if (pending.size() > max_depth) return Status::Corruption("MessagePack: nested deeper than the limit");
      pending.push_back(children);
    }
  }
  return std::optional<std::size_t>(pos);
}

SerfRpcClient::~SerfRpcClient() { Close(); }

void SerfRpcClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buffer_.clear();
}

Status SerfRpcClient::Connect() {
  const std::size_t colon = address_.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("serf rpc address '" + address_ + "' has no port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address_.substr(colon + 1))));
  if (inet_pton(AF_INET, address_.substr(0, colon).c_str(), &address.sin_addr) != 1) {
    return Status::InvalidArgument("serf rpc address '" + address_ + "' is not IPv4");
  }
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
  timeval timeout{};
  timeout.tv_sec = static_cast<time_t>(timeout_ms_ / 1000);
  timeout.tv_usec = static_cast<suseconds_t>((timeout_ms_ % 1000) * 1000);
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int err = errno;
    Close();
    return Status::Unavailable("serf rpc " + address_ + ": connect: " + std::strerror(err));
  }
  // Handshake: Serf refuses every other command on a connection before it.
  const std::uint64_t seq = next_seq_++;
  std::vector<std::uint8_t> request =
      nlohmann::json::to_msgpack(nlohmann::json{{"Command", "handshake"}, {"Seq", seq}});
  std::vector<std::uint8_t> body = nlohmann::json::to_msgpack(nlohmann::json{{"Version", 1}});
  request.insert(request.end(), body.begin(), body.end());
  Status sent = Send(std::string(request.begin(), request.end()));
  if (!sent.ok()) return sent;
  auto header = ReadValue();
  if (!header.ok()) return header.status();
  nlohmann::json parsed = nlohmann::json::from_msgpack(*header, true, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    Close();
    return Status::Corruption("serf rpc " + address_ + ": unreadable handshake answer");
  }
  if (parsed.contains("Error") && parsed["Error"].is_string() && !parsed["Error"].get<std::string>().empty()) {
    const std::string error = parsed["Error"].get<std::string>();
    Close();
    return Status::Unavailable("serf rpc " + address_ + ": handshake refused: " + error);
  }
  return Status::Ok();
}

Status SerfRpcClient::Send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      Close();
      return Status::Unavailable("serf rpc " + address_ + ": send: " + std::strerror(err));
    }
    sent += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> SerfRpcClient::ReadValue() {
  for (;;) {
    auto length = MsgpackValueLength(buffer_);
    if (!length.ok()) {
      Close();
      return Status::Corruption("serf rpc " + address_ + ": " + length.status().message());
    }
    if (length->has_value()) {
      std::string value = buffer_.substr(0, **length);
      buffer_.erase(0, **length);
      return value;
    }
    if (buffer_.size() > kMaxValueBytes) {
      Close();
      return Status::Corruption("serf rpc " + address_ + ": an answer over 4 MiB");
    }
    char chunk[16384];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n == 0 ? "closed by the agent"
                              : (errno == EAGAIN || errno == EWOULDBLOCK) ? "timed out"
                                                                          : std::strerror(errno);
      Close();
      return Status::Unavailable("serf rpc " + address_ + ": read: " + why);
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

Result<std::map<std::string, std::string>> SerfRpcClient::MembersOnce(const std::optional<std::string>& name) {
  if (fd_ < 0) GV_RETURN_IF_ERROR(Connect());
  const std::uint64_t seq = next_seq_++;
  std::vector<std::uint8_t> request;
  if (name) {
    request = nlohmann::json::to_msgpack(nlohmann::json{{"Command", "members-filtered"}, {"Seq", seq}});
    std::vector<std::uint8_t> body = nlohmann::json::to_msgpack(
        nlohmann::json{{"Tags", nlohmann::json::object()}, {"Status", ""}, {"Name", *name}});
    request.insert(request.end(), body.begin(), body.end());
  } else {
    request = nlohmann::json::to_msgpack(nlohmann::json{{"Command", "members"}, {"Seq", seq}});
  }
  GV_RETURN_IF_ERROR(Send(std::string(request.begin(), request.end())));
  auto header_bytes = ReadValue();
  if (!header_bytes.ok()) return header_bytes.status();
  nlohmann::json header = nlohmann::json::from_msgpack(*header_bytes, true, false);
  if (header.is_discarded() || !header.is_object() || !header.contains("Seq") ||
      !header["Seq"].is_number_unsigned()) {
    Close();
    return Status::Corruption("serf rpc " + address_ + ": unreadable response header");
  }
  if (header["Seq"].get<std::uint64_t>() != seq) {
    Close();
    return Status::Corruption("serf rpc " + address_ + ": answer to request " +
                              std::to_string(header["Seq"].get<std::uint64_t>()) + ", expected " +
                              std::to_string(seq));
  }
  if (header.contains("Error") && header["Error"].is_string() && !header["Error"].get<std::string>().empty()) {
    // An error answer carries no body; the connection stays usable.
    return Status::Unavailable("serf rpc " + address_ + ": " + header["Error"].get<std::string>());
  }
  auto body_bytes = ReadValue();
  if (!body_bytes.ok()) return body_bytes.status();
  nlohmann::json body = nlohmann::json::from_msgpack(*body_bytes, true, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("Members") || !body["Members"].is_array()) {
    Close();
    return Status::Corruption("serf rpc " + address_ + ": members answer has no Members array");
  }
  std::map<std::string, std::string> members;
  for (const auto& member : body["Members"]) {
    if (!member.is_object() || !member.contains("Name") || !member["Name"].is_string() ||
        !member.contains("Status") || !member["Status"].is_string()) {
      Close();
      return Status::Corruption("serf rpc " + address_ + ": a member without Name or Status");
    }
    members[member["Name"].get<std::string>()] = member["Status"].get<std::string>();
  }
  return members;
}

Result<std::map<std::string, std::string>> SerfRpcClient::Members(const std::optional<std::string>& name) {
  auto first = MembersOnce(name);
  if (first.ok() || fd_ >= 0) return first;
  // The connection broke (the agent restarted its listener, a timeout): one
  // fresh connection, then the error stands.
  return MembersOnce(name);
}

}  // namespace gv::bench
