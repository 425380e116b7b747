// Reading EstimatorParams from a TOML or JSON file (`myelin estimate --config`).
//
// Keys are the long flag names without the dashes in front ("cores",
// "t-control-us", "io-cap", ...), so a config file and a command line say the
// same thing the same way. Caps, targets and budgets may be `"none"` (or JSON
// null) to unset them. An unknown key, a value of the wrong type and a syntax
// error are each reported with the file and the key or line.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace myelin::perf
