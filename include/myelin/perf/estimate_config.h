// Reading EstimatorParams from a TOML or JSON file (`myelin estimate --config`).
//
// Keys are the long flag names without the dashes in front ("cores",
// "t-control-us", "io-cap", ...), so a config file and a command line say the
// same thing the same way. Caps, targets and budgets may be `"none"` (or JSON
// null) to unset them. An unknown key, a value of the wrong type and a syntax
// error are each reported with the file and the key or line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/perf/estimator.h"

namespace myelin::perf {

enum class ConfigSyntax { kJson, kToml };

// Applies the settings in `text` on top of `params`. `origin` names the
// source in errors (a file name). On error `params` may be partly updated.
Status apply_estimate_config(std::string_view text, ConfigSyntax syntax, std::string_view origin,
                             EstimatorParams& params);

// Reads `path` (".json" is JSON, anything else TOML) on top of `base`.
Result<EstimatorParams> load_estimate_config(const std::string& path, EstimatorParams base);

// The `[calibration]` section (a "calibration" object in JSON): what
// `myelin estimate --calibrate` reads and predicts for. Keys:
//   file = "reports/serve.json"   # a `myelin bench serve` report
//   model = "mlp"                 # required when the file has several models
//   connections = 64              # closed-loop clients for the saturation figures
//   max-batch = [1, 4, 16, 64]    # batcher settings predicted
//   max-delay-us = [100, 500]
//   offered-load = 20000          # req/s for the wait prediction (optional)
//   latency-budget-us = 1000      # for the recommendation (optional)
struct CalibrationSettings {
  std::string file;
  std::string model;
  double connections = 64;
  std::vector<std::uint64_t> max_batches = {1, 4, 16, 64};
  std::vector<double> max_delays_us = {100, 500};
  std::optional<double> offered_load;
  std::optional<double> latency_budget_us;
};

// Applies the calibration section of `text`, if any, on top of `settings`;
// the estimator's own keys are left to apply_estimate_config(). Errors name
// the origin and the key ("est.toml: calibration.max-batch[2]: ...").
Status apply_calibration_config(std::string_view text, ConfigSyntax syntax, std::string_view origin,
                                CalibrationSettings& settings);
Result<CalibrationSettings> load_calibration_settings(const std::string& path,
                                                      CalibrationSettings base);

}  // namespace myelin::perf
