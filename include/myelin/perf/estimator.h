// Estimator: the analytical throughput/latency model of myelin's data path.
//
// The path processes messages in batches. A batch of N messages costs
//   T_batch(N) = t_control + t_bridge + t_persist + N * t_data   (microseconds)
// where the first three are per-batch fixed costs (control plane, the bridge
// into the native data plane, persistence) and t_data is the per-message
// cost. From that the model derives the amortised cost per message
// L(N) = T_batch(N)/N, one-core throughput R1(N) = 1e6 * N / T_batch(N), and
// the throughput on `cores` cores R(N), capped by any IO/NIC/app limit.
//
// Beyond amortised cost it models the time a message really waits at an
// offered load lambda: the time for its batch to fill ((N-1)/lambda at most,
// half that on average) plus the batch's service time. The seed estimator
// this replaces optimised amortised cost only, which always favours the
// largest batch; see docs/estimator.md.
//
// Everything here is a pure function of EstimatorParams: no I/O, no clock,
// safe to call from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"

namespace myelin::perf {

enum class Scaling {
  // The seed's model: the whole pipeline scales by the Amdahl speedup S.
  kAmdahl,
  // Only the per-message part runs in parallel (with speedup S); the
  // per-batch fixed cost stays serial.
  kSplit,
};

std::string_view to_string(Scaling s) noexcept;
std::optional<Scaling> parse_scaling(std::string_view name) noexcept;

// Model inputs. The defaults are seed report 000's parameters.
struct EstimatorParams {
  int cores = 8;
  double parallel_fraction = 0.90;       // P, in [0, 1]
  double t_control_us = 5.0;             // seed: T_py
  double t_bridge_us = 50.0;             // seed: T_bridge
  double t_persist_us = 0.0;             // seed: T_persist
  double t_data_us = 0.1;                // seed: T_rust/msg
  std::optional<double> io_cap;          // ops/s
  std::optional<double> nic_cap;         // ops/s
  std::optional<double> app_cap;         // ops/s
  double latency_budget_us = 0.5;        // bound on amortised cost L(N)
  std::optional<double> target_ops;      // lower bound on R(N)
  std::optional<double> wait_budget_us;  // bound on the worst-case wait
  std::optional<double> offered_load;    // lambda, msg/s; default: best R
  std::uint64_t batch_min = 1;
  std::uint64_t batch_max = 65536;
  bool powers_of_two = true;  // candidates: every power of two in range
  bool include_1000 = true;   // candidates: 1000 when in range
  Scaling scaling = Scaling::kAmdahl;

  // Checks every value; the error names the flag ("--cores: ...").
  [[nodiscard]] Status validate() const;
};

// The largest batch size accepted, so N and N * t_data stay exact in a double.
inline constexpr std::uint64_t kMaxBatch = std::uint64_t{1} << 40;

struct BatchMetrics {
  std::uint64_t n = 0;
  double t_batch_us = 0;    // one-core cost of a batch
  double service_us = 0;    // wall time to process one batch (scaling-aware)
  double amortised_us = 0;  // L(N) = T_batch(N) / N
  double r1 = 0;            // one-core throughput, msg/s
  double r = 0;             // scaled and capped throughput, msg/s
  bool capped = false;      // a cap, not the model, set r
  // Waiting at the offered load; infinite when r < offered load (the queue
  // grows without bound).
  bool keeps_up = true;
  double fill_avg_us = 0;
  double fill_max_us = 0;
  double wait_avg_us = 0;  // fill_avg + service
  double wait_max_us = 0;  // fill_max + service
  // Constraint results.
  bool within_latency_budget = true;
  bool meets_target = true;
  bool within_wait_budget = true;
  [[nodiscard]] bool feasible() const {
    return within_latency_budget && meets_target && within_wait_budget;
  }
};

struct Estimate {
  EstimatorParams params;
  double speedup = 1;
  double ceiling_1core = 0;   // 1e6 / t_data (infinite when t_data == 0)
  double ceiling_scaled = 0;  // min(ceiling * S, caps)
  double offered_load = 0;    // lambda actually used
  bool offered_load_is_default = true;
  std::vector<BatchMetrics> candidates;  // ascending n
  std::vector<std::size_t> frontier;     // indices into candidates, best first, <= 5
  std::optional<std::size_t> best;       // frontier[0] when anything is feasible
  std::size_t lowest_latency = 0;        // fallbacks, always set
  std::size_t highest_throughput = 0;
  std::vector<BatchMetrics> curve;  // at kCurveBatches
};

inline constexpr std::uint64_t kCurveBatches[] = {1, 16, 64, 256, 1024, 4096, 8192};

// S = 1 / ((1 - P) + P / cores); 1 for cores <= 1; P clamped to [0, 1].
double amdahl_speedup(int cores, double parallel_fraction) noexcept;

// n_min, n_max, the powers of two between and 1000 when enabled; ascending, unique.
std::vector<std::uint64_t> candidate_batches(const EstimatorParams& p);

// Metrics of one batch size at offered load `lambda` (msg/s), constraints
// included.
BatchMetrics evaluate_batch(const EstimatorParams& p, double speedup, std::uint64_t n,
                            double lambda);

// Validates `p` and runs the whole model.
Result<Estimate> estimate(const EstimatorParams& p);

}  // namespace myelin::perf
