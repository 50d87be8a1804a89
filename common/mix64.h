// Mix64: splitmix64's finaliser (Steele, Lea, Flood), a bijection on 64-bit
// words whose output bits each depend on every input bit. Used where a value
// must look random but be a fixed function of its input: hashing ids, seeding
// generators, spreading node ids over a range.
#pragma once

#include <cstdint>

namespace gv {

// The golden-ratio increment splitmix64 adds before each finalisation.
inline constexpr std::uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

constexpr std::uint64_t Mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace gv
