// Fuzzes the estimate config reader (TOML and JSON) and the estimator behind
// it: any bytes must yield a clear error or a valid estimate, never a crash.
// The first byte picks the syntax.
#include <cstdint>
#include <string_view>

#include "myelin/perf/estimate_config.h"
#include "myelin/perf/estimate_report.h"
#include "myelin/perf/estimator.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto syntax =
      (data[0] & 1) ? myelin::perf::ConfigSyntax::kJson : myelin::perf::ConfigSyntax::kToml;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  myelin::perf::EstimatorParams params;
  if (!myelin::perf::apply_estimate_config(text, syntax, "fuzz", params).ok()) return 0;
  // Valid params: run the model and render it (candidates are at most ~43).
  auto estimate = myelin::perf::estimate(params);
  if (!estimate) return 0;
  (void)myelin::perf::render_markdown(
      myelin::perf::make_estimate_report(*estimate, "2026-01-01T00:00:00Z"));
  return 0;
}
