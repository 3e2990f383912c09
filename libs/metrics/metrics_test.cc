#include "metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <cmath>
#include <limits>
#include <thread>

namespace leadflow::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Protects: the exposition format Prometheus scrapes — HELP/TYPE lines, labels, values.
TEST(MetricsTest, RendersCountersAndGaugesInTextFormat) {
  Registry registry;
  auto& requests =
      registry.AddCounter("http_requests_total", "Requests served.", {"route", "code"});
  requests.WithLabels({"/a", "200"}).Increment();
  requests.WithLabels({"/a", "200"}).Increment(2);
  requests.WithLabels({"/b", "404"}).Increment();
  registry.AddGauge("in_flight", "Requests in flight.").WithLabels({}).Set(3);
  std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP http_requests_total Requests served.\n"
                              "# TYPE http_requests_total counter\n"));
  // prometheus-cpp writes labels in name order.
  EXPECT_THAT(text, HasSubstr("http_requests_total{code=\"200\",route=\"/a\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("http_requests_total{code=\"404\",route=\"/b\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE in_flight gauge\nin_flight 3\n"));
}

// Protects: label values with quotes, backslashes and newlines cannot break the format.
TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry.AddCounter("c_total", "line one\nback\\slash", {"reason"})
      .WithLabels({"say \"hi\"\\\n"})
      .Increment();
  std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP c_total line one\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("c_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 1\n"));
}

// Protects: histogram buckets are cumulative, end with +Inf, and _count equals the +Inf bucket.
TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry registry;
  auto& latency = registry.AddHistogram("latency_seconds", "Latency.", {"route"}, {0.1, 1});
  auto& child = latency.WithLabels({"/x"});
  child.Observe(0.05);
  child.Observe(0.1);  // upper bounds are inclusive
  child.Observe(0.5);
  child.Observe(7);
  std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_sum{route=\"/x\"} 7.65\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_count{route=\"/x\"} 4\n"));
}

// Protects: programming errors in registration are caught at start-up, not at scrape time.
TEST(MetricsTest, RejectsInvalidRegistrations) {
  Registry registry;
  EXPECT_THROW(registry.AddCounter("9starts_with_digit", "x"), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("has-dash", "x"), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("ok_total", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(registry.AddHistogram("h", "x", {}, {1, 0.5}), std::invalid_argument);
  auto& counter = registry.AddCounter("ok_total", "x", {"a"});
  EXPECT_EQ(&counter, &registry.AddCounter("ok_total", "x", {"a"}));  // same shape: shared
  EXPECT_THROW(registry.AddGauge("ok_total", "x", {"a"}), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("ok_total", "x", {"b"}), std::invalid_argument);
  EXPECT_THROW(counter.WithLabels({"1", "2"}), std::invalid_argument);
}

// Protects: counters never decrease and special float values render as Prometheus reads them.
TEST(MetricsTest, CounterIgnoresNegativeAndValuesFormat) {
  Counter counter;
  counter.Increment(-5);
  counter.Increment(std::nan(""));
  EXPECT_EQ(counter.Value(), 0);
  Registry registry;
  registry.AddGauge("g_inf", "x").WithLabels({}).Set(std::numeric_limits<double>::infinity());
  registry.AddGauge("g_minus_inf", "x")
      .WithLabels({})
      .Set(-std::numeric_limits<double>::infinity());
  registry.AddGauge("g_quarter", "x").WithLabels({}).Set(0.25);
  registry.AddGauge("g_whole", "x").WithLabels({}).Set(42);
  std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("g_inf +Inf\n"));
  EXPECT_THAT(text, HasSubstr("g_minus_inf -Inf\n"));
  EXPECT_THAT(text, HasSubstr("g_quarter 0.25\n"));
  EXPECT_THAT(text, HasSubstr("g_whole 42\n"));
}

// Protects: what the services see of the registry is prometheus-cpp's: a metric registered
// through this API is in the prometheus-cpp registry's collection, with its type.
TEST(MetricsTest, BuiltOnPrometheusCppRegistry) {
  Registry registry;
  registry.AddCounter("events_total", "Events.").WithLabels({}).Increment(5);
  std::vector<prometheus::MetricFamily> families = registry.prometheus_registry().Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "events_total");
  EXPECT_EQ(families[0].type, prometheus::MetricType::Counter);
  ASSERT_EQ(families[0].metric.size(), 1u);
  EXPECT_EQ(families[0].metric[0].counter.value, 5);
}

// Protects: callback gauges are read at render time.
TEST(MetricsTest, CallbackGaugeReadAtRender) {
  Registry registry;
  double queue = 1;
  registry.AddCallbackGauge("queue_length", "Queued.", [&] { return queue; });
  EXPECT_THAT(registry.Render(), HasSubstr("queue_length 1\n"));
  queue = 5;
  EXPECT_THAT(registry.Render(), HasSubstr("queue_length 5\n"));
  EXPECT_THAT(registry.Render(), Not(HasSubstr("queue_length 1\n")));
}

// Protects: concurrent increments from many threads are all counted.
TEST(MetricsTest, ConcurrentIncrementsAreCounted) {
  Registry registry;
  auto& family = registry.AddCounter("n_total", "n", {"t"});
  auto& histogram = registry.AddHistogram("h", "h", {}, {1}).WithLabels({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        family.WithLabels({std::to_string(i % 3)}).Increment();
        histogram.Observe(0.5);
        if (i % 1000 == 0) {
          registry.Render();
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  double total = 0;
  family.ForEach([&](const std::vector<std::string>&, const Counter& c) { total += c.Value(); });
  EXPECT_EQ(total, 40000);
  EXPECT_EQ(histogram.Take().count, 40000u);
}

}  // namespace
}  // namespace leadflow::metrics
