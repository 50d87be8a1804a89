// The property the peer-frame decoder fuzz target checks, shared by the
// libFuzzer entry point (frame_decode_fuzz.cc) and the regular test that runs
// it over the seed corpus and seeded mutations (tests/fuzz).
//
// Input layout (missing bytes read as zero):
//   bytes 0-1  u16 little-endian L; the decoder's limit is 1 + L bytes, so
//              small limits (and "frame too large") are easy to reach
//   byte 2     seed of the split points
//   byte 3     longest piece when feeding in pieces is 1 + this many bytes
//   rest       the byte stream from the peer
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gv::fuzz {

inline constexpr std::size_t kFrameFuzzHeaderBytes = 4;

struct FrameFuzzInput {
  std::size_t max_frame_bytes = 1;
  std::uint8_t split_seed = 0;
  std::size_t max_piece_bytes = 1;
  std::string_view stream;
};

FrameFuzzInput ParseFrameFuzzInput(std::string_view input);
// The input ParseFrameFuzzInput maps to these values; max_frame_bytes must be
// in 1..65536 and max_piece_bytes in 1..256 (else "").
std::string EncodeFrameFuzzInput(std::size_t max_frame_bytes, std::uint8_t split_seed, std::size_t max_piece_bytes,
                                 std::string_view stream);

struct FrameDecodeOutcome {
  std::size_t frames = 0;  // frames decoded before the stream ended or failed
  bool failed = false;     // the decoder refused a length
};

// Feeds the stream to a FrameDecoder whole, and to another one in pieces
// (split points from a Prng seeded by the input, empty pieces included).
// Property: both yield the same frames and the same final status (ok, or the
// same error); no frame is empty or above the limit; after every Feed the
// decoder buffers less than a header plus the limit; the frames are exactly
// the stream's consumed prefix; and re-framing them with AppendFrame decodes
// to the same frames with nothing left over.
// Returns "" when the property holds, otherwise what broke.
std::string CheckFrameDecode(const std::uint8_t* data, std::size_t size, FrameDecodeOutcome* outcome = nullptr);

}  // namespace gv::fuzz
