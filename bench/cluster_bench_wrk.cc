// cluster_bench: one wrk run, its output parsed.
#include <cstdlib>
#include <sstream>

#include "bench/cluster_bench.h"

namespace gv::bench {
namespace {

// The number after `label` on the line that contains it ("Requests/sec:  41772.70").
std::optional<double> NumberAfter(const std::string& text, const std::string& label) {
  std::size_t at = text.find(label);
  if (at == std::string::npos) return std::nullopt;
  const char* start = text.c_str() + at + label.size();
  char* end = nullptr;
  double value = std::strtod(start, &end);
  if (end == start) return std::nullopt;
  return value;
}

}  // namespace

Result<WrkResult> RunWrk(const WrkOptions& options, const std::string& url) {
  std::vector<std::string> argv = {options.binary,
                                   "-t" + std::to_string(options.threads),
                                   "-c" + std::to_string(options.connections),
                                   "-d" + std::to_string(options.seconds) + "s",
                                   url};
  auto run = RunCommand(argv, std::chrono::seconds(options.seconds + 60));
  if (!run.ok()) return run.status();
  if (run->timed_out) return Status::Unavailable("wrk against " + url + " did not finish");
  if (run->exit_code != 0) return Status::Unavailable("wrk against " + url + " failed: " + run->output);
  WrkResult result;
  auto rate = NumberAfter(run->output, "Requests/sec:");
  if (!rate) return Status::Corruption("wrk printed no Requests/sec:\n" + run->output);
  result.requests_per_s = *rate;
  // "Non-2xx or 3xx responses: N" and "Socket errors: connect A, read B, write C, timeout D"
  // appear only when non-zero.
  if (auto non_2xx = NumberAfter(run->output, "Non-2xx or 3xx responses:")) {
    result.non_2xx = static_cast<std::uint64_t>(*non_2xx);
  }
  for (const char* kind : {"connect ", "read ", "write ", "timeout "}) {
    std::size_t errors_at = run->output.find("Socket errors:");
    if (errors_at == std::string::npos) break;
    if (auto n = NumberAfter(run->output.substr(errors_at), kind)) result.socket_errors += static_cast<std::uint64_t>(*n);
  }
  std::istringstream lines(run->output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == "Latency") {
      words >> result.latency_avg;
      break;
    }
  }
  return result;
}

}  // namespace gv::bench
