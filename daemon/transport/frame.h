// Peer frames: a u32 big-endian length, then that many bytes (a FlatBuffers
// envelope, verified by the caller before use). FrameDecoder is the pure,
// incremental half: it takes bytes as they arrive and yields whole frames, and
// refuses a length above the limit before buffering any of it, so a peer
// cannot make us allocate more than max_frame_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gv::transport {

constexpr std::size_t kFrameHeaderBytes = 4;
constexpr std::size_t kDefaultMaxFrameBytes = 4 * 1024 * 1024;

// Appends the header and payload to `out`.
void AppendFrame(std::string_view payload, std::string& out);

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame_bytes = kDefaultMaxFrameBytes) : max_frame_bytes_(max_frame_bytes) {}

  // Consumes `data`; appends each completed frame to `frames`. After an error
  // the decoder stays failed (the connection must be dropped).
  Status Feed(std::string_view data, std::vector<std::string>& frames);

  std::size_t buffered_bytes() const { return buffer_.size(); }
  // Applies to frames whose header has not been read yet (a connection
  // accepts only small frames until its peer is known, then raises it).
  void set_max_frame_bytes(std::size_t max_frame_bytes) { max_frame_bytes_ = max_frame_bytes; }

 private:
  std::size_t max_frame_bytes_;
  std::string buffer_;
  Status failed_;
};

}  // namespace gv::transport
