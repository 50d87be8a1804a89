#include "tests/integration/peer_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

namespace gv::integration {

Result<std::unique_ptr<PeerSocket>> PeerSocket::Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Loopback connect completes or fails at once (no SYN retransmits to wait for).
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::Unavailable("connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err));
  }
  return std::unique_ptr<PeerSocket>(new PeerSocket(fd));
}

PeerSocket::~PeerSocket() {
  if (fd_ >= 0) ::close(fd_);
}

void PeerSocket::Abort() {
  if (fd_ < 0) return;
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd_);
  fd_ = -1;
}

Status PeerSocket::SendBytes(std::string_view bytes) {
  if (fd_ < 0) return Status::InvalidArgument("socket closed");
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(std::string("send: ") + std::strerror(errno));
    }
    sent += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status PeerSocket::SendFrame(std::string_view payload) {
  const auto length = static_cast<std::uint32_t>(payload.size());
  std::string frame;
  frame.reserve(4 + payload.size());
  frame.push_back(static_cast<char>((length >> 24) & 0xff));
  frame.push_back(static_cast<char>((length >> 16) & 0xff));
  frame.push_back(static_cast<char>((length >> 8) & 0xff));
  frame.push_back(static_cast<char>(length & 0xff));
  frame.append(payload);
  return SendBytes(frame);
}

Status PeerSocket::ReadSome(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0) return Status::InvalidArgument("socket closed");
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Aborted("no data from the agent before the deadline");
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("poll: ") + std::strerror(errno));
    }
    if (ready == 0) continue;  // the loop re-checks the deadline
    char buf[64 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<std::size_t>(n));
      return Status::Ok();
    }
    if (n == 0) return Status::Unavailable("the agent closed the connection (EOF)");
    if (errno == EINTR || errno == EAGAIN) continue;
    return Status::Unavailable(std::string("the agent reset the connection: ") + std::strerror(errno));
  }
}

Result<std::string> PeerSocket::ReadFrame(std::chrono::milliseconds timeout, std::size_t max_frame_bytes) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (buffer_.size() >= 4) {
      const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
      const std::uint32_t length = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                   (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
      if (length > max_frame_bytes) {
        return Status::TooLarge("the agent sent a frame of " + std::to_string(length) + " bytes");
      }
      if (buffer_.size() >= 4 + std::size_t{length}) {
        std::string frame = buffer_.substr(4, length);
        buffer_.erase(0, 4 + std::size_t{length});
        return frame;
      }
    }
    GV_RETURN_IF_ERROR(ReadSome(deadline));
  }
}

Result<wire::Envelope> PeerSocket::ReadEnvelope(std::chrono::milliseconds timeout) {
  auto frame = ReadFrame(timeout);
  if (!frame.ok()) return frame.status();
  return wire::DecodeEnvelope(*frame);
}

Status PeerSocket::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Status read = ReadSome(deadline);
    buffer_.clear();  // whatever the agent still sent is of no interest here
    if (read.code() == StatusCode::kUnavailable) return Status::Ok();
    if (read.code() == StatusCode::kAborted) {
      return Status::Aborted("the agent kept the connection open for " + std::to_string(timeout.count()) + " ms");
    }
    if (!read.ok()) return read;
  }
}

wire::Envelope HelloEnvelope(std::string cluster, NodeId node, std::string name, std::string address) {
  wire::Hello hello;
  hello.cluster = std::move(cluster);
  hello.protocol_version = wire::kPeerProtocolVersion;
  hello.node = node;
  hello.name = std::move(name);
  hello.address = address;
  wire::Envelope envelope;
  envelope.message = std::move(hello);
  envelope.addresses.push_back(wire::AddressBookEntry{node, std::move(address)});
  return envelope;
}

Result<std::unique_ptr<PeerSocket>> ConnectAndHandshake(int port, const std::string& cluster, NodeId node,
                                                        const std::string& name, const std::string& address) {
  auto socket = PeerSocket::Connect(port);
  if (!socket.ok()) return socket.status();
  GV_RETURN_IF_ERROR((*socket)->SendEnvelope(HelloEnvelope(cluster, node, name, address)));
  auto reply = (*socket)->ReadEnvelope(std::chrono::milliseconds(10000));
  if (!reply.ok()) return Status::Aborted("no Hello back from the agent: " + reply.status().ToString());
  if (!std::holds_alternative<wire::Hello>(reply->message)) {
    return Status::Aborted(std::string("the agent answered the Hello with ") + wire::PeerMessageTypeName(reply->message));
  }
  return std::move(*socket);
}

}  // namespace gv::integration
