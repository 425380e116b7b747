// The report `myelin estimate --calibrate` prints: the fitted costs of a
// model and, per batcher setting, the predicted saturation throughput,
// closed-loop p50 and open-loop wait (calibration.h), plus the setting
// recommended for a latency budget when one is given.
#pragma once

#include <string>

#include "myelin/perf/calibration.h"
#include "myelin/perf/estimate_config.h"
#include "myelin/perf/report.h"

namespace myelin::perf {

// `generated` is the header's timestamp (ISO 8601).
Report make_calibration_report(const ServeCalibration& c, const CalibrationSettings& settings,
                               std::string generated);

}  // namespace myelin::perf
