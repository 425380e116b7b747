#include "myelin/perf/estimator.h"

#include <gtest/gtest.h>

#include <cmath>

namespace myelin::perf {
namespace {

const BatchMetrics& at(const Estimate& e, std::uint64_t n) {
  for (const BatchMetrics& m : e.candidates) {
    if (m.n == n) return m;
  }
  ADD_FAILURE() << "no candidate " << n;
  return e.candidates.front();
}

TEST(Amdahl, Formula) {
  EXPECT_NEAR(amdahl_speedup(8, 0.9), 1 / (0.1 + 0.9 / 8), 1e-12);
  EXPECT_EQ(amdahl_speedup(1, 0.9), 1.0);
  EXPECT_EQ(amdahl_speedup(0, 0.9), 1.0);
  EXPECT_NEAR(amdahl_speedup(4, 1.0), 4.0, 1e-12);
  EXPECT_EQ(amdahl_speedup(4, 0.0), 1.0);
  EXPECT_NEAR(amdahl_speedup(4, 1.7), 4.0, 1e-12);  // clamped
}

TEST(Candidates, EndpointsPowersAnd1000) {
  EstimatorParams p;
  p.batch_min = 3;
  p.batch_max = 1500;
  EXPECT_EQ(candidate_batches(p),
            (std::vector<std::uint64_t>{3, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1024, 1500}));
  p.powers_of_two = false;
  EXPECT_EQ(candidate_batches(p), (std::vector<std::uint64_t>{3, 1000, 1500}));
  p.include_1000 = false;
  EXPECT_EQ(candidate_batches(p), (std::vector<std::uint64_t>{3, 1500}));
  p.batch_min = p.batch_max = 7;
  EXPECT_EQ(candidate_batches(p), (std::vector<std::uint64_t>{7}));
}

TEST(Estimator, ThroughputMonotoneInNWithoutCaps) {
  EstimatorParams p;
  p.latency_budget_us = 1e9;
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value());
  for (std::size_t i = 1; i < e->candidates.size(); ++i) {
    EXPECT_GT(e->candidates[i].r, e->candidates[i - 1].r) << e->candidates[i].n;
    EXPECT_LT(e->candidates[i].amortised_us, e->candidates[i - 1].amortised_us);
  }
}

TEST(Estimator, CapsFlattenAndTiesGoToTheSmallestN) {
  EstimatorParams p;
  p.nic_cap = 2e6;
  p.io_cap = 5e6;  // the smaller cap wins
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value());
  EXPECT_DOUBLE_EQ(e->ceiling_scaled, 2e6);
  for (const BatchMetrics& m : e->candidates) EXPECT_LE(m.r, 2e6);
  // Every candidate from N=256 (amortised <= 0.5 µs) reaches the cap: the
  // smallest such N wins, and the frontier lists the tied ones ascending.
  ASSERT_TRUE(e->best.has_value());
  EXPECT_EQ(e->candidates[*e->best].n, 256u);
  EXPECT_TRUE(e->candidates[*e->best].capped);
  ASSERT_EQ(e->frontier.size(), 5u);
  EXPECT_EQ(e->candidates[e->frontier[1]].n, 512u);
  EXPECT_EQ(e->candidates[e->frontier[2]].n, 1000u);
}

TEST(Estimator, TargetFiltersCandidates) {
  EstimatorParams p;
  p.latency_budget_us = 100;
  p.target_ops = 30e6;
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value());
  for (const BatchMetrics& m : e->candidates) EXPECT_EQ(m.meets_target, m.r >= 30e6) << m.n;
  EXPECT_FALSE(at(*e, 512).feasible());
  EXPECT_TRUE(at(*e, 1000).feasible());
  EXPECT_EQ(e->candidates[*e->best].n, 65536u);
}

TEST(Estimator, InfeasibleReportsBothFallbacks) {
  EstimatorParams p;
  p.latency_budget_us = 0.05;  // below t_data: nothing can meet it
  p.batch_max = 4096;
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->best.has_value());
  EXPECT_TRUE(e->frontier.empty());
  EXPECT_EQ(e->candidates[e->lowest_latency].n, 4096u);
  EXPECT_EQ(e->candidates[e->highest_throughput].n, 4096u);

  // With a cap the two fallbacks differ: throughput ties go to the smaller N.
  p.app_cap = 1e6;
  e = estimate(p);
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->best.has_value());
  EXPECT_EQ(e->candidates[e->lowest_latency].n, 4096u);
  EXPECT_EQ(e->candidates[e->highest_throughput].n, 16u);  // first N with R >= 1e6
}

TEST(Estimator, SplitScalingNeverBeatsAmdahl) {
  EstimatorParams p;
  p.latency_budget_us = 1e9;
  auto amdahl = estimate(p);
  p.scaling = Scaling::kSplit;
  auto split = estimate(p);
  ASSERT_TRUE(amdahl.has_value() && split.has_value());
  for (std::size_t i = 0; i < amdahl->candidates.size(); ++i) {
    const BatchMetrics& a = amdahl->candidates[i];
    const BatchMetrics& s = split->candidates[i];
    EXPECT_LE(s.r, a.r * (1 + 1e-12)) << a.n;
    // Split: serial fixed cost plus the parallel per-message part.
    EXPECT_NEAR(s.service_us, 55.0 + a.n * 0.1 / split->speedup, 1e-6);
  }
  // At N=1 the fixed cost dominates, so split scaling barely helps.
  EXPECT_LT(split->candidates[0].r, 1.01 * split->candidates[0].r1);
}

TEST(Estimator, WaitGrowsWithNAtFixedLoad) {
  EstimatorParams p;
  p.offered_load = 1e6;
  p.latency_budget_us = 1e9;
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->offered_load_is_default);
  double prev = -1;
  for (const BatchMetrics& m : e->candidates) {
    if (!m.keeps_up) {
      EXPECT_TRUE(std::isinf(m.wait_avg_us));
      EXPECT_FALSE(m.feasible());  // an explicit load it cannot carry
      continue;
    }
    EXPECT_GT(m.wait_avg_us, prev) << m.n;
    EXPECT_NEAR(m.fill_max_us, (m.n - 1) / 1e6 * 1e6, 1e-6);
    EXPECT_NEAR(m.wait_max_us, m.fill_max_us + m.service_us, 1e-9);
    EXPECT_NEAR(m.wait_avg_us, m.fill_max_us / 2 + m.service_us, 1e-9);
    prev = m.wait_avg_us;
  }
}

TEST(Estimator, SeedChoiceWaitsMilliseconds) {
  auto e = estimate(EstimatorParams{});
  ASSERT_TRUE(e.has_value());
  const BatchMetrics& b = e->candidates[*e->best];
  EXPECT_EQ(b.n, 65536u);
  EXPECT_LT(b.amortised_us, 0.5);
  EXPECT_GT(b.wait_avg_us, 1000.0);  // milliseconds, not 0.1 µs
  EXPECT_NEAR(b.wait_avg_us, 65535.0 / (2 * e->offered_load) * 1e6 + b.t_batch_us, 1e-6);
}

TEST(Estimator, WaitBudgetPicksASmallerBatch) {
  EstimatorParams p;
  p.offered_load = 5e6;
  p.wait_budget_us = 1000;
  p.latency_budget_us = 1e9;
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value());
  ASSERT_TRUE(e->best.has_value());
  const BatchMetrics& b = e->candidates[*e->best];
  EXPECT_LE(b.wait_max_us, 1000);
  EXPECT_TRUE(b.keeps_up);
  EXPECT_LT(b.n, 65536u);
  for (const BatchMetrics& m : e->candidates) {
    if (m.feasible()) {
      EXPECT_LE(m.r, b.r);
    }
  }
}

TEST(Validate, RejectsEachBadValueNamingTheFlag) {
  struct Case {
    void (*mutate)(EstimatorParams&);
    const char* flag;
  };
  const Case cases[] = {
      {[](EstimatorParams& p) { p.cores = 0; }, "--cores"},
      {[](EstimatorParams& p) { p.parallel_fraction = 1.5; }, "--parallel-fraction"},
      {[](EstimatorParams& p) { p.parallel_fraction = -0.1; }, "--parallel-fraction"},
      {[](EstimatorParams& p) { p.t_control_us = -1; }, "--t-control-us"},
      {[](EstimatorParams& p) { p.t_bridge_us = -1; }, "--t-bridge-us"},
      {[](EstimatorParams& p) { p.t_persist_us = -1; }, "--t-persist-us"},
      {[](EstimatorParams& p) { p.t_data_us = -0.1; }, "--t-data-us"},
      {[](EstimatorParams& p) { p.t_data_us = NAN; }, "--t-data-us"},
      {[](EstimatorParams& p) { p.t_data_us = 0; }, "--t-data-us"},
      {[](EstimatorParams& p) { p.io_cap = 0; }, "--io-cap"},
      {[](EstimatorParams& p) { p.latency_budget_us = -1; }, "--latency-budget-us"},
      {[](EstimatorParams& p) { p.target_ops = -5; }, "--target-ops"},
      {[](EstimatorParams& p) { p.wait_budget_us = 0; }, "--wait-budget-us"},
      {[](EstimatorParams& p) { p.offered_load = INFINITY; }, "--offered-load"},
      {[](EstimatorParams& p) { p.batch_min = 0; }, "--batch-min"},
      {[](EstimatorParams& p) { p.batch_min = 10, p.batch_max = 5; }, "--batch-min"},
      {[](EstimatorParams& p) { p.batch_max = kMaxBatch + 1; }, "--batch-max"},
  };
  for (const Case& c : cases) {
    EstimatorParams p;
    c.mutate(p);
    Status s = p.validate();
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.flag;
    EXPECT_EQ(s.message().rfind(c.flag, 0), 0u) << s.to_string();
    EXPECT_FALSE(estimate(p).has_value());
  }
}

TEST(Validate, ZeroDataCostIsFineWithACap) {
  EstimatorParams p;
  p.t_data_us = 0;
  p.app_cap = 1e6;
  auto e = estimate(p);
  ASSERT_TRUE(e.has_value()) << e.error().to_string();
  EXPECT_TRUE(std::isinf(e->ceiling_1core));
  EXPECT_DOUBLE_EQ(e->ceiling_scaled, 1e6);
}

}  // namespace
}  // namespace myelin::perf
