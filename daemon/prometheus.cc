#include "daemon/prometheus.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace gv::daemon {
namespace {

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool IsNameChar(char c, bool allow_colon) { return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9'); }

void Require(bool condition, const char* what, std::string_view name) {
  if (!condition) {
    std::fprintf(stderr, "prometheus: %s: '%.*s'\n", what, static_cast<int>(name.size()), name.data());
    std::abort();
  }
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", value);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", value);
  return buf;
}

const char* TypeName(PrometheusWriter::Type type) {
  switch (type) {
    case PrometheusWriter::Type::kCounter: return "counter";
    case PrometheusWriter::Type::kGauge: return "gauge";
    case PrometheusWriter::Type::kSummary: return "summary";
    case PrometheusWriter::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0], true)) return false;
  for (char c : name) {
    if (!IsNameChar(c, true)) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0], false) || name.substr(0, 2) == "__") return false;
  for (char c : name) {
    if (!IsNameChar(c, false)) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

PrometheusWriter::FamilyWriter PrometheusWriter::Family(std::string_view name, Type type, std::string_view help) {
  Require(IsValidMetricName(name), "invalid metric name", name);
  Require(families_.find(name) == families_.end(), "metric family written twice", name);
  families_.emplace(name);
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += EscapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += TypeName(type);
  out_ += '\n';
  return FamilyWriter(this, std::string(name));
}

void PrometheusWriter::WriteSample(std::string_view name, std::string_view suffix, double value,
                                   const Labels& labels) {
  out_ += name;
  out_ += suffix;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      Require(IsValidLabelName(label), "invalid label name", label);
      if (!first) out_ += ',';
      first = false;
      out_ += label;
      out_ += "=\"";
      out_ += EscapeLabelValue(label_value);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

PrometheusWriter::FamilyWriter& PrometheusWriter::FamilyWriter::Sample(double value, const Labels& labels) {
  writer_->WriteSample(name_, "", value, labels);
  return *this;
}

PrometheusWriter::FamilyWriter& PrometheusWriter::FamilyWriter::SampleWithSuffix(std::string_view suffix,
                                                                                 double value, const Labels& labels) {
  writer_->WriteSample(name_, suffix, value, labels);
  return *this;
}

void PrometheusWriter::Counter(std::string_view name, std::string_view help, double value, const Labels& labels) {
  Family(name, Type::kCounter, help).Sample(value, labels);
}

void PrometheusWriter::Gauge(std::string_view name, std::string_view help, double value, const Labels& labels) {
  Family(name, Type::kGauge, help).Sample(value, labels);
}

}  // namespace gv::daemon
