#include "daemon/transport/frame.h"

namespace gv::transport {

void AppendFrame(std::string_view payload, std::string& out) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  const char header[kFrameHeaderBytes] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                          static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(header, kFrameHeaderBytes);
  out.append(payload);
}

Status FrameDecoder::Feed(std::string_view data, std::vector<std::string>& frames) {
  if (!failed_.ok()) return failed_;
  buffer_.append(data);
  std::size_t pos = 0;
  while (buffer_.size() - pos >= kFrameHeaderBytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + pos);
    const std::uint32_t length = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                                 (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
    if (length == 0 || length > max_frame_bytes_) {
      failed_ = Status::TooLarge("peer frame of " + std::to_string(length) + " bytes is outside 1.." +
                                 std::to_string(max_frame_bytes_));
      buffer_.clear();
      return failed_;
    }
    if (buffer_.size() - pos - kFrameHeaderBytes < length) break;
    frames.emplace_back(buffer_, pos + kFrameHeaderBytes, length);
    pos += kFrameHeaderBytes + length;
  }
  buffer_.erase(0, pos);
  return Status::Ok();
}

}  // namespace gv::transport
