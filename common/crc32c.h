// CRC32C (Castagnoli), used to frame WAL records and snapshot chunks.
// Hardware (SSE4.2) when the CPU has it, a slicing table otherwise; both give
// the same values (checked against RFC 3720's test vectors in tests/common).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gv::crc32c {

// Extend a running CRC (start with 0) over n bytes.
std::uint32_t Extend(std::uint32_t crc, const void* data, std::size_t n);

inline std::uint32_t Value(const void* data, std::size_t n) { return Extend(0, data, n); }
inline std::uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// A stored CRC is masked, as in LevelDB: computing the CRC of a string that
// contains embedded CRCs is otherwise error-prone, and a zero-filled region
// must never carry a CRC that matches it (Mask(Value("")) != 0).
constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
inline std::uint32_t Mask(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline std::uint32_t Unmask(std::uint32_t masked) {
  std::uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace gv::crc32c
