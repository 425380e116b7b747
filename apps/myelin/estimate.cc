// `myelin estimate`: the analytical performance model (src/perf/estimator).
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "apps/myelin/commands.h"
#include "myelin/perf/calibration.h"
#include "myelin/perf/calibration_report.h"
#include "myelin/perf/estimate_config.h"
#include "myelin/perf/estimate_report.h"
#include "myelin/perf/estimator.h"
#include "myelin/perf/report.h"

namespace myelin::cli {
namespace {

struct EstimateFlags {
  std::string config;
  std::string format = "md";
  std::string output;
  std::string now;
  std::string scaling;
  std::string calibrate;  // a `myelin bench serve` report
  std::string model;
  double connections = 64;
  perf::EstimatorParams p;  // flag values land here, applied only if given
  bool no_powers_of_two = false;
  bool no_1000 = false;
  double io_cap = 0, nic_cap = 0, app_cap = 0, target_ops = 0, wait_budget = 0, offered_load = 0;
  // Signed, so that "-5" is reported as -5 rather than wrapped to 2^64 - 5.
  long long batch_min = 1, batch_max = 65536;
};

int fail_usage(const Status& s) {
  std::fprintf(stderr, "myelin estimate: %s\n", s.to_string().c_str());
  return kExitUsage;
}

int emit(const std::string& text, const std::string& output) {
  if (output.empty() || output == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
  }
  if (Status s = perf::write_file_atomic(output, text); !s.ok()) {
    std::fprintf(stderr, "myelin estimate: %s\n", s.to_string().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

// `--calibrate FILE` or a [calibration] section with a file: predictions for
// `myelin serve` from what `myelin bench serve` measured.
int run_calibrated(const CLI::App& cmd, const EstimateFlags& f, perf::CalibrationSettings cs,
                   perf::Format format, std::string generated) {
  const auto given = [&cmd](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--calibrate")) cs.file = f.calibrate;
  if (given("--model")) cs.model = f.model;
  if (given("--connections")) {
    if (!(f.connections > 0))
      return fail_usage(
          invalid_argument("--connections: must be > 0, got " + std::to_string(f.connections)));
    cs.connections = f.connections;
  }
  if (given("--offered-load")) {
    if (!(f.offered_load > 0)) return fail_usage(invalid_argument("--offered-load: must be > 0"));
    cs.offered_load = f.offered_load;
  }
  if (given("--latency-budget-us")) cs.latency_budget_us = f.p.latency_budget_us;
  auto cal = perf::load_calibration(cs.file, cs.model);
  if (!cal) return fail_usage(cal.error());
  return emit(perf::render(perf::make_calibration_report(*cal, cs, std::move(generated)), format),
              f.output);
}

int run_estimate(const CLI::App& cmd, const EstimateFlags& f) {
  const auto given = [&cmd](const char* flag) { return cmd.count(flag) > 0; };

  const auto format = perf::parse_format(f.format);
  if (!format)
    return fail_usage(invalid_argument("--format: expected md or json, got '" + f.format + "'"));
  std::string generated = perf::utc_timestamp_now();
  if (given("--now")) {
    auto ts = perf::validate_timestamp(f.now);
    if (!ts) return fail_usage(ts.error().with_context("--now"));
    generated = *ts;
  }

  perf::CalibrationSettings cs;
  if (!f.config.empty()) {
    auto loaded = perf::load_calibration_settings(f.config, cs);
    if (!loaded) return fail_usage(loaded.error());
    cs = *loaded;
  }
  if (given("--calibrate") || !cs.file.empty())
    return run_calibrated(cmd, f, std::move(cs), *format, std::move(generated));
  if (given("--model") || given("--connections"))
    return fail_usage(invalid_argument(std::string(given("--model") ? "--model" : "--connections") +
                                       ": only with --calibrate (or a [calibration] file)"));

  // Defaults (the seed's), then the config file, then the flags given.
  perf::EstimatorParams p;
  if (!f.config.empty()) {
    auto loaded = perf::load_estimate_config(f.config, p);
    if (!loaded) return fail_usage(loaded.error());
    p = *loaded;
  }
  if (given("--cores")) p.cores = f.p.cores;
  if (given("--parallel-fraction")) p.parallel_fraction = f.p.parallel_fraction;
  if (given("--t-control-us")) p.t_control_us = f.p.t_control_us;
  if (given("--t-bridge-us")) p.t_bridge_us = f.p.t_bridge_us;
  if (given("--t-persist-us")) p.t_persist_us = f.p.t_persist_us;
  if (given("--t-data-us")) p.t_data_us = f.p.t_data_us;
  if (given("--io-cap")) p.io_cap = f.io_cap;
  if (given("--nic-cap")) p.nic_cap = f.nic_cap;
  if (given("--app-cap")) p.app_cap = f.app_cap;
  if (given("--latency-budget-us")) p.latency_budget_us = f.p.latency_budget_us;
  if (given("--target-ops")) p.target_ops = f.target_ops;
  if (given("--wait-budget-us")) p.wait_budget_us = f.wait_budget;
  if (given("--offered-load")) p.offered_load = f.offered_load;
  for (auto [flag, value, field] :
       {std::tuple{"--batch-min", f.batch_min, &perf::EstimatorParams::batch_min},
        std::tuple{"--batch-max", f.batch_max, &perf::EstimatorParams::batch_max}}) {
    if (!given(flag)) continue;
    if (value < 1)
      return fail_usage(
          invalid_argument(std::string(flag) + ": must be >= 1, got " + std::to_string(value)));
    p.*field = static_cast<std::uint64_t>(value);
  }
  if (f.no_powers_of_two) p.powers_of_two = false;
  if (f.no_1000) p.include_1000 = false;
  if (given("--scaling")) {
    const auto s = perf::parse_scaling(f.scaling);
    if (!s)
      return fail_usage(
          invalid_argument("--scaling: expected amdahl or split, got '" + f.scaling + "'"));
    p.scaling = *s;
  }

  auto est = perf::estimate(p);
  if (!est) return fail_usage(est.error());
  return emit(perf::render(perf::make_estimate_report(*est, generated), *format), f.output);
}

}  // namespace

void register_estimate(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<EstimateFlags>();
  CLI::App* cmd = app.add_subcommand(
      "estimate",
      "Analytical throughput/latency model of a batched pipeline (per-batch and per-message "
      "costs, Amdahl scaling, caps, batch-size optimiser). Defaults reproduce seed report 000.");
  auto& f = *flags;
  cmd->add_option("--config", f.config, "TOML or JSON (.json) file; keys are the flag names");
  cmd->add_option("--format", f.format, "Output format: md or json")->capture_default_str();
  cmd->add_option("-o,--output", f.output, "Write the report to FILE (default: stdout)");
  cmd->add_option("--now", f.now, "Fixed ISO 8601 timestamp for the report header");
  cmd->add_option("--cores", f.p.cores, "Cores (>= 1)")->capture_default_str();
  cmd->add_option("--parallel-fraction", f.p.parallel_fraction,
                  "Amdahl parallel fraction P in [0, 1]")
      ->capture_default_str();
  cmd->add_option("--t-control-us", f.p.t_control_us,
                  "Control-plane cost per batch, µs (seed: T_py)")
      ->capture_default_str();
  cmd->add_option("--t-bridge-us", f.p.t_bridge_us, "Bridge cost per batch, µs")
      ->capture_default_str();
  cmd->add_option("--t-persist-us", f.p.t_persist_us, "Persistence cost per batch, µs")
      ->capture_default_str();
  cmd->add_option("--t-data-us", f.p.t_data_us,
                  "Data-plane cost per message, µs (seed: T_rust/msg)")
      ->capture_default_str();
  cmd->add_option("--io-cap", f.io_cap, "IO throughput cap, ops/s (default: none)");
  cmd->add_option("--nic-cap", f.nic_cap, "NIC throughput cap, ops/s (default: none)");
  cmd->add_option("--app-cap", f.app_cap, "Application throughput cap, ops/s (default: none)");
  cmd->add_option("--latency-budget-us", f.p.latency_budget_us,
                  "Budget on amortised cost per message, µs")
      ->capture_default_str();
  cmd->add_option("--target-ops", f.target_ops, "Required throughput, ops/s (default: none)");
  cmd->add_option("--wait-budget-us", f.wait_budget,
                  "Budget on the worst-case wait of a message at the offered load, µs");
  cmd->add_option("--offered-load", f.offered_load,
                  "Offered load, msg/s (default: the best throughput)");
  cmd->add_option("--batch-min", f.batch_min, "Smallest candidate batch size")
      ->capture_default_str();
  cmd->add_option("--batch-max", f.batch_max, "Largest candidate batch size")
      ->capture_default_str();
  cmd->add_flag("--no-powers-of-two", f.no_powers_of_two,
                "Do not add the powers of two as candidates");
  cmd->add_flag("--no-1000", f.no_1000, "Do not add 1000 as a candidate");
  cmd->add_option("--scaling", f.scaling, "amdahl (whole pipeline scales, the seed's) or split")
      ->default_str("amdahl");
  cmd->add_option("--calibrate", f.calibrate,
                  "Predict `myelin serve` from a `myelin bench serve` report (reports/serve.json)");
  cmd->add_option("--model", f.model, "With --calibrate: the model (when the file has several)");
  cmd->add_option("--connections", f.connections,
                  "With --calibrate: closed-loop clients for the saturation figures")
      ->capture_default_str();
  cmd->callback([cmd, flags, &ctx] { ctx.exit_code = run_estimate(*cmd, *flags); });
}

}  // namespace myelin::cli
