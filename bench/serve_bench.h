// `myelin bench serve`: what it measures (serve_bench.cc) and how the
// results become reports/serve.md (serve_report.cc). Measure -> results ->
// render: every figure is entered once, in ServeResults, and targets are
// data whose verdicts are computed from it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/serve/sweep.h"
#include "myelin/perf/report.h"

namespace myelin::bench::serve_bench {

struct Load {  // one closed-loop (wrk) run, or the median of several rounds
  double rps = 0;
  double p50_us = 0, p99_us = 0;
  double cpu_us_per_request = 0;  // server process group, user + system
  double non_2xx = 0;
  double requests = 0;  // completed in the run (not carried through median_load)
};

struct OpenLoop {  // one fixed-rate run (open_loop)
  double offered_rps = 0, achieved_rps = 0;
  std::optional<double> p50_us, p99_us, p999_us;         // nullopt: a request never answered
  double ok = 0, refused = 0, timed_out = 0, other = 0;  // 200, 503, 504, the rest
  std::optional<double> ok_p99_us, refused_p99_us;
  std::optional<double> send_lag_p99_us;  // how late the generator itself sent
};

struct Peer {
  std::string key;    // "myelin", "fastapi1", ...
  std::string label;  // "FastAPI + uvicorn (1 worker)"
  std::string version;
  bool ran = false;
  std::string why_not;  // when it did not run
};

struct ServeResults {
  std::vector<Peer> peers;
  std::vector<std::string> models;  // logistic_regression, trees, mlp
  std::map<std::string, std::string> model_desc;
  int rounds = 0;
  // saturation[model][peer]; nginx under model "" (the HTTP floor)
  std::map<std::string, std::map<std::string, Load>> saturation;
  std::vector<std::map<std::string, double>> saturation_rounds_lr;  // per round: peer -> rps
  // One connection, sequential, logistic regression.
  double rtt_myelin_p50_us = 0, rtt_myelin_p99_us = 0, rtt_nginx_p50_us = 0, rtt_nginx_p99_us = 0;
  double server_p50_us = 0, server_p99_us = 0;  // myelin's own request_duration histogram
  double ready_p50_us = 0, ready_p99_us = 0;    // its response_ready_duration (before the write)
  double compute_p50_us = 0;                    // Model::predict, batch 1, in process
  std::size_t rtt_samples = 0;
  // Open loop at half of myelin's saturation, per model.
  std::map<std::string, OpenLoop> half_load;
  // Largest offered load with p99 <= 1 ms: steps[model][peer] = runs in rate order.
  std::map<std::string, std::map<std::string, std::vector<OpenLoop>>> steps;
  // Batching on (max batch 64) vs off (max batch 1), per model.
  struct Batching {
    Load on, off;
    double mean_batch = 0;
    std::vector<std::pair<double, double>> batch_hist;  // (le, share of batches)
    double batch_compute_us = 0;                        // mean per batch, batching on
    double off_compute_us = 0;                          // mean per batch (= row), batching off
    double max_delay_us = 0;
  };
  std::map<std::string, Batching> batching;
  // MLP, JSON vs binary tensors.
  Load mlp_json, mlp_binary;
  double mlp_json_server_p50_us = 0, mlp_binary_server_p50_us = 0;
  std::size_t mlp_json_bytes = 0, mlp_binary_bytes = 0;
  // Start-up to ready and RSS with the three models.
  std::map<std::string, double> startup_ms, rss_mb;
  // Idle keep-alive connections.
  std::size_t idle_connections = 0;
  double idle_rss_before_mb = 0, idle_rss_after_mb = 0;
  // Twice saturation with a bounded queue: the MLP, whose saturation is the
  // HTTP layer's, and mlp_wide, whose saturation is its compute's (the one the
  // bounded queue is for).
  struct Overload {
    std::string model;
    bool compute_bound = false;
    OpenLoop run;
    double sat_rps = 0;
    double rss_min_mb = 0, rss_max_mb = 0;
  };
  std::vector<Overload> overloads;
  std::size_t overload_queue = 0;
  double overload_budget_us = 0;
  std::string method_notes;
  // The batch-size sweep (bench/serve/sweep.h), the calibration written
  // from it (data.calibration) and the calibrated estimator's check.
  Sweep sweep;
  nlohmann::json calibration;
  std::vector<CheckRow> calibration_check;
  std::string sweep_error;  // why the sweep or its check did not run
};

perf::Report render(const ServeResults& r);
// The sweep's sections and data (bench/serve/sweep_report.cc).
void render_sweep(const ServeResults& r, perf::Report& report, nlohmann::json& data);

}  // namespace myelin::bench::serve_bench
