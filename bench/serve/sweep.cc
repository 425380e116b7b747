#include "bench/serve/sweep.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace myelin::bench::serve_bench {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double error_pct(double predicted, double measured) {
  if (!(measured > 0) || !std::isfinite(predicted)) return std::numeric_limits<double>::infinity();
  return std::abs(predicted - measured) / measured * 100;
}

std::string setting_text(const CheckRow& r) {
  std::string s = r.model + ", max batch " + std::to_string(r.setting.max_batch);
  if (r.setting.max_batch > 1)
    s += ", delay " + std::to_string(static_cast<long long>(r.setting.max_delay_us)) + " µs";
  if (r.auto_choice) s += " (auto)";
  return s;
}

}  // namespace

const SweepPoint* calibration_point(const Sweep& s, const std::string& model) {
  for (const auto& p : s.points) {
    if (p.model == model && p.max_batch == 1 && !p.auto_choice) return &p;
  }
  return nullptr;
}

Result<nlohmann::json> calibration_json(const Sweep& s) {
  nlohmann::json cal = {{"cores", s.cores},
                        {"workers", s.workers},
                        {"connections", s.connections},
                        {"models", nlohmann::json::object()},
                        {"sweep", nlohmann::json::array()}};
  for (const auto& [model, m] : s.models) {
    const SweepPoint* one = calibration_point(s, model);
    if (!one) return failed_precondition("calibration of " + model + ": no max batch 1 point");
    auto fit = perf::fit_batch_cost(m.batch_compute);
    if (!fit) return fit.error().with_context("calibration of " + model);
    std::vector<double> client;
    for (const auto& p : s.points) {
      if (p.model == model && !p.auto_choice) client.push_back(p.client_cpu_us);
    }
    nlohmann::json bc = nlohmann::json::array();
    for (const auto& b : m.batch_compute) bc.push_back({{"batch", b.n}, {"us", b.us}});
    cal["models"][model] = {{"batch_compute", bc},
                            {"frontend_us", std::max(0.0, m.frontend_us)},
                            {"frontend_cpu_us", std::max(0.0, one->server_cpu_us - fit->at(1))},
                            {"client_cpu_us", median(client)}};
  }
  for (const auto& p : s.points) {
    nlohmann::json hist = nlohmann::json::array();
    for (const auto& [le, share] : p.batch_hist) {
      hist.push_back({{"le", std::isfinite(le) ? nlohmann::json(le) : nlohmann::json("+Inf")},
                      {"share", share}});
    }
    cal["sweep"].push_back({{"model", p.model},
                            {"max_batch", p.max_batch},
                            {"max_delay_us", p.max_delay_us},
                            {"auto", p.auto_choice},
                            {"rps", p.rps},
                            {"p50_us", p.p50_us},
                            {"p99_us", p.p99_us},
                            {"server_cpu_us", p.server_cpu_us},
                            {"client_cpu_us", p.client_cpu_us},
                            {"mean_batch", p.mean_batch},
                            {"batch_hist", hist}});
  }
  return cal;
}

double CheckRow::rps_error_pct() const { return error_pct(predicted_rps, measured_rps); }
double CheckRow::p50_error_pct() const { return error_pct(predicted_p50_us, measured_p50_us); }

harness::Target throughput_target() {
  return {"saturation throughput, |predicted - measured| / measured", 15, "%", "issue 24",
          harness::Better::kLower};
}
harness::Target p50_target() {
  return {"p50 latency, |predicted - measured| / measured", 25, "%", "issue 24",
          harness::Better::kLower};
}

Result<std::vector<CheckRow>> check_predictions(const Sweep& s, const nlohmann::json& calibration) {
  const std::string text = nlohmann::json{{"calibration", calibration}}.dump();
  std::map<std::string, perf::ServeCalibration> cals;
  for (const auto& [model, m] : s.models) {
    MYELIN_ASSIGN_OR_RETURN(cals[model], perf::parse_calibration(text, "data.calibration", model));
  }
  std::vector<CheckRow> rows;
  for (const auto& p : s.points) {
    const auto it = cals.find(p.model);
    if (it == cals.end()) continue;
    CheckRow r;
    r.model = p.model;
    r.setting = {p.max_batch, p.max_delay_us};
    r.calibration_point = p.max_batch == 1 && !p.auto_choice;
    r.auto_choice = p.auto_choice;
    const auto pred = perf::predict_saturation(it->second, r.setting, s.connections);
    r.measured_rps = p.rps;
    r.predicted_rps = pred.throughput;
    r.measured_p50_us = p.p50_us;
    r.predicted_p50_us = pred.p50_us;
    r.measured_batch = p.mean_batch;
    r.predicted_batch = pred.batch;
    rows.push_back(r);
  }
  return rows;
}

std::vector<harness::Check> to_checks(const std::vector<CheckRow>& rows) {
  std::vector<harness::Check> out;
  for (const auto& r : rows) {
    if (r.calibration_point) continue;
    harness::Target t = throughput_target();
    t.what = setting_text(r) + ": " + t.what;
    out.push_back({t, r.rps_error_pct(), ""});
    harness::Target l = p50_target();
    l.what = setting_text(r) + ": " + l.what;
    out.push_back({l, r.p50_error_pct(), ""});
  }
  return out;
}

}  // namespace myelin::bench::serve_bench
