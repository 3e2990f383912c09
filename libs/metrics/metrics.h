#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace leadflow::metrics {

/// A value that only goes up (requests served, events rejected…). Thread-safe, lock-free.
class Counter {
 public:
  /// `amount` must not be negative; a negative amount is ignored (a counter never goes down).
  void Increment(double amount = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// A value that goes up and down (requests in flight, queue length). Thread-safe, lock-free.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// Observations counted into fixed buckets (upper bounds, ascending), plus their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then one for +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  /// A consistent view (count equals the +Inf bucket).
  Snapshot Take() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last one is +Inf
  double sum_ = 0;
};

/// Default latency buckets, in seconds: 1 ms to 10 s.
std::vector<double> DefaultLatencyBuckets();

/// One metric name with a fixed list of label names; each distinct list of label values is
/// its own child, created on first use and kept for the life of the registry (so references
/// stay valid). Keep label values low-cardinality: a route pattern, a status code, a reason.
template <typename Metric>
class Family {
 public:
  /// The child for these label values, in the order of the label names given at
  /// registration. Throws std::invalid_argument when the count differs (a programming error).
  Metric& WithLabels(const std::vector<std::string>& values);

  const std::string& name() const { return name_; }

  /// Calls `visit(label_values, child)` for every child, in label-value order.
  template <typename Visit>
  void ForEach(Visit visit) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, child] : children_) {
      visit(values, *child);
    }
  }

 private:
  friend class Registry;
  Family(std::string name, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make)
      : name_(std::move(name)), label_names_(std::move(label_names)), make_(std::move(make)) {}

  const std::string name_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

/// All metrics of a process; renders them for `GET /metrics`.
///
/// Registration happens at start-up: an invalid name, or a name registered again with another
/// type, labels or buckets, throws std::invalid_argument (a programming error that a unit test
/// finds). Registering the same name with the same shape returns the existing family, so two
/// components may share a metric. Everything else is thread-safe.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              const std::vector<std::string>& label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          const std::vector<std::string>& label_names = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  const std::vector<std::string>& label_names,
                                  std::vector<double> bounds);
  /// A gauge read when the registry is rendered (e.g. a producer's queue length). `read` must
  /// be thread-safe and stay callable for the life of the registry.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<double()> read);

  /// Prometheus text exposition format 0.0.4, families in name order.
  std::string Render() const;

  /// The content type of Render()'s output.
  static constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram, kCallbackGauge };
  struct Entry {
    Type type;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> bounds;
    std::shared_ptr<void> family;  // Family<Counter|Gauge|Histogram> or std::function<double()>
  };
  Entry& Register(const std::string& name, Type type, const std::string& help,
                  const std::vector<std::string>& label_names, const std::vector<double>& bounds,
                  const std::function<std::shared_ptr<void>()>& make);

  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

/// Escapes a label value for the text format: backslash, double quote and newline.
std::string EscapeLabelValue(const std::string& value);

/// Formats a sample value the way Prometheus parses it (+Inf, -Inf, NaN, shortest decimal).
std::string FormatValue(double value);

// Implementation of the template.

template <typename Metric>
Metric& Family<Metric>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + ": expected " +
                                std::to_string(label_names_.size()) + " label values, got " +
                                std::to_string(values.size()));
  }
  std::lock_guard lock(mutex_);
  auto& child = children_[values];
  if (!child) {
    child = make_();
  }
  return *child;
}

}  // namespace leadflow::metrics
