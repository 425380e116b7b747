#include "myelin/base/latency_recorder.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace myelin {

void LatencyRecorder::merge(const LatencyRecorder& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
}

LatencySummary LatencyRecorder::summarize() const { return summarize_samples(samples_); }

double percentile_sorted(std::span<const double> sorted, double p) noexcept {
  if (sorted.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  const auto n = static_cast<double>(sorted.size());
  // Nearest rank: the smallest sample with at least p% of samples <= it.
  // The small epsilon keeps e.g. 0.95 * 100 from landing on rank 96 through
  // floating-point error.
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

LatencySummary summarize_samples(std::span<const double> samples) {
  LatencySummary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());

  const auto n = static_cast<double>(sorted.size());
  s.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / n;
  if (sorted.size() > 1) {
    double sq = 0;
    for (double v : sorted) sq += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(sq / (n - 1));
  }
  s.min = sorted.front();
  s.max = sorted.back();
  s.p50 = percentile_sorted(sorted, 50);
  s.p95 = percentile_sorted(sorted, 95);
  s.p99 = percentile_sorted(sorted, 99);
  s.p999 = percentile_sorted(sorted, 99.9);

  // Distribution-free CI of the median: ranks n/2 -+ 1.96 * sqrt(n) / 2
  // (normal approximation of binomial(n, 1/2)), clamped to the sample.
  const double half_width = 1.959964 * std::sqrt(n) / 2.0;
  const auto lo = static_cast<long long>(std::floor(n / 2.0 - half_width));
  const auto hi = static_cast<long long>(std::ceil(n / 2.0 + half_width));
  const auto last = static_cast<long long>(sorted.size()) - 1;
  s.median_ci_low = sorted[static_cast<std::size_t>(std::clamp(lo, 0LL, last))];
  s.median_ci_high = sorted[static_cast<std::size_t>(std::clamp(hi, 0LL, last))];
  return s;
}

}  // namespace myelin
