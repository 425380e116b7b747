#include "bench/serve/sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace myelin::bench::serve_bench {
namespace {

// A sweep whose measurements are exactly what a known machine would give:
// T(n) = 20 + n µs, front end CPU 10 µs and wrk 5 µs per request, 2 cores,
// 1 worker, 64 connections.
Sweep synthetic() {
  Sweep s;
  s.cores = 2;
  s.workers = 1;
  s.connections = 64;
  auto& m = s.models["mlp"];
  for (double n : {1.0, 4.0, 16.0, 64.0}) m.batch_compute.push_back({n, 20 + n});
  m.frontend_us = 7;
  perf::ServeCalibration truth;
  truth.cores = 2;
  truth.workers = 1;
  truth.fit = {20, 1, 1};
  truth.frontend_cpu_us = 10;
  truth.client_cpu_us = 5;
  for (const perf::BatcherSetting st :
       {perf::BatcherSetting{1, 0}, perf::BatcherSetting{4, 100}, perf::BatcherSetting{16, 100},
        perf::BatcherSetting{64, 500}}) {
    const auto p = perf::predict_saturation(truth, st, 64);
    SweepPoint pt;
    pt.model = "mlp";
    pt.max_batch = st.max_batch;
    pt.max_delay_us = st.max_delay_us;
    pt.rps = p.throughput;
    pt.p50_us = p.p50_us;
    // Server CPU: front end + compute per request (T(b)/b).
    pt.server_cpu_us = 10 + (20 + p.batch) / p.batch;
    pt.client_cpu_us = 5;
    pt.mean_batch = p.batch;
    pt.batch_hist = {{1, 0.5}, {INFINITY, 0.5}};
    s.points.push_back(pt);
  }
  return s;
}

TEST(SweepCalibration, WritesWhatParseCalibrationReads) {
  const Sweep s = synthetic();
  auto cal = calibration_json(s);
  ASSERT_TRUE(cal.has_value()) << cal.error().to_string();
  const auto& m = (*cal)["models"]["mlp"];
  EXPECT_NEAR(m["frontend_cpu_us"].get<double>(), 10, 1e-9);  // 31 - T(1)
  EXPECT_NEAR(m["client_cpu_us"].get<double>(), 5, 1e-9);
  EXPECT_EQ((*cal)["sweep"].size(), 4u);
  EXPECT_EQ((*cal)["sweep"][0]["batch_hist"][1]["le"], "+Inf");
  auto back =
      perf::parse_calibration(nlohmann::json{{"data", {{"calibration", *cal}}}}.dump(), "x", "mlp");
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_NEAR(back->fit.fixed_us, 20, 1e-9);
  EXPECT_NEAR(back->fit.per_row_us, 1, 1e-9);
}

TEST(SweepCalibration, ExactMeasurementsMeetEveryTarget) {
  const Sweep s = synthetic();
  auto cal = calibration_json(s);
  ASSERT_TRUE(cal.has_value());
  auto rows = check_predictions(s, *cal);
  ASSERT_TRUE(rows.has_value()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_TRUE((*rows)[0].calibration_point);
  const auto checks = to_checks(*rows);
  ASSERT_EQ(checks.size(), 6u);  // three settings past the calibration point, two targets each
  for (const auto& c : checks) {
    ASSERT_TRUE(c.measured.has_value());
    EXPECT_NEAR(*c.measured, 0, 1e-6) << c.target.what;
    EXPECT_TRUE(harness::judge(c.target, *c.measured).met) << c.target.what;
  }
}

TEST(SweepCalibration, AMeasurementOffByAFifthMissesTheThroughputTarget) {
  Sweep s = synthetic();
  s.points[2].rps *= 1.2;  // predicted / measured - 1 = -1/6: 16.7% > 15%
  auto cal = calibration_json(s);
  ASSERT_TRUE(cal.has_value());
  auto rows = check_predictions(s, *cal);
  ASSERT_TRUE(rows.has_value());
  EXPECT_NEAR((*rows)[2].rps_error_pct(), 100.0 / 6, 1e-6);
  const auto checks = to_checks(*rows);
  int missed = 0;
  for (const auto& c : checks) missed += harness::judge(c.target, *c.measured).met ? 0 : 1;
  EXPECT_EQ(missed, 1);
  EXPECT_EQ(throughput_target().goal, 15);
  EXPECT_EQ(p50_target().goal, 25);
}

TEST(SweepCalibration, NoBatchOnePointIsAnError) {
  Sweep s = synthetic();
  s.points.erase(s.points.begin());
  auto cal = calibration_json(s);
  ASSERT_FALSE(cal.has_value());
  EXPECT_NE(cal.error().to_string().find("calibration of mlp: no max batch 1 point"),
            std::string::npos);
}

}  // namespace
}  // namespace myelin::bench::serve_bench
