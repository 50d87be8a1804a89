// Cluster-key encryption of peer frames (`--cluster-key`): each frame's
// payload (the encoded envelope) is sealed with libsodium's secretbox
// (XSalsa20-Poly1305) under the cluster's 32-byte key, so only holders of the
// key can read or forge peer traffic.
//
// Sealed layout: nonce (24 random bytes, randombytes_buf) || secretbox
// ciphertext (MAC 16 bytes || encrypted payload). A random 192-bit nonce per
// frame never repeats in practice, so no nonce state has to be kept or
// synchronised between the two ends (and a restarted agent cannot reuse one).
// The frame length prefix stays in clear: it only bounds the read, and any
// change to it makes the sealed bytes fail authentication.
//
// This header does not include sodium.h: gv_daemon links libsodium privately.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gv::transport {

class FrameCipher {
 public:
  static constexpr std::size_t kKeyBytes = 32;    // crypto_secretbox_KEYBYTES
  static constexpr std::size_t kNonceBytes = 24;  // crypto_secretbox_NONCEBYTES
  static constexpr std::size_t kMacBytes = 16;    // crypto_secretbox_MACBYTES
  // Seal(p).size() == p.size() + kOverheadBytes.
  static constexpr std::size_t kOverheadBytes = kNonceBytes + kMacBytes;

  // `key32`: the raw 32-byte cluster key (AgentOptions::cluster_key_bytes).
  // InvalidArgument for any other length; Unavailable if libsodium cannot
  // initialise (no usable randomness source).
  static Result<FrameCipher> Create(std::string key32);

  FrameCipher(const FrameCipher&) = default;
  FrameCipher& operator=(const FrameCipher&) = default;
  FrameCipher(FrameCipher&&) = default;
  FrameCipher& operator=(FrameCipher&&) = default;
  ~FrameCipher();  // wipes the key

  // Encrypts and authenticates `plain` (may be empty) under a fresh nonce.
  std::string Seal(std::string_view plain) const;

  // Verifies and decrypts a sealed frame. Corruption when it is shorter than
  // kOverheadBytes or fails authentication (wrong cluster key, tampered or
  // truncated bytes); nothing of a forged frame is returned.
  Result<std::string> Open(std::string_view sealed) const;

 private:
  explicit FrameCipher(const std::string& key32);
  std::array<unsigned char, kKeyBytes> key_{};
};

}  // namespace gv::transport
