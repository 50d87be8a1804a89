#include "daemon/prometheus.h"

#include <doctest/doctest.h>

using namespace gv::daemon;

TEST_CASE("prometheus text: families, labels, escaping, values") {
  PrometheusWriter w;
  w.Counter("grapevine_wal_appends_total", "WAL appends.", 42);
  w.Family("grapevine_http_requests_total", PrometheusWriter::Type::kCounter, "HTTP answers by status.")
      .Sample(10, {{"status", "200"}})
      .Sample(2, {{"status", "404"}});
  w.Family("grapevine_wal_fsync_seconds", PrometheusWriter::Type::kSummary, "fdatasync latency.\nTwo lines.")
      .SampleWithSuffix("_sum", 0.125)
      .SampleWithSuffix("_count", 8);
  w.Gauge("grapevine_node_info", "Node identity.", 1, {{"name", "a\"b\\c\nd"}});
  CHECK(w.text() ==
        "# HELP grapevine_wal_appends_total WAL appends.\n"
        "# TYPE grapevine_wal_appends_total counter\n"
        "grapevine_wal_appends_total 42\n"
        "# HELP grapevine_http_requests_total HTTP answers by status.\n"
        "# TYPE grapevine_http_requests_total counter\n"
        "grapevine_http_requests_total{status=\"200\"} 10\n"
        "grapevine_http_requests_total{status=\"404\"} 2\n"
        "# HELP grapevine_wal_fsync_seconds fdatasync latency.\\nTwo lines.\n"
        "# TYPE grapevine_wal_fsync_seconds summary\n"
        "grapevine_wal_fsync_seconds_sum 0.125\n"
        "grapevine_wal_fsync_seconds_count 8\n"
        "# HELP grapevine_node_info Node identity.\n"
        "# TYPE grapevine_node_info gauge\n"
        "grapevine_node_info{name=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST_CASE("prometheus names follow the grammar") {
  CHECK(IsValidMetricName("grapevine_x:y_total"));
  CHECK_FALSE(IsValidMetricName("1abc"));
  CHECK_FALSE(IsValidMetricName("a-b"));
  CHECK_FALSE(IsValidMetricName(""));
  CHECK(IsValidLabelName("status"));
  CHECK_FALSE(IsValidLabelName("__reserved"));
  CHECK_FALSE(IsValidLabelName("a:b"));
}
