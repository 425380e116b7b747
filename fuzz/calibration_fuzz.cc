// Fuzzes the calibration reader (`myelin estimate --calibrate`, `myelin
// serve --max-batch auto`: data.calibration of a bench serve report) and the
// [calibration] config section, with the predictions and report behind
// them: any bytes must yield a clear error or a valid report, never a crash.
// The first byte picks the reader.
#include <cstdint>
#include <string_view>
#include <vector>

#include "myelin/perf/calibration.h"
#include "myelin/perf/calibration_report.h"
#include "myelin/perf/estimate_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace myelin::perf;  // NOLINT(google-build-using-namespace): a fuzz driver
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  CalibrationSettings settings;
  settings.latency_budget_us = 1000;
  switch (data[0] % 3) {
    case 0:
      break;
    case 1:
      if (!apply_calibration_config(text, ConfigSyntax::kToml, "fuzz", settings).ok()) return 0;
      return 0;
    default:
      if (!apply_calibration_config(text, ConfigSyntax::kJson, "fuzz", settings).ok()) return 0;
      return 0;
  }
  auto cal = parse_calibration(text, "fuzz", "");
  if (!cal) return 0;
  (void)render_markdown(make_calibration_report(*cal, settings, "2026-01-01T00:00:00Z"));
  const std::vector<BatcherSetting> cands = {{1, 0}, {8, 100}, {64, 500}};
  (void)recommend(*cal, cands, 500);
  return 0;
}
