#include "metrics/metrics.h"

#include <prometheus/check_names.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace leadflow::metrics {
namespace {

prometheus::Labels ToLabels(const std::vector<std::string>& names,
                            const std::vector<std::string>& values) {
  prometheus::Labels labels;
  for (size_t i = 0; i < names.size(); ++i) {
    labels.emplace(names[i], values[i]);
  }
  return labels;
}

// prometheus-cpp 1.0 writes HELP text as it is given: escape it as the text format wants (a
// backslash and a newline), or a newline in a help string would break the exposition.
std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Counter::Counter() : owned_(std::make_unique<prometheus::Counter>()), counter_(owned_.get()) {}
Counter::Counter(prometheus::Counter* child) : counter_(child) {}
Counter::~Counter() = default;

void Counter::Increment(double amount) {
  if (!(amount > 0)) {
    return;
  }
  counter_->Increment(amount);
}

double Counter::Value() const { return counter_->Value(); }

Gauge::Gauge() : owned_(std::make_unique<prometheus::Gauge>()), gauge_(owned_.get()) {}
Gauge::Gauge(prometheus::Gauge* child) : gauge_(child) {}
Gauge::~Gauge() = default;
void Gauge::Set(double value) { gauge_->Set(value); }
void Gauge::Add(double amount) { gauge_->Increment(amount); }
double Gauge::Value() const { return gauge_->Value(); }

Histogram::Histogram(std::vector<double> bounds)
    : owned_(std::make_unique<prometheus::Histogram>(std::move(bounds))),
      histogram_(owned_.get()) {}
Histogram::Histogram(prometheus::Histogram* child) : histogram_(child) {}
Histogram::~Histogram() = default;

void Histogram::Observe(double value) { histogram_->Observe(value); }

Histogram::Snapshot Histogram::Take() const {
  const prometheus::ClientMetric collected = histogram_->Collect();
  Snapshot snapshot;
  for (const prometheus::ClientMetric::Bucket& bucket : collected.histogram.bucket) {
    if (!std::isinf(bucket.upper_bound)) {
      snapshot.bounds.push_back(bucket.upper_bound);
    }
    snapshot.cumulative_counts.push_back(bucket.cumulative_count);
  }
  snapshot.sum = collected.histogram.sample_sum;
  snapshot.count = collected.histogram.sample_count;
  return snapshot;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Registry() : registry_(std::make_shared<prometheus::Registry>()) {}
Registry::~Registry() = default;

Registry::Entry& Registry::Register(const std::string& name, Type type, const std::string& help,
                                    const std::vector<std::string>& label_names,
                                    const std::vector<double>& bounds,
                                    const std::function<std::shared_ptr<void>()>& make) {
  if (!prometheus::CheckMetricName(name)) {
    throw std::invalid_argument(absl::StrCat("invalid metric name '", name, "'"));
  }
  for (const std::string& label : label_names) {
    if (!prometheus::CheckLabelName(label) || label == "le") {
      throw std::invalid_argument(absl::StrCat("metric ", name, ": invalid label '", label, "'"));
    }
  }
  if (!std::is_sorted(bounds.begin(), bounds.end()) ||
      std::adjacent_find(bounds.begin(), bounds.end()) != bounds.end() ||
      std::any_of(bounds.begin(), bounds.end(), [](double b) { return !std::isfinite(b); })) {
    throw std::invalid_argument(
        absl::StrCat("metric ", name, ": buckets must be finite, distinct and ascending"));
  }
  std::lock_guard lock(mutex_);
  auto found = entries_.find(name);
  if (found != entries_.end()) {
    const Entry& existing = found->second;
    if (existing.type != type || existing.label_names != label_names || existing.bounds != bounds ||
        type == Type::kCallbackGauge) {
      throw std::invalid_argument(absl::StrCat("metric ", name, " registered twice, differently"));
    }
    return found->second;
  }
  Entry entry{type, help, label_names, bounds, make()};
  return entries_.emplace(name, std::move(entry)).first->second;
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      const std::vector<std::string>& label_names) {
  Entry& entry = Register(name, Type::kCounter, help, label_names, {}, [&] {
    auto& family =
        prometheus::BuildCounter().Name(name).Help(EscapeHelp(help)).Register(*registry_);
    return std::shared_ptr<Family<Counter>>(new Family<Counter>(
        name, label_names, [&family, label_names](const std::vector<std::string>& values) {
          return std::make_unique<Counter>(&family.Add(ToLabels(label_names, values)));
        }));
  });
  return *static_cast<Family<Counter>*>(entry.family.get());
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  const std::vector<std::string>& label_names) {
  Entry& entry = Register(name, Type::kGauge, help, label_names, {}, [&] {
    auto& family = prometheus::BuildGauge().Name(name).Help(EscapeHelp(help)).Register(*registry_);
    return std::shared_ptr<Family<Gauge>>(new Family<Gauge>(
        name, label_names, [&family, label_names](const std::vector<std::string>& values) {
          return std::make_unique<Gauge>(&family.Add(ToLabels(label_names, values)));
        }));
  });
  return *static_cast<Family<Gauge>*>(entry.family.get());
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          const std::vector<std::string>& label_names,
                                          std::vector<double> bounds) {
  Entry& entry = Register(name, Type::kHistogram, help, label_names, bounds, [&] {
    auto& family =
        prometheus::BuildHistogram().Name(name).Help(EscapeHelp(help)).Register(*registry_);
    return std::shared_ptr<Family<Histogram>>(new Family<Histogram>(
        name, label_names, [&family, label_names, bounds](const std::vector<std::string>& values) {
          return std::make_unique<Histogram>(
              &family.Add(ToLabels(label_names, values),
                          prometheus::Histogram::BucketBoundaries(bounds.begin(), bounds.end())));
        }));
  });
  return *static_cast<Family<Histogram>*>(entry.family.get());
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<double()> read) {
  Register(name, Type::kCallbackGauge, help, {}, {},
           [&] { return std::make_shared<std::function<double()>>(std::move(read)); });
}

std::string Registry::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    // prometheus-cpp has no callback gauge: read them now, as one-sample gauge families.
    std::lock_guard lock(mutex_);
    for (const auto& [name, entry] : entries_) {
      if (entry.type != Type::kCallbackGauge) {
        continue;
      }
      prometheus::MetricFamily family{
          name, EscapeHelp(entry.help), prometheus::MetricType::Gauge, {}};
      prometheus::ClientMetric sample;
      sample.gauge.value = (*static_cast<const std::function<double()>*>(entry.family.get()))();
      family.metric.push_back(std::move(sample));
      families.push_back(std::move(family));
    }
  }
  std::sort(families.begin(), families.end(),
            [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) {
              return a.name < b.name;
            });
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace leadflow::metrics
