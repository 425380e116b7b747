// The measurements behind `myelin bench eventloop`, separate from the report
// layout (eventloop_bench.cc) and from the contenders (eventloop_contenders.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"

namespace myelin::bench {

struct ScenarioSizes {
  std::vector<int> producers{1, 2, 4, 8, 16, 32};
  std::size_t submit_ops = 0;
  int submit_reps = 0;
  int awake_rounds = 1;  // interleaved rounds for submit, awake round trip, burst, floor
  int rt_awake_samples = 0;
  int rt_asleep_samples = 0;
  std::vector<int> bursts{64, 128, 256, 512, 1024, 2048, 4096};
  std::size_t burst_tasks = 0;
  std::vector<std::size_t> budgets{64, 128, 256, 512, 1024, 2048, 4096};
  int sweep_burst = 4096;
  int sweep_task_work = 40;
  int sweep_ms = 0;
  int sweep_timer_us = 200;
  std::size_t continuous_per_producer = 0;
  int continuous_reps = 0;
  std::vector<int> mixed_bursts{100, 500, 1000, 2000, 5000};
  int mixed_reps = 0;

  static ScenarioSizes quick();
  static ScenarioSizes full();
};

struct BudgetRow {
  std::size_t budget = 0;
  double ns_per_op = 0;
  LatencySummary lateness;
  std::uint64_t overloads = 0;
};

// One interleaved round of the awake scenarios: the machine's state then.
struct AwakeRound {
  double floor_p50 = 0;           // cross-core ping-pong, ns
  double myelin_submit1 = 0;      // ns/op, 1 producer
  double myelin_rt_p50 = 0;       // ns
  double myelin_burst_last = 0;   // ns/op, the largest burst
  double unpaced_burst_last = 0;  // the same with pacing off
};

// myelin with pacing off (chase_slip 0) beside the default, same rounds.
struct PacingAblation {
  Nanos slip{0};                  // the default chase_slip measured against
  std::vector<double> burst_ns;   // [burst], pacing off
  LatencySummary awake;           // awake round trip, pacing off
  double continuous_ns = 0;       // pacing off
  std::uint64_t burst_slips = 0;  // pacing waits of the default loop during its bursts
  std::uint64_t burst_tasks = 0;  // tasks those bursts ran
};

struct TournamentResults {
  std::vector<std::string> names, designs, park_checks;
  std::vector<std::vector<double>> submit_ns;  // [contender][producer count]
  std::vector<LatencySummary> awake, asleep;
  std::vector<std::uint64_t> asleep_unverified;
  std::vector<std::vector<double>> burst_ns;  // [contender][burst]
  std::vector<BudgetRow> budget;
  std::vector<double> continuous_ns;
  std::vector<std::vector<double>> mixed_ns;         // [contender][burst]
  LatencySummary floor;                              // cross-core atomic ping-pong, no loop
  std::uint64_t awake_wakeups = 0, awake_polls = 0;  // myelin, during the awake round trips
  std::vector<AwakeRound> rounds;
  PacingAblation pacing;
  std::string explanation;  // where targets were missed, and why

  [[nodiscard]] nlohmann::json to_json() const;
};

Result<TournamentResults> run_tournament(const ScenarioSizes& sizes);

}  // namespace myelin::bench
