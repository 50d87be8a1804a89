// FrameCipher: sealed frames open to the same bytes under the same key and to
// nothing under another key or after any change to any byte.
#include "daemon/transport/frame_cipher.h"

#include <doctest/doctest.h>

#include <string>

#include "common/prng.h"

using gv::Prng;
using gv::StatusCode;
using gv::transport::FrameCipher;

namespace {

std::string Key(char fill) { return std::string(FrameCipher::kKeyBytes, fill); }

std::string Bytes(Prng& prng, std::size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(prng.Uniform(256));
  return out;
}

FrameCipher MakeCipher(const std::string& key) {
  auto cipher = FrameCipher::Create(key);
  REQUIRE_MESSAGE(cipher.ok(), cipher.status().ToString());
  return *cipher;
}

}  // namespace

TEST_CASE("sealed frames open to the same bytes, at any size including empty") {
  Prng prng(1);
  const FrameCipher sender = MakeCipher(Key('k'));
  const FrameCipher receiver = MakeCipher(Key('k'));  // another instance, same key
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 4096u, 1u << 20}) {
    INFO("size " << size);
    const std::string plain = Bytes(prng, size);
    const std::string sealed = sender.Seal(plain);
    CHECK(sealed.size() == plain.size() + FrameCipher::kOverheadBytes);
    if (size >= 16) CHECK(sealed.find(plain.substr(0, 16)) == std::string::npos);  // not in clear
    auto opened = receiver.Open(sealed);
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    CHECK(*opened == plain);
  }
}

TEST_CASE("every seal uses a fresh nonce") {
  const FrameCipher cipher = MakeCipher(Key('k'));
  const std::string a = cipher.Seal("same frame");
  const std::string b = cipher.Seal("same frame");
  CHECK(a.substr(0, FrameCipher::kNonceBytes) != b.substr(0, FrameCipher::kNonceBytes));
  CHECK(a != b);
  CHECK(*cipher.Open(a) == *cipher.Open(b));
}

TEST_CASE("changing any byte of a sealed frame makes it fail authentication") {
  Prng prng(2);
  const FrameCipher cipher = MakeCipher(Key('k'));
  for (const std::string& plain : {std::string(), std::string("GVE1 envelope bytes \x01\x02\x03", 23)}) {
    const std::string sealed = cipher.Seal(plain);
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      for (int mask : {0x01, 0x80, static_cast<int>(1 + prng.Uniform(255))}) {
        std::string tampered = sealed;
        tampered[i] = static_cast<char>(tampered[i] ^ mask);
        auto opened = cipher.Open(tampered);
        INFO("byte " << i << " mask " << mask);
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.status().code() == StatusCode::kCorruption);
        CHECK(opened.status().message().find("authentication") != std::string::npos);
      }
    }
    // Cut or extended frames fail as well.
    for (std::size_t n = FrameCipher::kOverheadBytes; n < sealed.size(); ++n) {
      CHECK_FALSE(cipher.Open(std::string_view(sealed).substr(0, n)).ok());
    }
    CHECK_FALSE(cipher.Open(sealed + '\0').ok());
    CHECK(*cipher.Open(sealed) == plain);  // the original still opens
  }
}

TEST_CASE("a frame sealed under another key does not open") {
  const FrameCipher ours = MakeCipher(Key('k'));
  std::string other_key = Key('k');
  other_key.back() = 'j';  // one byte away
  const FrameCipher theirs = MakeCipher(other_key);
  auto opened = ours.Open(theirs.Seal("hello from another cluster"));
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == StatusCode::kCorruption);
  CHECK(opened.status().message().find("authentication") != std::string::npos);
  CHECK_FALSE(theirs.Open(ours.Seal("")).ok());
}

TEST_CASE("frames shorter than nonce + MAC are refused, naming the size") {
  const FrameCipher cipher = MakeCipher(Key('k'));
  for (std::size_t n : {0u, 1u, 24u, 39u}) {
    auto opened = cipher.Open(std::string(n, '\0'));
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.status().code() == StatusCode::kCorruption);
    CHECK(opened.status().message().find("shorter than nonce + MAC") != std::string::npos);
  }
  // 40 zero bytes: long enough, but forged.
  auto forged = cipher.Open(std::string(FrameCipher::kOverheadBytes, '\0'));
  REQUIRE_FALSE(forged.ok());
  CHECK(forged.status().message().find("authentication") != std::string::npos);
}

TEST_CASE("keys of any length but 32 bytes are refused") {
  for (std::size_t n : {0u, 16u, 31u, 33u, 44u}) {
    auto cipher = FrameCipher::Create(std::string(n, 'k'));
    REQUIRE_FALSE(cipher.ok());
    CHECK(cipher.status().code() == StatusCode::kInvalidArgument);
    CHECK(cipher.status().message() == "cluster key must be 32 bytes, got " + std::to_string(n));
  }
}
