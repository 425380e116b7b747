#include "myelin/perf/estimator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "myelin/perf/format.h"

namespace myelin::perf {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Status bad(std::string_view flag, const std::string& why) {
  return invalid_argument("--" + std::string(flag) + ": " + why);
}

Status check_time(std::string_view flag, double v) {
  if (!std::isfinite(v)) return bad(flag, "must be a finite number of microseconds");
  if (v < 0) return bad(flag, "must be >= 0 microseconds, got " + param(v, 1));
  return {};
}

Status check_positive(std::string_view flag, const std::optional<double>& v) {
  if (!v) return {};
  if (!std::isfinite(*v) || *v <= 0)
    return bad(flag, "must be a positive number, got " + param(*v, 0));
  return {};
}

double min_cap(const EstimatorParams& p) {
  double cap = kInf;
  for (const auto& c : {p.io_cap, p.nic_cap, p.app_cap}) {
    if (c) cap = std::min(cap, *c);
  }
  return cap;
}

double fixed_cost_us(const EstimatorParams& p) {
  return p.t_control_us + p.t_bridge_us + p.t_persist_us;
}

}  // namespace

std::string_view to_string(Scaling s) noexcept {
  switch (s) {
    case Scaling::kAmdahl:
      return "amdahl";
    case Scaling::kSplit:
      return "split";
  }
  return "unknown";
}

std::optional<Scaling> parse_scaling(std::string_view name) noexcept {
  if (name == "amdahl") return Scaling::kAmdahl;
  if (name == "split") return Scaling::kSplit;
  return std::nullopt;
}

Status EstimatorParams::validate() const {
  if (cores < 1) return bad("cores", "must be >= 1, got " + std::to_string(cores));
  if (!std::isfinite(parallel_fraction) || parallel_fraction < 0 || parallel_fraction > 1) {
    return bad("parallel-fraction", "must be in [0, 1], got " + param(parallel_fraction, 2));
  }
  MYELIN_RETURN_IF_ERROR(check_time("t-control-us", t_control_us));
  MYELIN_RETURN_IF_ERROR(check_time("t-bridge-us", t_bridge_us));
  MYELIN_RETURN_IF_ERROR(check_time("t-persist-us", t_persist_us));
  MYELIN_RETURN_IF_ERROR(check_time("t-data-us", t_data_us));
  MYELIN_RETURN_IF_ERROR(check_positive("io-cap", io_cap));
  MYELIN_RETURN_IF_ERROR(check_positive("nic-cap", nic_cap));
  MYELIN_RETURN_IF_ERROR(check_positive("app-cap", app_cap));
  if (t_data_us == 0 && !io_cap && !nic_cap && !app_cap) {
    return bad("t-data-us",
               "0 makes throughput unbounded; give a cap (--io-cap, --nic-cap or --app-cap)");
  }
  if (!std::isfinite(latency_budget_us) || latency_budget_us < 0) {
    return bad("latency-budget-us",
               "must be >= 0 microseconds, got " + param(latency_budget_us, 1));
  }
  MYELIN_RETURN_IF_ERROR(check_positive("target-ops", target_ops));
  MYELIN_RETURN_IF_ERROR(check_positive("wait-budget-us", wait_budget_us));
  MYELIN_RETURN_IF_ERROR(check_positive("offered-load", offered_load));
  if (batch_min < 1) return bad("batch-min", "must be >= 1, got 0");
  if (batch_max > kMaxBatch) {
    return bad("batch-max",
               "must be <= " + std::to_string(kMaxBatch) + ", got " + std::to_string(batch_max));
  }
  if (batch_min > batch_max) {
    return bad("batch-min", "must be <= --batch-max (" + std::to_string(batch_max) + "), got " +
                                std::to_string(batch_min));
  }
  return {};
}

double amdahl_speedup(int cores, double parallel_fraction) noexcept {
  if (cores <= 1) return 1.0;
  const double p = std::clamp(parallel_fraction, 0.0, 1.0);
  return 1.0 / ((1.0 - p) + p / static_cast<double>(cores));
}

std::vector<std::uint64_t> candidate_batches(const EstimatorParams& p) {
  std::vector<std::uint64_t> out{p.batch_min, p.batch_max};
  if (p.powers_of_two) {
    for (std::uint64_t n = 1; n <= p.batch_max && n != 0; n <<= 1) {
      if (n > p.batch_min && n < p.batch_max) out.push_back(n);
    }
  }
  if (p.include_1000 && p.batch_min <= 1000 && 1000 <= p.batch_max) out.push_back(1000);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

BatchMetrics evaluate_batch(const EstimatorParams& p, double speedup, std::uint64_t n,
                            double lambda) {
  BatchMetrics m;
  m.n = n;
  const double nd = static_cast<double>(n);
  const double fixed = fixed_cost_us(p);
  m.t_batch_us = fixed + nd * p.t_data_us;
  m.amortised_us = m.t_batch_us / nd;
  m.r1 = m.t_batch_us > 0 ? 1e6 * nd / m.t_batch_us : kInf;

  double scaled = 0;
  if (p.scaling == Scaling::kAmdahl) {
    m.service_us = m.t_batch_us;
    scaled = m.r1 * speedup;
  } else {
    m.service_us = fixed + nd * p.t_data_us / speedup;
    scaled = m.service_us > 0 ? 1e6 * nd / m.service_us : kInf;
  }
  const double cap = min_cap(p);
  m.capped = cap < scaled;
  m.r = std::min(scaled, cap);

  m.keeps_up = lambda <= m.r;
  if (m.keeps_up) {
    m.fill_max_us = (nd - 1) / lambda * 1e6;
    m.fill_avg_us = m.fill_max_us / 2;
    m.wait_max_us = m.fill_max_us + m.service_us;
    m.wait_avg_us = m.fill_avg_us + m.service_us;
  } else {
    m.fill_max_us = m.fill_avg_us = m.wait_max_us = m.wait_avg_us = kInf;
  }

  m.within_latency_budget = m.amortised_us <= p.latency_budget_us;
  m.meets_target = !p.target_ops || m.r >= *p.target_ops;
  // An explicit offered load the batch cannot keep up with is infeasible; the
  // default load is derived from the candidates themselves, so it is not.
  const bool must_keep_up = p.offered_load.has_value() || p.wait_budget_us.has_value();
  m.within_wait_budget =
      (!must_keep_up || m.keeps_up) && (!p.wait_budget_us || m.wait_max_us <= *p.wait_budget_us);
  return m;
}

Result<Estimate> estimate(const EstimatorParams& p) {
  MYELIN_RETURN_IF_ERROR(p.validate());
  Estimate e;
  e.params = p;
  e.speedup = amdahl_speedup(p.cores, p.parallel_fraction);
  e.ceiling_1core = p.t_data_us > 0 ? 1e6 / p.t_data_us : kInf;
  e.ceiling_scaled = std::min(e.ceiling_1core * e.speedup, min_cap(p));

  const std::vector<std::uint64_t> batches = candidate_batches(p);

  // The offered load: given, or the best throughput under the seed's own
  // constraints (amortised latency and target), else the highest throughput.
  if (p.offered_load) {
    e.offered_load = *p.offered_load;
    e.offered_load_is_default = false;
  } else {
    double best_r = -1;
    double any_r = -1;
    for (std::uint64_t n : batches) {
      const BatchMetrics m = evaluate_batch(p, e.speedup, n, kInf);
      any_r = std::max(any_r, m.r);
      if (m.within_latency_budget && m.meets_target) best_r = std::max(best_r, m.r);
    }
    e.offered_load = best_r > 0 ? best_r : any_r;
  }

  e.candidates.reserve(batches.size());
  for (std::uint64_t n : batches)
    e.candidates.push_back(evaluate_batch(p, e.speedup, n, e.offered_load));

  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < e.candidates.size(); ++i) {
    if (e.candidates[i].feasible()) order.push_back(i);
    if (e.candidates[i].amortised_us < e.candidates[e.lowest_latency].amortised_us)
      e.lowest_latency = i;
    if (e.candidates[i].r > e.candidates[e.highest_throughput].r) e.highest_throughput = i;
  }
  // Highest throughput first; stable, so equal throughputs keep ascending N.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return e.candidates[a].r > e.candidates[b].r;
  });
  if (order.size() > 5) order.resize(5);
  e.frontier = std::move(order);
  if (!e.frontier.empty()) e.best = e.frontier.front();

  for (std::uint64_t n : kCurveBatches)
    e.curve.push_back(evaluate_batch(p, e.speedup, n, e.offered_load));
  return e;
}

}  // namespace myelin::perf
