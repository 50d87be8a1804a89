// Small helpers the benchmarks share for printing their reports: a fixed-point
// figure, a flushed line, and the machine's load and the UTC time that every
// report prints beside its figures (the machine is shared and noisy).
#pragma once

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>

namespace gv::bench {

inline std::string FormatFixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// Prints one line and flushes, so a report piped to a file or `tee` shows
// progress while a long benchmark runs.
inline void Line(const std::string& text) {
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

// "1-min 5-min 15-min" from /proc/loadavg.
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

inline std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  char text[64];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  return text;
}

}  // namespace gv::bench
