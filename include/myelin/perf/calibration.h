// Calibration: the estimator's model of `myelin serve`, fitted to what
// `myelin bench serve` measured on this machine.
//
// The bench's batch-size sweep writes, per model, the compute time of one
// batch at several batch sizes (the model run in process), the front end's
// per-request cost and the cores; reports/serve.json carries them under
// data.calibration (the format is in docs/estimator.md). From these:
//   - fit_batch_cost() fits T(n) = fixed + n * per_row by least squares;
//   - predict_saturation() predicts the closed-loop saturation throughput and
//     p50 latency of a server with a given max batch size and queue delay;
//   - predict_wait() predicts the wait of a request at an offered load of
//     random (Poisson) arrivals, with an M/D/1 queueing term for the batch
//     in progress and the batches ahead;
//   - recommend() picks the max batch size (and delay) for a latency budget.
// Everything is a pure function of its arguments except load_calibration(),
// which reads a file. No exceptions escape; errors name the file and the
// JSON field ("serve.json: data.calibration.models.mlp.batch_compute[2].us:
// expected a number").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"

namespace myelin::perf {

// One measured batch: `n` rows took `us` microseconds of compute.
struct BatchCostSample {
  double n = 0;
  double us = 0;
};

// T(n) = fixed_us + n * per_row_us, with the fit's coefficient of
// determination (1: every sample on the line).
struct BatchCostFit {
  double fixed_us = 0;
  double per_row_us = 0;
  double r2 = 0;
  [[nodiscard]] double at(double n) const noexcept { return fixed_us + n * per_row_us; }
};

// Ordinary least squares over the samples. An error when there are fewer
// than two distinct batch sizes, or a value is negative or not finite.
Result<BatchCostFit> fit_batch_cost(std::span<const BatchCostSample> samples);

// Mean wait in queue of an M/D/1 queue (Pollaczek-Khinchine with a
// deterministic service time): Wq = rho * service / (2 * (1 - rho)) with
// rho = arrival_per_us * service_us. Infinite when rho >= 1; 0 when either
// argument is 0. Both arguments must be non-negative.
double md1_queue_wait_us(double arrival_per_us, double service_us) noexcept;

// What a model costs on the machine that measured it.
struct ServeCalibration {
  std::string model;
  std::string origin;  // the file it came from
  int cores = 1;       // cores of the machine
  int workers = 1;     // inference threads per model in the measured server
  std::vector<BatchCostSample> batch_compute;
  BatchCostFit fit;
  // Latency the front end adds to a request beyond its compute (server-side
  // request duration at max batch 1 minus T(1)), microseconds.
  double frontend_us = 0;
  // CPU time per request outside the model (server CPU per request at max
  // batch 1 minus T(1)), microseconds.
  double frontend_cpu_us = 0;
  // CPU time per request of the load generator sharing the machine (0 when
  // clients run elsewhere), microseconds.
  double client_cpu_us = 0;
};

// Reads data.calibration (or a top-level "calibration") of a bench serve
// report and fits `model`'s batch cost. With an empty `model` the file must
// describe exactly one model.
Result<ServeCalibration> parse_calibration(std::string_view json_text, std::string_view origin,
                                           std::string_view model);
Result<ServeCalibration> load_calibration(const std::string& path, std::string_view model);

// A batcher setting.
struct BatcherSetting {
  std::uint64_t max_batch = 1;
  double max_delay_us = 0;
};

// Closed loop: `connections` clients each with one request outstanding.
struct SaturationPrediction {
  BatcherSetting setting;
  double batch = 1;        // mean rows per batch
  double throughput = 0;   // requests/s
  double p50_us = 0;       // round trip (Little's law: connections / throughput)
  bool cpu_bound = false;  // the cores, not the workers, set the throughput
  bool include_client = true;
};

// `include_client`: charge the load generator's CPU to the same cores (the
// bench's situation); false for clients on other machines.
SaturationPrediction predict_saturation(const ServeCalibration& c, BatcherSetting s,
                                        double connections, bool include_client = true);

// Open loop: requests arrive at random (Poisson) at `offered` requests/s.
struct WaitPrediction {
  BatcherSetting setting;
  double offered = 0;
  double batch = 1;        // mean rows per batch
  double utilisation = 0;  // of the workers
  bool keeps_up = true;    // false: the queue grows without bound
  double service_us = 0;   // T(batch)
  double queue_us = 0;     // M/D/1 wait for the batch in progress and those ahead
  double wait_us = 0;      // front end + queue + service (mean)
};

WaitPrediction predict_wait(const ServeCalibration& c, BatcherSetting s, double offered);

struct Recommendation {
  BatcherSetting setting;
  WaitPrediction wait;
  SaturationPrediction saturation;
  std::string why;  // one line: the budget, the load, what was compared
};

// Of the candidate settings, the one with the highest closed-loop
// saturation throughput (no client CPU) whose predicted wait at `offered`
// (default: half that setting's saturation) is within `budget_us`; ties go to
// the smaller batch. An error naming the budget and the smallest predicted
// wait when no candidate fits.
Result<Recommendation> recommend(const ServeCalibration& c,
                                 std::span<const BatcherSetting> candidates, double budget_us,
                                 std::optional<double> offered = std::nullopt);

}  // namespace myelin::perf
