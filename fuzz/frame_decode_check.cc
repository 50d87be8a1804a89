#include "fuzz/frame_decode_check.h"

#include <algorithm>

#include "common/prng.h"
#include "common/status.h"
#include "daemon/transport/frame.h"

namespace gv::fuzz {
namespace {

std::uint8_t ByteAt(std::string_view input, std::size_t i) {
  return i < input.size() ? static_cast<std::uint8_t>(input[i]) : 0;
}

bool SameStatus(const Status& a, const Status& b) { return a.code() == b.code() && a.message() == b.message(); }

}  // namespace

FrameFuzzInput ParseFrameFuzzInput(std::string_view input) {
  FrameFuzzInput out;
  out.max_frame_bytes = 1 + (std::size_t{ByteAt(input, 0)} | (std::size_t{ByteAt(input, 1)} << 8));
  out.split_seed = ByteAt(input, 2);
  out.max_piece_bytes = 1 + std::size_t{ByteAt(input, 3)};
  out.stream = input.substr(std::min(input.size(), kFrameFuzzHeaderBytes));
  return out;
}

std::string EncodeFrameFuzzInput(std::size_t max_frame_bytes, std::uint8_t split_seed, std::size_t max_piece_bytes,
                                 std::string_view stream) {
  if (max_frame_bytes < 1 || max_frame_bytes > 65536 || max_piece_bytes < 1 || max_piece_bytes > 256) return "";
  const std::size_t limit = max_frame_bytes - 1;
  std::string out;
  out.push_back(static_cast<char>(limit & 0xff));
  out.push_back(static_cast<char>(limit >> 8));
  out.push_back(static_cast<char>(split_seed));
  out.push_back(static_cast<char>(max_piece_bytes - 1));
  out.append(stream);
  return out;
}

std::string CheckFrameDecode(const std::uint8_t* data, std::size_t size, FrameDecodeOutcome* outcome) {
  const FrameFuzzInput in = ParseFrameFuzzInput(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::size_t buffer_bound = transport::kFrameHeaderBytes + in.max_frame_bytes;

  transport::FrameDecoder whole_decoder(in.max_frame_bytes);
  std::vector<std::string> whole_frames;
  const Status whole_status = whole_decoder.Feed(in.stream, whole_frames);
  if (outcome) *outcome = FrameDecodeOutcome{whole_frames.size(), !whole_status.ok()};
  if (!whole_status.ok() && whole_status.message().empty()) return "refused the stream without a message";
  if (whole_decoder.buffered_bytes() >= buffer_bound) {
    return "buffers " + std::to_string(whole_decoder.buffered_bytes()) + " bytes, not below header + limit " +
           std::to_string(buffer_bound);
  }

  transport::FrameDecoder piece_decoder(in.max_frame_bytes);
  std::vector<std::string> piece_frames;
  Status piece_status;
  Prng splits(in.split_seed);
  for (std::size_t pos = 0; pos <= in.stream.size();) {
    // Empty pieces too: a read of zero bytes must change nothing.
    const std::size_t n = std::min(in.stream.size() - pos, static_cast<std::size_t>(splits.Uniform(in.max_piece_bytes + 1)));
    const Status fed = piece_decoder.Feed(in.stream.substr(pos, n), piece_frames);
    if (!piece_status.ok() && !SameStatus(fed, piece_status)) {
      return "a failed decoder answered a later Feed with a different status: " + fed.ToString();
    }
    if (piece_status.ok()) piece_status = fed;
    if (piece_decoder.buffered_bytes() >= buffer_bound) {
      return "buffers " + std::to_string(piece_decoder.buffered_bytes()) + " bytes after a piece, not below " +
             std::to_string(buffer_bound);
    }
    pos += n;
    if (pos == in.stream.size()) break;
  }
  if (!SameStatus(whole_status, piece_status)) {
    return "whole stream gave '" + whole_status.ToString() + "' but pieces gave '" + piece_status.ToString() + "'";
  }
  if (whole_frames != piece_frames) {
    return "whole stream gave " + std::to_string(whole_frames.size()) + " frames, pieces gave " +
           std::to_string(piece_frames.size()) + " (or different bytes)";
  }

  std::string reframed;
  for (const std::string& frame : whole_frames) {
    if (frame.empty() || frame.size() > in.max_frame_bytes) {
      return "a frame of " + std::to_string(frame.size()) + " bytes is outside 1.." + std::to_string(in.max_frame_bytes);
    }
    transport::AppendFrame(frame, reframed);
  }
  // Frames are cut from the front of the stream, in order, with nothing skipped.
  if (in.stream.substr(0, reframed.size()) != reframed) return "the frames are not the stream's prefix";
  if (whole_status.ok() && reframed.size() + whole_decoder.buffered_bytes() != in.stream.size()) {
    return "decoded " + std::to_string(reframed.size()) + " bytes and buffers " +
           std::to_string(whole_decoder.buffered_bytes()) + " of a " + std::to_string(in.stream.size()) +
           "-byte stream";
  }

  transport::FrameDecoder again_decoder(in.max_frame_bytes);
  std::vector<std::string> again_frames;
  if (Status again = again_decoder.Feed(reframed, again_frames); !again.ok()) {
    return "re-framed frames do not decode: " + again.ToString();
  }
  if (again_frames != whole_frames) return "re-framed frames decode differently";
  if (again_decoder.buffered_bytes() != 0) return "re-framed frames leave bytes buffered";

  return "";
}

}  // namespace gv::fuzz
