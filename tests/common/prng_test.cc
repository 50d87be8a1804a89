#include "common/prng.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

using namespace gv;

TEST_CASE("prng: same seed, same sequence; different seeds differ") {
  Prng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t x = a.NextU64();
    CHECK(x == b.NextU64());
    if (x != c.NextU64()) differs = true;
  }
  CHECK(differs);
}

TEST_CASE("prng: first outputs are pinned so the sequence stays portable") {
  // If these change, every recorded simulation seed changes meaning.
  Prng p(1);
  const std::uint64_t first = p.NextU64();
  const std::uint64_t second = p.NextU64();
  Prng q(1);
  CHECK(q.NextU64() == first);
  CHECK(q.NextU64() == second);
  CHECK(first != second);
  // Pinned value for seed 0 computed from the reference algorithm definition.
  Prng zero(0);
  CHECK(zero.NextU64() == 0x99ec5f36cb75f2b4ULL);
}

TEST_CASE("prng: Uniform stays in bounds and covers the range") {
  Prng p(7);
  std::vector<int> counts(10, 0);
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t v = p.Uniform(10);
    REQUIRE(v < 10);
    counts[v]++;
  }
  for (int c : counts) {
    CHECK(c > 9000);
    CHECK(c < 11000);
  }
  for (int i = 0; i < 1000; ++i) {
    std::int64_t r = p.Range(-3, 3);
    CHECK(r >= -3);
    CHECK(r <= 3);
    double d = p.NextDouble();
    CHECK(d >= 0.0);
    CHECK(d < 1.0);
  }
}

TEST_CASE("prng: Shuffle is a permutation and deterministic") {
  std::vector<int> v(100), w;
  for (int i = 0; i < 100; ++i) v[i] = i;
  w = v;
  Prng a(9), b(9);
  a.Shuffle(v);
  b.Shuffle(w);
  CHECK(v == w);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) CHECK(sorted[i] == i);
  bool moved = false;
  for (int i = 0; i < 100; ++i) moved |= (v[i] != i);
  CHECK(moved);
}
