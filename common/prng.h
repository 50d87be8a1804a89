// Prng: a portable, seedable pseudo-random generator for the cores and the
// simulator. The standard library's distributions are implementation-defined,
// so every draw here is our own arithmetic: the same seed gives the same
// sequence on every compiler and platform.
//
// Generator: xoshiro256** (Blackman & Vigna), seeded through splitmix64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/mix64.h"

namespace gv {

__extension__ typedef unsigned __int128 PrngU128;  // GCC/Clang extension; -Wpedantic-clean

class Prng {
 public:
  explicit Prng(std::uint64_t seed) { Seed(seed); }

  void Seed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : state_) word = SplitMix64(x);
  }

  std::uint64_t NextU64() {
    const std::uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform integer in [0, bound); bound must be > 0. Unbiased (Lemire's
  // multiply-shift with rejection).
  std::uint64_t Uniform(std::uint64_t bound) {
    PrngU128 m = static_cast<PrngU128>(NextU64()) * bound;
    std::uint64_t low = static_cast<std::uint64_t>(m);
    if (low < bound) {
      const std::uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<PrngU128>(NextU64()) * bound;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  // Uniform integer in [lo, hi] inclusive.
  std::int64_t Range(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(Uniform(static_cast<std::uint64_t>(hi - lo) + 1));
  }

  // Uniform double in [0, 1) with 53 bits of randomness.
  double NextDouble() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

  bool Chance(double probability) { return NextDouble() < probability; }

  // Fisher-Yates with our own Uniform (std::shuffle is not portable).
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(Uniform(i));
      std::swap(items[i - 1], items[j]);
    }
  }

  // Index of a uniformly chosen element; size must be > 0.
  std::size_t Index(std::size_t size) { return static_cast<std::size_t>(Uniform(size)); }

  // A child generator with an independent stream (for per-node PRNGs in the simulator).
  Prng Fork() { return Prng(NextU64()); }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t SplitMix64(std::uint64_t& x) { return Mix64(x += kGoldenGamma); }
  std::uint64_t state_[4];
};

}  // namespace gv
