#include "common/crc32c.h"

#include <array>
#include <cstring>

namespace gv::crc32c {
namespace {

constexpr std::uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

constexpr std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kTable = MakeTable();

std::uint32_t ExtendPortable(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
// The crc32 instruction takes 3 cycles but can start one per cycle, so one
// dependent chain of them runs at a third of the speed the CPU allows. Long
// inputs (snapshot chunks: 256 KiB) are cut into runs of three blocks whose
// CRCs are computed as three independent chains at once and then joined.
// The join rests on linearity: the register after A||B, started from s, is
//   after(s, A||B) = shift_B(after(s, A)) ^ after(0, B)
// where shift_n(x), the register after n zero bytes from x, is linear in x
// and so a sum of four per-byte tables.
constexpr std::size_t kLongBlockBytes = 8192;
constexpr std::size_t kShortBlockBytes = 256;

struct ShiftTable {
  std::uint32_t by_byte[4][256];
};

__attribute__((target("sse4.2"))) std::uint32_t ZerosFrom(std::uint32_t state, std::size_t n) {
  std::uint64_t c = state;
  for (std::size_t i = 0; i < n / 8; ++i) c = __builtin_ia32_crc32di(c, 0);
  return static_cast<std::uint32_t>(c);
}

// shift_n tabulated: 32 runs over n zero bytes (one per bit of the state),
// then each byte value's entry is the XOR of its bits'.
ShiftTable MakeShiftTable(std::size_t n) {
  std::uint32_t by_bit[32];
  for (int bit = 0; bit < 32; ++bit) by_bit[bit] = ZerosFrom(std::uint32_t{1} << bit, n);
  ShiftTable table{};
  for (int byte = 0; byte < 4; ++byte) {
    for (std::uint32_t value = 0; value < 256; ++value) {
      std::uint32_t out = 0;
      for (int bit = 0; bit < 8; ++bit) {
        if ((value >> bit) & 1) out ^= by_bit[8 * byte + bit];
      }
      table.by_byte[byte][value] = out;
    }
  }
  return table;
}

std::uint32_t Shift(const ShiftTable& table, std::uint32_t x) {
  return table.by_byte[0][x & 0xff] ^ table.by_byte[1][(x >> 8) & 0xff] ^ table.by_byte[2][(x >> 16) & 0xff] ^
         table.by_byte[3][x >> 24];
}

// One run of three blocks of `block` bytes each from p, continuing state c.
template <std::size_t block>
__attribute__((target("sse4.2"))) std::uint64_t ThreeBlocks(std::uint64_t c, const std::uint8_t* p,
                                                            const ShiftTable& shift) {
  std::uint64_t c1 = 0;
  std::uint64_t c2 = 0;
  for (std::size_t i = 0; i < block; i += 8) {
    std::uint64_t w0, w1, w2;
    std::memcpy(&w0, p + i, 8);
    std::memcpy(&w1, p + block + i, 8);
    std::memcpy(&w2, p + 2 * block + i, 8);
    c = __builtin_ia32_crc32di(c, w0);
    c1 = __builtin_ia32_crc32di(c1, w1);
    c2 = __builtin_ia32_crc32di(c2, w2);
  }
  c = Shift(shift, static_cast<std::uint32_t>(c)) ^ static_cast<std::uint32_t>(c1);
  return Shift(shift, static_cast<std::uint32_t>(c)) ^ static_cast<std::uint32_t>(c2);
}

__attribute__((target("sse4.2"))) std::uint32_t ExtendSse42(std::uint32_t crc, const std::uint8_t* p,
                                                            std::size_t n) {
  static const ShiftTable long_shift = MakeShiftTable(kLongBlockBytes);
  static const ShiftTable short_shift = MakeShiftTable(kShortBlockBytes);
  std::uint64_t c = ~crc;
  for (; n >= 3 * kLongBlockBytes; p += 3 * kLongBlockBytes, n -= 3 * kLongBlockBytes) {
    c = ThreeBlocks<kLongBlockBytes>(c, p, long_shift);
  }
  for (; n >= 3 * kShortBlockBytes; p += 3 * kShortBlockBytes, n -= 3 * kShortBlockBytes) {
    c = ThreeBlocks<kShortBlockBytes>(c, p, short_shift);
  }
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  std::uint32_t c32 = static_cast<std::uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p);
    ++p;
    --n;
  }
  return ~c32;
}

bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

}  // namespace

std::uint32_t Extend(std::uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
#if defined(__x86_64__)
  if (HaveSse42()) return ExtendSse42(crc, p, n);
#endif
  return ExtendPortable(crc, p, n);
}

}  // namespace gv::crc32c
