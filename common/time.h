// Time types for the sans-IO cores. CoreClock has no now(): the cores can only
// be told the time (by the daemon's loop or by the simulator), never read it.
#pragma once

#include <chrono>
#include <cstdint>

namespace gv {

struct CoreClock {
  using rep = std::int64_t;
  using period = std::micro;
  using duration = std::chrono::microseconds;
  using time_point = std::chrono::time_point<CoreClock>;
  static constexpr bool is_steady = true;
  // Deliberately no now().
};

using Duration = CoreClock::duration;     // microseconds
using TimePoint = CoreClock::time_point;  // microseconds since an arbitrary epoch

constexpr Duration Millis(std::int64_t ms) { return std::chrono::milliseconds(ms); }
constexpr Duration Seconds(std::int64_t s) { return std::chrono::seconds(s); }
constexpr TimePoint TimeFromMicros(std::int64_t us) { return TimePoint(Duration(us)); }
constexpr std::int64_t ToMicros(TimePoint t) { return t.time_since_epoch().count(); }
constexpr std::int64_t ToMillis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace gv
