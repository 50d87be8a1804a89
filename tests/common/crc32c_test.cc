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

TEST_CASE("crc32c mask round-trips and differs from the raw value") {
  for (std::uint32_t v : {0u, 1u, 0xe3069283u, 0xffffffffu}) {
    CHECK(crc32c::Unmask(crc32c::Mask(v)) == v);
    CHECK(crc32c::Mask(v) != v);
  }
  CHECK(crc32c::Mask(crc32c::Value("")) != 0u);
}
