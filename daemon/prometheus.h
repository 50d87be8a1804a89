// Prometheus text exposition (format 0.0.4) for GET /metrics.
//
// No global registry: at each scrape the agent asks every component for its
// figures and writes them here. A family (HELP and TYPE once, then its
// samples) must be written in one go; Family() returns an object that adds
// samples to the family just opened. Metric and label names are checked
// against the format's grammar (a bad name is a programming error: abort);
// label values are escaped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gv::daemon {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusWriter {
 public:
  enum class Type { kCounter, kGauge, kSummary, kHistogram };

  class FamilyWriter {
   public:
    FamilyWriter& Sample(double value, const Labels& labels = {});
    // For kSummary / kHistogram: a sample with a suffix ("_sum", "_count", "_bucket").
    FamilyWriter& SampleWithSuffix(std::string_view suffix, double value, const Labels& labels = {});

   private:
    friend class PrometheusWriter;
    FamilyWriter(PrometheusWriter* writer, std::string name) : writer_(writer), name_(std::move(name)) {}
    PrometheusWriter* writer_;
    std::string name_;
  };

  // Starts a family. `name` must be new in this exposition.
  FamilyWriter Family(std::string_view name, Type type, std::string_view help);

  // Shorthands for single-sample families.
  void Counter(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  void Gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});

  const std::string& text() const { return out_; }
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void WriteSample(std::string_view name, std::string_view suffix, double value, const Labels& labels);
  std::string out_;
  std::set<std::string, std::less<>> families_;
};

bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
std::string EscapeLabelValue(std::string_view value);

}  // namespace gv::daemon
