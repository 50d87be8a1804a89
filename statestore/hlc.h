// Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
//
// An Hlc is (wall_ms: 48 bits, logical: 16 bits), packed into one u64 so the
// packed value orders exactly like the pair. Properties the store relies on:
//   - every Hlc a clock returns is strictly greater than every Hlc it returned
//     or observed before (so a write made after seeing another write carries a
//     greater HLC: "the winner is the greatest (hlc, origin)" respects causality);
//   - wall_ms stays close to physical time (it never runs ahead of the largest
//     physical or observed wall time except by logical-overflow carries).
//
// Sans-IO: physical time is always passed in by the caller, in milliseconds.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace gv::statestore {

struct Hlc {
  static constexpr std::uint64_t kMaxWallMs = (std::uint64_t{1} << 48) - 1;
  static constexpr std::uint16_t kMaxLogical = 0xffff;

  std::uint64_t wall_ms = 0;  // < 2^48 (year 10889); enforced by HlcClock and Unpack
  std::uint16_t logical = 0;

  // Field order makes the defaulted comparison lexicographic (wall, logical),
  // the same order as Pack().
  auto operator<=>(const Hlc&) const = default;

  std::uint64_t Pack() const { return (wall_ms << 16) | logical; }
  static Hlc Unpack(std::uint64_t packed) {
    return Hlc{packed >> 16, static_cast<std::uint16_t>(packed & 0xffff)};
  }
  // "1700000000000.3"
  std::string ToString() const;
};

class HlcClock {
 public:
  // max_drift_ms: Observe() refuses a remote HLC whose wall time is more than
  // this far ahead of the local physical clock (0 disables the check).
  explicit HlcClock(std::uint64_t max_drift_ms = 0) : max_drift_ms_(max_drift_ms) {}

  // A timestamp for a local event (a write). Fails only when the 48-bit wall
  // range is exhausted (physical time past year 10889), never in practice.
  Result<Hlc> Now(std::uint64_t physical_wall_ms);

  // Merges a remote timestamp (a delta being applied): afterwards the clock is
  // strictly greater than `remote`. Refuses (InvalidArgument, clock unchanged)
  // a remote wall time beyond physical + max_drift_ms.
  Result<Hlc> Observe(Hlc remote, std::uint64_t physical_wall_ms);

  // The drift check of Observe() alone, without touching the clock.
  Status CheckDrift(Hlc remote, std::uint64_t physical_wall_ms) const;

  // Like Observe() without the drift check: for replaying our own log and for
  // deltas already admitted once (held back, then applied when a gap filled).
  Result<Hlc> ObserveUnchecked(Hlc remote, std::uint64_t physical_wall_ms);

  Hlc last() const { return last_; }
  std::uint64_t max_drift_ms() const { return max_drift_ms_; }

 private:
  // The paper's update rule over (last_, candidates), with the logical
  // counter's overflow carried into wall_ms.
  Result<Hlc> Advance(Hlc remote, std::uint64_t physical_wall_ms);

  Hlc last_{};
  std::uint64_t max_drift_ms_;
};

}  // namespace gv::statestore
