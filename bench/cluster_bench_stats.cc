// Statistics and Prometheus text parsing for cluster_bench.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "bench/cluster_bench.h"

namespace gv::bench {

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Summary Summarize(std::vector<double> values) {
  Summary s;
  s.count = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.median = Median(values);
  // Nearest rank: the smallest value with at least 99% of the samples at or below it.
  std::size_t rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(values.size())));
  s.p99 = values[std::max<std::size_t>(rank, 1) - 1];
  s.max = values.back();
  return s;
}

namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}

// Parses `{a="x",b="y"}` starting at text[pos] == '{'; leaves pos after '}'.
bool ParseLabels(const std::string& text, std::size_t& pos, std::map<std::string, std::string>& labels) {
  ++pos;  // '{'
  while (pos < text.size() && text[pos] != '}') {
    std::size_t name_start = pos;
    while (pos < text.size() && IsNameChar(text[pos])) ++pos;
    std::string name = text.substr(name_start, pos - name_start);
    if (name.empty() || pos + 1 >= text.size() || text[pos] != '=' || text[pos + 1] != '"') return false;
    pos += 2;
    std::string value;
    while (pos < text.size() && text[pos] != '"') {
      if (text[pos] == '\\' && pos + 1 < text.size()) {
        char escaped = text[pos + 1];
        value.push_back(escaped == 'n' ? '\n' : escaped);
        pos += 2;
      } else {
        value.push_back(text[pos++]);
      }
    }
    if (pos >= text.size()) return false;
    ++pos;  // closing quote
    labels[name] = value;
    if (pos < text.size() && text[pos] == ',') ++pos;
  }
  if (pos >= text.size()) return false;
  ++pos;  // '}'
  return true;
}

}  // namespace

Result<std::vector<MetricSample>> ParsePrometheusText(const std::string& text) {
  std::vector<MetricSample> samples;
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = text.size();
    std::string line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (line.empty() || line[0] == '#') continue;
    MetricSample sample;
    std::size_t pos = 0;
    while (pos < line.size() && IsNameChar(line[pos])) ++pos;
    sample.name = line.substr(0, pos);
    if (sample.name.empty()) return Status::Corruption("metrics: bad line '" + line + "'");
    if (pos < line.size() && line[pos] == '{' && !ParseLabels(line, pos, sample.labels)) {
      return Status::Corruption("metrics: bad labels in '" + line + "'");
    }
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::size_t value_end = line.find(' ', pos);  // an optional timestamp may follow
    std::string value_text = line.substr(pos, value_end == std::string::npos ? std::string::npos : value_end - pos);
    char* end = nullptr;
    sample.value = std::strtod(value_text.c_str(), &end);
    if (value_text.empty() || end != value_text.c_str() + value_text.size()) {
      return Status::Corruption("metrics: bad value in '" + line + "'");
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

double SumSamples(const std::vector<MetricSample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const MetricSample& s : samples) {
    if (s.name != name) continue;
    bool matches = true;
    for (const auto& [label, value] : match) {
      auto it = s.labels.find(label);
      if (it == s.labels.end() || it->second != value) matches = false;
    }
    if (matches) sum += s.value;
  }
  return sum;
}

bool HasMetric(const std::vector<MetricSample>& samples, const std::string& name) {
  return std::any_of(samples.begin(), samples.end(), [&](const MetricSample& s) { return s.name == name; });
}

}  // namespace gv::bench
