#include "statestore/hlc.h"

#include <doctest/doctest.h>

#include "common/prng.h"

using namespace gv;
using namespace gv::statestore;

TEST_CASE("hlc: packing preserves order and round-trips") {
  Prng prng(7);
  for (int i = 0; i < 2000; ++i) {
    Hlc a{prng.Uniform(Hlc::kMaxWallMs + 1), static_cast<std::uint16_t>(prng.Uniform(65536))};
    Hlc b{prng.Chance(0.5) ? a.wall_ms : prng.Uniform(Hlc::kMaxWallMs + 1),
          static_cast<std::uint16_t>(prng.Uniform(65536))};
    CHECK(Hlc::Unpack(a.Pack()) == a);
    CHECK((a < b) == (a.Pack() < b.Pack()));
    CHECK((a == b) == (a.Pack() == b.Pack()));
  }
  CHECK(Hlc{5, 0}.Pack() == (5ull << 16));
  CHECK(Hlc{5, 7}.ToString() == "5.7");
}

TEST_CASE("hlc: Now is strictly monotonic even when physical time goes backwards") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed=" << seed);
    Prng prng(seed);
    HlcClock clock;
    std::uint64_t physical = 1'700'000'000'000;
    Hlc previous{};
    for (int i = 0; i < 2000; ++i) {
      // Mostly forward, sometimes stuck, sometimes a backwards jump.
      const std::uint64_t step = prng.Uniform(4);
      if (step == 0) physical -= prng.Uniform(5000);
      else if (step == 1) physical += prng.Uniform(3);
      auto now = clock.Now(physical);
      REQUIRE(now.ok());
      CHECK(previous < *now);
      CHECK(now->wall_ms >= physical);  // never behind physical time
      previous = *now;
    }
  }
}

TEST_CASE("hlc: Observe exceeds the remote and everything before (causality)") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed=" << seed);
    Prng prng(seed);
    HlcClock a, b;
    std::uint64_t pa = 1000, pb = 1000 + prng.Uniform(500);  // skewed clocks
    for (int i = 0; i < 500; ++i) {
      pa += prng.Uniform(3);
      pb += prng.Uniform(3);
      auto sent = a.Now(pa);
      REQUIRE(sent.ok());
      const Hlc before = b.last();
      auto seen = b.Observe(*sent, pb);
      REQUIRE(seen.ok());
      CHECK(*sent < *seen);
      CHECK(before < *seen);
      auto reply = b.Now(pb);  // an event after the receive
      REQUIRE(reply.ok());
      CHECK(*sent < *reply);
      auto back = a.Observe(*reply, pa);
      REQUIRE(back.ok());
      CHECK(*reply < *back);
    }
  }
}

TEST_CASE("hlc: the paper's rule keeps wall time at max(physical, seen)") {
  HlcClock clock;
  CHECK(*clock.Now(100) == Hlc{100, 0});
  CHECK(*clock.Now(100) == Hlc{100, 1});
  CHECK(*clock.Now(99) == Hlc{100, 2});  // physical went back: counter continues
  CHECK(*clock.Now(101) == Hlc{101, 0});  // physical moved ahead: counter restarts
  CHECK(*clock.Observe(Hlc{150, 9}, 101) == Hlc{150, 10});  // remote ahead: take its wall
  CHECK(*clock.Observe(Hlc{150, 3}, 120) == Hlc{150, 11});  // same wall: max counter + 1
  CHECK(*clock.Observe(Hlc{10, 3}, 200) == Hlc{200, 0});
}

TEST_CASE("hlc: logical overflow carries into the wall time instead of wrapping") {
  HlcClock clock;
  auto observed = clock.Observe(Hlc{500, Hlc::kMaxLogical - 2}, 400);
  REQUIRE(observed.ok());
  CHECK(*observed == Hlc{500, Hlc::kMaxLogical - 1});
  auto at_max = clock.Now(400);
  REQUIRE(at_max.ok());
  CHECK(*at_max == Hlc{500, Hlc::kMaxLogical});
  auto carried = clock.Now(400);
  REQUIRE(carried.ok());
  CHECK(*carried == Hlc{501, 0});
  CHECK(*at_max < *carried);
  // A remote at the logical maximum is still exceeded.
  auto seen = clock.Observe(Hlc{900, Hlc::kMaxLogical}, 400);
  REQUIRE(seen.ok());
  CHECK(*seen == Hlc{901, 0});
}

TEST_CASE("hlc: exhaustion at the 48-bit limit is an error, not a wrap") {
  HlcClock clock;
  REQUIRE(clock.Observe(Hlc{Hlc::kMaxWallMs, Hlc::kMaxLogical - 1}, 0).ok());
  auto failed = clock.Now(0);
  CHECK_FALSE(failed.ok());
  CHECK(failed.status().message().find("exhausted") != std::string::npos);
  CHECK_FALSE(clock.Observe(Hlc{Hlc::kMaxWallMs + 1, 0}, 0).ok());
}

TEST_CASE("hlc: Observe refuses a remote too far ahead and leaves the clock alone") {
  HlcClock clock(/*max_drift_ms=*/1000);
  REQUIRE(clock.Now(10'000).ok());
  const Hlc before = clock.last();
  auto refused = clock.Observe(Hlc{11'001, 0}, 10'000);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("max_clock_drift_ms=1000") != std::string::npos);
  CHECK(clock.last() == before);
  CHECK(clock.Observe(Hlc{11'000, 0}, 10'000).ok());  // exactly at the bound
  CHECK(clock.ObserveUnchecked(Hlc{99'000, 0}, 10'000).ok());
  HlcClock unlimited;
  CHECK(unlimited.Observe(Hlc{Hlc::kMaxWallMs - 10, 0}, 0).ok());
}
