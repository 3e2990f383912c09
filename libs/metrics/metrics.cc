#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace leadflow::metrics {
namespace {

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool IsNameChar(char c, bool allow_colon) {
  return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9');
}

bool ValidName(const std::string& name, bool allow_colon) {
  if (name.empty() || !IsNameStart(name[0], allow_colon)) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [&](char c) { return IsNameChar(c, allow_colon); });
}

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

// `{a="1",b="2"}`, with an optional extra label (a histogram's `le`); empty when no labels.
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra_name = "", const std::string& extra_value = "") {
  if (names.empty() && extra_name.empty()) {
    return "";
  }
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    absl::StrAppend(&out, names.empty() ? "" : ",", extra_name, "=\"", extra_value, "\"");
  }
  out += "}";
  return out;
}

}  // namespace

void Counter::Increment(double amount) {
  if (!(amount > 0)) {
    return;
  }
  value_.fetch_add(amount, std::memory_order_relaxed);
}

void Gauge::Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot snapshot;
  snapshot.bounds = bounds_;
  std::lock_guard lock(mutex_);
  uint64_t running = 0;
  for (uint64_t count : counts_) {
    running += count;
    snapshot.cumulative_counts.push_back(running);
  }
  snapshot.count = running;
  snapshot.sum = sum_;
  return snapshot;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  // Prefer the shortest text that reads back as the same double.
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof(shorter), "%.*g", precision, value);
    if (std::strtod(shorter, nullptr) == value) {
      return shorter;
    }
  }
  return buffer;
}

Registry::Entry& Registry::Register(const std::string& name, Type type, const std::string& help,
                                    const std::vector<std::string>& label_names,
                                    const std::vector<double>& bounds,
                                    const std::function<std::shared_ptr<void>()>& make) {
  if (!ValidName(name, /*allow_colon=*/true)) {
    throw std::invalid_argument(absl::StrCat("invalid metric name '", name, "'"));
  }
  for (const std::string& label : label_names) {
    if (!ValidName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0 || label == "le") {
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
    return std::shared_ptr<Family<Counter>>(
        new Family<Counter>(name, label_names, [] { return std::make_unique<Counter>(); }));
  });
  return *static_cast<Family<Counter>*>(entry.family.get());
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  const std::vector<std::string>& label_names) {
  Entry& entry = Register(name, Type::kGauge, help, label_names, {}, [&] {
    return std::shared_ptr<Family<Gauge>>(
        new Family<Gauge>(name, label_names, [] { return std::make_unique<Gauge>(); }));
  });
  return *static_cast<Family<Gauge>*>(entry.family.get());
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          const std::vector<std::string>& label_names,
                                          std::vector<double> bounds) {
  Entry& entry = Register(name, Type::kHistogram, help, label_names, bounds, [&] {
    return std::shared_ptr<Family<Histogram>>(new Family<Histogram>(
        name, label_names, [bounds] { return std::make_unique<Histogram>(bounds); }));
  });
  return *static_cast<Family<Histogram>*>(entry.family.get());
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<double()> read) {
  Register(name, Type::kCallbackGauge, help, {}, {},
           [&] { return std::make_shared<std::function<double()>>(std::move(read)); });
}

std::string Registry::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, entry] : entries_) {
    const char* type_name = entry.type == Type::kCounter     ? "counter"
                            : entry.type == Type::kHistogram ? "histogram"
                                                             : "gauge";
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(entry.help), "\n# TYPE ", name, " ",
                    type_name, "\n");
    switch (entry.type) {
      case Type::kCounter:
        static_cast<const Family<Counter>*>(entry.family.get())
            ->ForEach([&](const std::vector<std::string>& values, const Counter& counter) {
              absl::StrAppend(&out, name, LabelText(entry.label_names, values), " ",
                              FormatValue(counter.Value()), "\n");
            });
        break;
      case Type::kGauge:
        static_cast<const Family<Gauge>*>(entry.family.get())
            ->ForEach([&](const std::vector<std::string>& values, const Gauge& gauge) {
              absl::StrAppend(&out, name, LabelText(entry.label_names, values), " ",
                              FormatValue(gauge.Value()), "\n");
            });
        break;
      case Type::kHistogram:
        static_cast<const Family<Histogram>*>(entry.family.get())
            ->ForEach([&](const std::vector<std::string>& values, const Histogram& histogram) {
              Histogram::Snapshot snapshot = histogram.Take();
              for (size_t i = 0; i <= snapshot.bounds.size(); ++i) {
                std::string le =
                    i < snapshot.bounds.size() ? FormatValue(snapshot.bounds[i]) : "+Inf";
                absl::StrAppend(&out, name, "_bucket",
                                LabelText(entry.label_names, values, "le", le), " ",
                                snapshot.cumulative_counts[i], "\n");
              }
              absl::StrAppend(&out, name, "_sum", LabelText(entry.label_names, values), " ",
                              FormatValue(snapshot.sum), "\n");
              absl::StrAppend(&out, name, "_count", LabelText(entry.label_names, values), " ",
                              snapshot.count, "\n");
            });
        break;
      case Type::kCallbackGauge:
        absl::StrAppend(
            &out, name, " ",
            FormatValue((*static_cast<const std::function<double()>*>(entry.family.get()))()),
            "\n");
        break;
    }
  }
  return out;
}

}  // namespace leadflow::metrics
