#include "daemon/transport/frame_cipher.h"

#include <sodium.h>

#include <cstring>

namespace gv::transport {

static_assert(FrameCipher::kKeyBytes == crypto_secretbox_KEYBYTES);
static_assert(FrameCipher::kNonceBytes == crypto_secretbox_NONCEBYTES);
static_assert(FrameCipher::kMacBytes == crypto_secretbox_MACBYTES);

Result<FrameCipher> FrameCipher::Create(std::string key32) {
  if (key32.size() != kKeyBytes) {
    const std::size_t size = key32.size();
    sodium_memzero(key32.data(), key32.size());
    return Status::InvalidArgument("cluster key must be " + std::to_string(kKeyBytes) + " bytes, got " +
                                   std::to_string(size));
  }
  // Idempotent and thread-safe; needed before randombytes_buf is used.
  if (sodium_init() < 0) return Status::Unavailable("libsodium failed to initialise");
  FrameCipher cipher(key32);
  sodium_memzero(key32.data(), key32.size());
  return cipher;
}

FrameCipher::FrameCipher(const std::string& key32) { std::memcpy(key_.data(), key32.data(), kKeyBytes); }

FrameCipher::~FrameCipher() { sodium_memzero(key_.data(), key_.size()); }

std::string FrameCipher::Seal(std::string_view plain) const {
  std::string sealed(kOverheadBytes + plain.size(), '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(nonce, kNonceBytes);
  // crypto_secretbox_easy writes MAC || ciphertext after the nonce.
  crypto_secretbox_easy(nonce + kNonceBytes, reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                        nonce, key_.data());
  return sealed;
}

Result<std::string> FrameCipher::Open(std::string_view sealed) const {
  if (sealed.size() < kOverheadBytes) {
    return Status::Corruption("sealed frame of " + std::to_string(sealed.size()) +
                              " bytes is shorter than nonce + MAC (" + std::to_string(kOverheadBytes) + " bytes)");
  }
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string plain(sealed.size() - kOverheadBytes, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), nonce + kNonceBytes,
                                 sealed.size() - kNonceBytes, nonce, key_.data()) != 0) {
    return Status::Corruption("sealed frame failed authentication (another cluster key, or tampered in transit)");
  }
  return plain;
}

}  // namespace gv::transport
