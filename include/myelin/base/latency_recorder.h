// LatencyRecorder: exact percentiles from sorted samples.
//
// Every benchmark in myelin reports through this type so that all figures
// share one definition. Percentiles use the nearest-rank method on the sorted
// samples: pXX is the sample at 1-based rank ceil(XX/100 * n). So p50 <= p95
// <= p99 <= p99.9 <= max always holds, which the seed reports did not
// guarantee. The median's 95% confidence interval is distribution-free (order
// statistics of a binomial(n, 1/2)), so it needs no normality assumption.
//
// record() never allocates when the expected sample count was reserved, so it
// can sit inside a timed loop. One recorder belongs to one thread; merge()
// per-thread recorders after the threads have joined.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "myelin/base/clock.h"

namespace myelin {

struct LatencySummary {
  std::size_t count = 0;
  double mean = 0;
  double stddev = 0;  // sample standard deviation (n - 1)
  double min = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
  // 95% confidence interval of the median; equal to [min, max] for tiny n.
  double median_ci_low = 0;
  double median_ci_high = 0;
};

class LatencyRecorder {
 public:
  // Reserves room for `expected` samples so record() does not allocate.
  explicit LatencyRecorder(std::size_t expected = 0) { samples_.reserve(expected); }

  void record(Nanos latency) { samples_.push_back(static_cast<double>(latency.count())); }
  // A sample in any unit (ns/op, MB/s, ...): the summary is in the same unit.
  void record_value(double value) { samples_.push_back(value); }
  void record_since(MonoTime start) { record(mono_now() - start); }

  void merge(const LatencyRecorder& other);
  void clear() noexcept { samples_.clear(); }

  [[nodiscard]] std::size_t count() const noexcept { return samples_.size(); }
  [[nodiscard]] std::span<const double> samples() const noexcept { return samples_; }

  // Sorts a copy of the samples; the recorder itself is unchanged.
  [[nodiscard]] LatencySummary summarize() const;

 private:
  std::vector<double> samples_;
};

// Nearest-rank percentile of already sorted samples; p in [0, 100].
// Returns 0 for an empty span.
double percentile_sorted(std::span<const double> sorted, double p) noexcept;

// Summary of arbitrary samples (sorted internally).
LatencySummary summarize_samples(std::span<const double> samples);

}  // namespace myelin
