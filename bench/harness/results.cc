#include "bench/harness/results.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "myelin/perf/format.h"

namespace myelin::bench::harness {

Result<Samples> Samples::of(std::vector<double> values) {
  if (values.empty()) return invalid_argument("samples: no samples");
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i]))
      return invalid_argument("samples: sample " + std::to_string(i) + " is NaN");
  }
  std::sort(values.begin(), values.end());
  return Samples(std::move(values));
}

Result<Samples> Samples::of(const LatencyRecorder& recorder) {
  const auto s = recorder.samples();
  return of(std::vector<double>(s.begin(), s.end()));
}

double Samples::percentile(double p) const noexcept { return percentile_sorted(sorted_, p); }

double Samples::mean() const noexcept {
  return std::accumulate(sorted_.begin(), sorted_.end(), 0.0) / static_cast<double>(sorted_.size());
}

Value Value::fixed(double v, int decimals, std::string_view suffix) {
  return num(v, perf::fixed(v, decimals) + std::string(suffix));
}

Value Value::percent(double v, int decimals) { return fixed(v, decimals, "%"); }

Value Value::count(double v) { return num(v, perf::group_int(v)); }

std::string_view to_string(Better b) noexcept {
  return b == Better::kLower ? "lower is better" : "higher is better";
}

Verdict judge(const Target& target, double measured) {
  Verdict v;
  if (std::isnan(measured)) {
    v.text = "not measured";
    return v;
  }
  const double good_side =
      target.better == Better::kLower ? target.goal - measured : measured - target.goal;
  v.met = good_side >= 0;
  v.margin = target.goal != 0 ? good_side / std::abs(target.goal) : 0;
  if (v.met) {
    v.text = "met";
  } else if (target.goal != 0) {
    v.text = "missed by " + perf::fixed(-v.margin * 100, 1) + "%";
  } else {
    v.text = "missed (" + perf::param(measured, 0) + " " + target.unit + ")";
  }
  return v;
}

}  // namespace myelin::bench::harness
