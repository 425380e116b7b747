#include "myelin/perf/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace myelin::perf {
namespace {

TEST(FitBatchCost, RecoversAnExactLine) {
  const std::vector<BatchCostSample> s = {{1, 12}, {4, 18}, {16, 42}, {64, 138}};  // 10 + 2n
  auto f = fit_batch_cost(s);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_NEAR(f->fixed_us, 10, 1e-9);
  EXPECT_NEAR(f->per_row_us, 2, 1e-9);
  EXPECT_NEAR(f->r2, 1, 1e-12);
}

TEST(FitBatchCost, LeastSquaresThroughNoise) {
  // Means 6 at n = 1 and 12 at n = 3: slope 3, intercept 3; residuals all
  // +-1, so SSE = 4 against a total of 40: r2 = 0.9.
  const std::vector<BatchCostSample> s = {{1, 5}, {1, 7}, {3, 11}, {3, 13}};
  auto f = fit_batch_cost(s);
  ASSERT_TRUE(f.has_value());
  EXPECT_NEAR(f->fixed_us, 3, 1e-9);
  EXPECT_NEAR(f->per_row_us, 3, 1e-9);
  EXPECT_NEAR(f->r2, 0.9, 1e-12);
}

TEST(FitBatchCost, RejectsOneBatchSizeAndBadSamples) {
  const std::vector<BatchCostSample> one = {{4, 10}, {4, 11}};
  auto f = fit_batch_cost(one);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().to_string().find("two or more batch sizes"), std::string::npos);
  const std::vector<BatchCostSample> neg = {{1, 10}, {2, -1}};
  auto g = fit_batch_cost(neg);
  ASSERT_FALSE(g.has_value());
  EXPECT_NE(g.error().to_string().find("sample 1"), std::string::npos);
  const std::vector<BatchCostSample> nan = {{1, 10}, {2, std::nan("")}};
  EXPECT_FALSE(fit_batch_cost(nan).has_value());
}

TEST(Md1, MatchesPollaczekKhinchine) {
  // rho = 0.01 * 50 = 0.5: Wq = 0.5 * 50 / (2 * 0.5) = 25.
  EXPECT_NEAR(md1_queue_wait_us(0.01, 50), 25, 1e-12);
  // rho = 0.75: Wq = 0.75 * 50 / 0.5 = 75.
  EXPECT_NEAR(md1_queue_wait_us(0.015, 50), 75, 1e-12);
  EXPECT_TRUE(std::isinf(md1_queue_wait_us(0.02, 50)));
  EXPECT_EQ(md1_queue_wait_us(0, 50), 0);
}

ServeCalibration synthetic() {
  ServeCalibration c;
  c.model = "m";
  c.cores = 2;
  c.workers = 1;
  c.fit = {20, 1, 1};  // T(n) = 20 + n µs
  c.frontend_us = 5;
  c.frontend_cpu_us = 10;
  c.client_cpu_us = 5;
  return c;
}

TEST(PredictWait, HandComputedValues) {
  const ServeCalibration c = synthetic();
  // 20,000 req/s: 0.02/µs; lambda * T(1) = 0.42 < 1, so batches of one and
  // the residual of the batch in progress: 0.42 * 21 / 2 = 4.41.
  auto w = predict_wait(c, {64, 500}, 20000);
  EXPECT_NEAR(w.batch, 1, 1e-12);
  EXPECT_NEAR(w.queue_us, 4.41, 1e-9);
  EXPECT_NEAR(w.wait_us, 5 + 4.41 + 21, 1e-9);
  // 100,000 req/s: b = 0.1 * 20 / (1 - 0.1) = 2.2222, T(b) = 22.2222, the
  // worker always busy: queue = T(b) / 2.
  w = predict_wait(c, {64, 500}, 100000);
  EXPECT_NEAR(w.batch, 20.0 / 9, 1e-9);
  EXPECT_NEAR(w.queue_us, (20 + 20.0 / 9) / 2, 1e-9);
  EXPECT_TRUE(w.keeps_up);
  // Max batch 1: M/D/1 with S = 21: 0.42 * 21 / (2 * 0.58).
  w = predict_wait(c, {1, 0}, 20000);
  EXPECT_NEAR(w.queue_us, 0.42 * 21 / 1.16, 1e-9);
  // Max batch 1 at 50,000 req/s: rho = 1.05, the queue grows.
  w = predict_wait(c, {1, 0}, 50000);
  EXPECT_FALSE(w.keeps_up);
  EXPECT_TRUE(std::isinf(w.wait_us));
}

TEST(PredictSaturation, CpuBoundWithTheClientOnTheSameCores) {
  const ServeCalibration c = synthetic();
  // 64 connections, max batch 16: b = min(16, 64 / 2) = 16, T = 36;
  // CPU per request 10 + 36/16 + 5 = 17.25 -> 2e6 / 17.25 req/s, below the
  // worker's 16e6 / 36.
  auto p = predict_saturation(c, {16, 500}, 64);
  EXPECT_NEAR(p.batch, 16, 1e-12);
  EXPECT_TRUE(p.cpu_bound);
  EXPECT_NEAR(p.throughput, 2e6 / 17.25, 1e-6);
  EXPECT_NEAR(p.p50_us, 64 / (2e6 / 17.25) * 1e6, 1e-6);
  // Max batch 1: the worker (1e6 / 21) binds before the cores (2e6 / 36).
  p = predict_saturation(c, {1, 0}, 64);
  EXPECT_FALSE(p.cpu_bound);
  EXPECT_NEAR(p.throughput, 1e6 / 21, 1e-6);
}

TEST(Recommend, HighestCapacityWithinBudget) {
  const ServeCalibration c = synthetic();
  const std::vector<BatcherSetting> cands = {{1, 0}, {4, 500}, {16, 500}, {64, 500}};
  auto r = recommend(c, cands, 1000);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_LE(r->wait.wait_us, 1000);
  for (const auto& s : cands) {
    const double full = 2.0 * static_cast<double>(s.max_batch);
    EXPECT_GE(r->saturation.throughput, predict_saturation(c, s, full, false).throughput - 1e-6);
  }
  EXPECT_NE(r->why.find("max batch"), std::string::npos);
  auto none = recommend(c, cands, 1);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().to_string().find("within 1.0 us"), std::string::npos);
}

constexpr const char* kGood = R"({"data": {"calibration": {"cores": 2, "workers": 1,
  "models": {"mlp": {"frontend_us": 4, "frontend_cpu_us": 9, "client_cpu_us": 6,
    "batch_compute": [{"batch": 1, "us": 12}, {"batch": 4, "us": 18}, {"batch": 16, "us": 42}]},
   "trees": {"frontend_us": 4, "frontend_cpu_us": 9, "client_cpu_us": 6,
    "batch_compute": [{"batch": 1, "us": 3}, {"batch": 2, "us": 5}]}}}}})";

TEST(ParseCalibration, ReadsAndFitsTheNamedModel) {
  auto c = parse_calibration(kGood, "serve.json", "mlp");
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->model, "mlp");
  EXPECT_EQ(c->cores, 2);
  EXPECT_NEAR(c->fit.fixed_us, 10, 1e-9);
  EXPECT_NEAR(c->fit.per_row_us, 2, 1e-9);
  EXPECT_EQ(c->frontend_cpu_us, 9);
}

std::string error_of(const std::string& text, std::string_view model) {
  auto c = parse_calibration(text, "serve.json", model);
  return c.has_value() ? std::string("(no error)") : c.error().to_string();
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(ParseCalibration, ErrorsNameTheField) {
  const std::string good = kGood;
  EXPECT_NE(error_of(replaced(good, R"("us": 18)", R"("us": "18")"), "mlp")
                .find("serve.json: data.calibration.models.mlp.batch_compute[1].us: expected a "
                      "number, got string"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(good, R"("cores": 2, )", ""), "mlp")
                .find("data.calibration.cores: missing"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(good, R"("frontend_us": 4, "frontend_cpu_us": 9, "client_cpu_us": 6,
    "batch_compute": [{"batch": 1)",
                              R"("frontend_cpu_us": 9, "client_cpu_us": 6,
    "batch_compute": [{"batch": 1)"),
                     "mlp")
                .find("data.calibration.models.mlp.frontend_us: missing"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(good, R"("batch": 4)", R"("batch": 0)"), "mlp")
                .find("models.mlp.batch_compute[1].batch: expected a finite number >= 1"),
            std::string::npos);
  EXPECT_NE(error_of(good, "resnet")
                .find("data.calibration.models.resnet: missing (the file has: "
                      "mlp, trees)"),
            std::string::npos);
  EXPECT_NE(error_of(good, "").find("choose one with --model"), std::string::npos);
  EXPECT_NE(error_of("{\"data\": {}}", "mlp").find("data.calibration: missing"), std::string::npos);
  EXPECT_NE(error_of("{\"data\": ", "mlp").find("serve.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(replaced(good, R"({"batch": 1, "us": 3}, {"batch": 2, "us": 5})",
                              R"({"batch": 2, "us": 3})"),
                     "trees")
                .find("two or more batch sizes"),
            std::string::npos);
}

TEST(ParseCalibration, RejectsAFitThatIsNotPositive) {
  // Times that fall with the batch size fit a negative per-row cost.
  const std::string text = replaced(kGood, R"({"batch": 1, "us": 3}, {"batch": 2, "us": 5})",
                                    R"({"batch": 1, "us": 5}, {"batch": 2, "us": 3})");
  EXPECT_NE(error_of(text, "trees")
                .find("models.trees.batch_compute: the fitted cost T(n) = 7 + -2 n us is not "
                      "positive"),
            std::string::npos);
}

TEST(LoadCalibration, MissingFileIsNamed) {
  auto c = load_calibration("/nonexistent/serve.json", "mlp");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().to_string().find("/nonexistent/serve.json: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace myelin::perf
