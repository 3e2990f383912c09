#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

// prometheus-cpp's headers stay out of this widely included one.
namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace leadflow::metrics {

/// A value that only goes up (requests served, events rejected…). Thread-safe.
/// A prometheus-cpp counter: a child of a registry's family, or a standalone one.
class Counter {
 public:
  Counter();
  explicit Counter(prometheus::Counter* child);
  ~Counter();
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  /// `amount` must be positive; a negative or NaN amount is ignored (a counter never goes down).
  void Increment(double amount = 1.0);
  double Value() const;

 private:
  std::unique_ptr<prometheus::Counter> owned_;
  prometheus::Counter* counter_;
};

/// A value that goes up and down (requests in flight, queue length). Thread-safe.
class Gauge {
 public:
  Gauge();
  explicit Gauge(prometheus::Gauge* child);
  ~Gauge();
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value);
  void Add(double amount);
  double Value() const;

 private:
  std::unique_ptr<prometheus::Gauge> owned_;
  prometheus::Gauge* gauge_;
};

/// Observations counted into fixed buckets (upper bounds, ascending), plus their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  explicit Histogram(prometheus::Histogram* child);
  ~Histogram();
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

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
  std::unique_ptr<prometheus::Histogram> owned_;
  prometheus::Histogram* histogram_;
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
  using Make = std::function<std::unique_ptr<Metric>(const std::vector<std::string>& values)>;
  Family(std::string name, std::vector<std::string> label_names, Make make)
      : name_(std::move(name)), label_names_(std::move(label_names)), make_(std::move(make)) {}

  const std::string name_;
  const std::vector<std::string> label_names_;
  const Make make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

/// All metrics of a process: a prometheus-cpp registry, rendered by its text serializer for
/// `GET /metrics`.
///
/// Registration happens at start-up: an invalid name, or a name registered again with another
/// type, labels or buckets, throws std::invalid_argument (a programming error that a unit test
/// finds). Registering the same name with the same shape returns the existing family, so two
/// components may share a metric. Everything else is thread-safe.
class Registry {
 public:
  Registry();
  ~Registry();
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

  /// The underlying prometheus-cpp registry, for code that uses prometheus-cpp directly.
  prometheus::Registry& prometheus_registry() { return *registry_; }

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

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

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
    child = make_(values);
  }
  return *child;
}

}  // namespace leadflow::metrics
