#include "common/crc32c.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace gv;

TEST_CASE("crc32c matches RFC 3720 test vectors") {
  std::vector<unsigned char> buf(32, 0);
  CHECK(crc32c::Value(buf.data(), buf.size()) == 0x8a9136aau);
  std::memset(buf.data(), 0xff, buf.size());
  CHECK(crc32c::Value(buf.data(), buf.size()) == 0x62a8ab43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  CHECK(crc32c::Value(buf.data(), buf.size()) == 0x46dd794eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  CHECK(crc32c::Value(buf.data(), buf.size()) == 0x113fdb5cu);
  CHECK(crc32c::Value("123456789") == 0xe3069283u);
}

TEST_CASE("crc32c extends incrementally at every split point") {
  std::string s = "the quick brown fox jumps over the lazy dog, twice over for length";
  const std::uint32_t whole = crc32c::Value(s);
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    std::uint32_t c = crc32c::Extend(0, s.data(), cut);
    c = crc32c::Extend(c, s.data() + cut, s.size() - cut);
    CHECK(c == whole);
  }
}

namespace {
// Bit at a time, straight from the definition: the reference for the fast paths.
std::uint32_t BitwiseCrc32c(const unsigned char* p, std::size_t n) {
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}
}  // namespace

TEST_CASE("crc32c equals the bitwise definition for lengths around the interleaved block sizes") {
  // The hardware path joins three streams over runs of 3 x 8192 and
  // 3 x 256 bytes: lengths on both sides of those, and odd tails.
  std::vector<unsigned char> data(3 * 8192 * 2 + 3 * 256 + 17);
  std::uint32_t x = 12345;
  for (unsigned char& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<unsigned char>(x >> 24);
  }
  for (std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{767}, std::size_t{768}, std::size_t{769},
                        std::size_t{3 * 256 * 2 + 5}, std::size_t{24575}, std::size_t{24576}, std::size_t{24577},
                        std::size_t{24576 + 768 + 9}, data.size()}) {
    CAPTURE(n);
    CHECK(crc32c::Value(data.data(), n) == BitwiseCrc32c(data.data(), n));
    // Continuing from a nonzero state through the interleaved path.
    const std::size_t cut = n / 3;
    CHECK(crc32c::Extend(crc32c::Value(data.data(), cut), data.data() + cut, n - cut) ==
          BitwiseCrc32c(data.data(), n));
  }
  // From an unaligned start, so the 8-byte loads straddle words.
  CHECK(crc32c::Value(data.data() + 3, 24576 + 1000) == BitwiseCrc32c(data.data() + 3, 24576 + 1000));
}

TEST_CASE("crc32c mask round-trips and differs from the raw value") {
  for (std::uint32_t v : {0u, 1u, 0xe3069283u, 0xffffffffu}) {
    CHECK(crc32c::Unmask(crc32c::Mask(v)) == v);
    CHECK(crc32c::Mask(v) != v);
  }
  CHECK(crc32c::Mask(crc32c::Value("")) != 0u);
}
