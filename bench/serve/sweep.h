// The batch-size sweep of `myelin bench serve` and the check of the
// calibrated estimator against it.
//
// serve_bench.cc measures (per model, per batcher setting: closed-loop
// saturation, p50/p99, the batch sizes from myelin's /metrics, server and
// load-generator CPU per request; per model: the compute of one batch at
// several sizes run in process, and the front end's cost at max batch 1)
// and fills a Sweep. This file turns it into the data.calibration object of
// reports/serve.json (the format perf::parse_calibration reads, specified in
// docs/estimator.md) and compares the estimator's predictions, made from
// that very object, with the measurements: errors against targets that are
// data, verdicts computed by harness::judge.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "bench/harness/results.h"
#include "myelin/base/result.h"
#include "myelin/perf/calibration.h"

namespace myelin::bench::serve_bench {

struct SweepPoint {
  std::string model;
  std::uint64_t max_batch = 1;
  double max_delay_us = 0;
  double rps = 0, p50_us = 0, p99_us = 0;             // wrk, closed loop
  double server_cpu_us = 0;                           // per request, server process group
  double client_cpu_us = 0;                           // per request, the load generator
  double mean_batch = 0;                              // from myelin_inference_batch_size
  std::vector<std::pair<double, double>> batch_hist;  // (le, share of batches)
  bool auto_choice = false;                           // the setting `--max-batch auto` picked
};

struct ModelCalibration {
  std::vector<perf::BatchCostSample> batch_compute;  // in process, median per batch
  double frontend_us = 0;                            // sequential at max batch 1: server p50 - T(1)
};

struct Sweep {
  int cores = 1;
  int workers = 1;
  int connections = 64;
  double auto_budget_us = 0;  // --latency-budget-us of the `--max-batch auto` point
  std::vector<SweepPoint> points;
  std::map<std::string, ModelCalibration> models;
};

// The batch-1 point of `model`, or nullptr.
const SweepPoint* calibration_point(const Sweep& s, const std::string& model);

// data.calibration: {"cores", "workers", "connections", "models": {name:
// {"batch_compute": [{"batch", "us"}], "frontend_us", "frontend_cpu_us",
// "client_cpu_us"}}, "sweep": [...]}. The front end's CPU per request is
// the batch-1 point's server CPU minus T(1); the load generator's is the
// median over the model's points (the auto point, measured after the
// calibration was written, excluded). An error names a model without a batch-1
// point or without batch compute samples.
Result<nlohmann::json> calibration_json(const Sweep& s);

struct CheckRow {
  std::string model;
  perf::BatcherSetting setting;
  bool calibration_point = false;  // max batch 1: the point the front end was fitted on
  bool auto_choice = false;
  double measured_rps = 0, predicted_rps = 0;
  double measured_p50_us = 0, predicted_p50_us = 0;
  double measured_batch = 0, predicted_batch = 0;
  [[nodiscard]] double rps_error_pct() const;  // |predicted - measured| / measured, in %
  [[nodiscard]] double p50_error_pct() const;
};

// The targets of the check (issue 24): errors in percent, lower is better.
harness::Target throughput_target();
harness::Target p50_target();

// Predictions from `calibration` (as calibration_json wrote it, read back
// with perf::parse_calibration) for every point of the sweep.
Result<std::vector<CheckRow>> check_predictions(const Sweep& s, const nlohmann::json& calibration);

// The harness checks: one per row that is not a calibration point, for
// both targets.
std::vector<harness::Check> to_checks(const std::vector<CheckRow>& rows);

}  // namespace myelin::bench::serve_bench
