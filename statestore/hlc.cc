#include "statestore/hlc.h"

#include <algorithm>

namespace gv::statestore {

std::string Hlc::ToString() const { return std::to_string(wall_ms) + "." + std::to_string(logical); }

Result<Hlc> HlcClock::Now(std::uint64_t physical_wall_ms) {
  // A local event is a receive of the zero timestamp.
  return Advance(Hlc{}, physical_wall_ms);
}

Status HlcClock::CheckDrift(Hlc remote, std::uint64_t physical_wall_ms) const {
  if (max_drift_ms_ != 0 && remote.wall_ms > physical_wall_ms &&
      remote.wall_ms - physical_wall_ms > max_drift_ms_) {
    return Status::InvalidArgument("remote HLC " + remote.ToString() + " is " +
                                   std::to_string(remote.wall_ms - physical_wall_ms) +
                                   " ms ahead of the local physical clock, more than max_clock_drift_ms=" +
                                   std::to_string(max_drift_ms_));
  }
  return Status::Ok();
}

Result<Hlc> HlcClock::Observe(Hlc remote, std::uint64_t physical_wall_ms) {
  GV_RETURN_IF_ERROR(CheckDrift(remote, physical_wall_ms));
  return Advance(remote, physical_wall_ms);
}

Result<Hlc> HlcClock::ObserveUnchecked(Hlc remote, std::uint64_t physical_wall_ms) {
  return Advance(remote, physical_wall_ms);
}

Result<Hlc> HlcClock::Advance(Hlc remote, std::uint64_t physical_wall_ms) {
  if (remote.wall_ms > Hlc::kMaxWallMs) {
    return Status::InvalidArgument("HLC wall time " + std::to_string(remote.wall_ms) + " exceeds 48 bits");
  }
  const std::uint64_t physical = std::min(physical_wall_ms, Hlc::kMaxWallMs);
  const std::uint64_t wall = std::max({last_.wall_ms, remote.wall_ms, physical});
  // Logical part per the paper: continue the counter of whichever of last_ and
  // remote share the new wall time; restart at 0 when physical time moved ahead.
  std::uint32_t logical = 0;
  const bool from_last = wall == last_.wall_ms;
  const bool from_remote = wall == remote.wall_ms;
  if (from_last && from_remote) {
    logical = std::uint32_t{std::max(last_.logical, remote.logical)} + 1;
  } else if (from_last) {
    logical = std::uint32_t{last_.logical} + 1;
  } else if (from_remote) {
    logical = std::uint32_t{remote.logical} + 1;
  }
  Hlc next{wall, 0};
  if (logical > Hlc::kMaxLogical) {
    // 65,536 events within one millisecond: borrow the next millisecond rather
    // than wrap (wrapping would break monotonicity). wall_ms then runs at most
    // a little ahead of physical time, and physical time catches up.
    if (wall == Hlc::kMaxWallMs) return Status::Aborted("HLC exhausted: wall time at the 48-bit maximum");
    next.wall_ms = wall + 1;
  } else {
    next.logical = static_cast<std::uint16_t>(logical);
  }
  last_ = next;
  return next;
}

}  // namespace gv::statestore
