// The sweep's sections of reports/serve.md and its data.calibration: the
// measured batch-size sweep, the fitted costs, and the calibrated
// estimator's predictions against the measurements with computed verdicts.
#include <cmath>
#include <cstdio>

#include "bench/serve_bench.h"

namespace myelin::bench::serve_bench {
namespace {

std::string fmt(double v, int digits) {
  if (!std::isfinite(v)) return "inf";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
perf::Cell num(double v, int digits) { return perf::Cell::num(v, fmt(v, digits)); }

std::string hist_text(const std::vector<std::pair<double, double>>& hist) {
  std::string out;
  double prev = 0;
  for (const auto& [le, share] : hist) {
    if (share >= 0.005) {
      // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on
      // "literal" + std::string temporaries here.
      if (!out.empty()) out.append(", ");
      const bool bounded = std::isfinite(le) && le < 1e9;
      out.append(bounded ? "<=" : ">");
      out.append(fmt(bounded ? le : prev, 0));
      out.append(": ");
      out.append(fmt(share * 100, 0));
      out.append("%");
    }
    prev = le;
  }
  return out;
}

}  // namespace

void render_sweep(const ServeResults& r, perf::Report& report, nlohmann::json& data) {
  auto& sec = report.add_section("Batch-size sweep and the calibrated estimator");
  if (!r.sweep_error.empty()) {
    sec.paragraph("The sweep did not complete: " + r.sweep_error);
    return;
  }
  const Sweep& sw = r.sweep;
  sec.paragraph(
      "myelin serve with each batcher setting (one server per setting, --workers " +
      std::to_string(sw.workers) + "), wrk -t1 -c" + std::to_string(sw.connections) +
      " per model. Batch sizes from the server's myelin_inference_batch_size histogram; server "
      "CPU from /proc, wrk's from getrusage(RUSAGE_CHILDREN), both per completed request.");
  perf::Table st{{{"Model", perf::Align::kLeft},
                  {"max batch"},
                  {"max delay µs"},
                  {"req/s"},
                  {"p50 µs"},
                  {"p99 µs"},
                  {"server CPU µs/req"},
                  {"wrk CPU µs/req"},
                  {"mean batch"},
                  {"batch sizes (share of batches)", perf::Align::kLeft}},
                 {}};
  for (const auto& p : sw.points) {
    st.add_row({perf::Cell::str(p.model + (p.auto_choice ? " (auto)" : "")),
                num(static_cast<double>(p.max_batch), 0), num(p.max_delay_us, 0), num(p.rps, 0),
                num(p.p50_us, 0), num(p.p99_us, 0), num(p.server_cpu_us, 1),
                num(p.client_cpu_us, 1), num(p.mean_batch, 1),
                perf::Cell::str(hist_text(p.batch_hist))});
  }
  sec.table(std::move(st));

  perf::Table ft{{{"Model", perf::Align::kLeft},
                  {"fixed µs/batch"},
                  {"per-row µs"},
                  {"r²"},
                  {"front end µs (latency)"},
                  {"front end CPU µs/req"},
                  {"wrk CPU µs/req"}},
                 {}};
  for (const auto& [model, m] : r.calibration["models"].items()) {
    auto fit = perf::fit_batch_cost(r.sweep.models.at(model).batch_compute);
    if (!fit) continue;  // calibration_json() fitted the same samples
    ft.add_row({perf::Cell::str(model), num(fit->fixed_us, 2), num(fit->per_row_us, 3),
                num(fit->r2, 4), num(m["frontend_us"].get<double>(), 1),
                num(m["frontend_cpu_us"].get<double>(), 1),
                num(m["client_cpu_us"].get<double>(), 1)});
  }
  sec.paragraph(
         "Fitted by least squares (T(n) = fixed + n · per_row) to the median compute of one "
         "batch of 1, 2, 4, ..., 64 rows, the model run in process; the front end's latency is "
         "the server's request duration p50 at max batch 1 on one sequential connection minus "
         "T(1), its CPU the server CPU per request at max batch 1 minus T(1). "
         "`myelin estimate --calibrate reports/serve.json --model NAME` reads these figures.")
      .table(std::move(ft));

  perf::Table ct{{{"Model, setting", perf::Align::kLeft},
                  {"req/s measured"},
                  {"predicted"},
                  {"error"},
                  {"p50 µs measured"},
                  {"predicted"},
                  {"error"},
                  {"batch measured"},
                  {"predicted"}},
                 {}};
  for (const auto& c : r.calibration_check) {
    std::string what = c.model + ", " + std::to_string(c.setting.max_batch);
    if (c.setting.max_batch > 1) what += " / " + fmt(c.setting.max_delay_us, 0) + " µs";
    if (c.calibration_point) what += " (calibration point)";
    if (c.auto_choice) what += " (auto)";
    ct.add_row({perf::Cell::str(what), num(c.measured_rps, 0), num(c.predicted_rps, 0),
                perf::Cell::num(c.rps_error_pct(), fmt(c.rps_error_pct(), 1) + "%"),
                num(c.measured_p50_us, 0), num(c.predicted_p50_us, 0),
                perf::Cell::num(c.p50_error_pct(), fmt(c.p50_error_pct(), 1) + "%"),
                num(c.measured_batch, 1), num(c.predicted_batch, 1)});
  }
  const auto checks = to_checks(r.calibration_check);
  perf::Table vt{{{"Target", perf::Align::kLeft}, {"Measured"}, {"Goal"}, {"Verdict"}}, {}};
  int met = 0;
  for (const auto& c : checks) {
    const auto v = harness::judge(c.target, c.measured.value_or(std::nan("")));
    met += v.met ? 1 : 0;
    vt.add_row({perf::Cell::str(c.target.what),
                perf::Cell::num(*c.measured, fmt(*c.measured, 1) + " " + c.target.unit),
                perf::Cell::num(c.target.goal, "<= " + fmt(c.target.goal, 0) + " " + c.target.unit +
                                                   " (" + c.target.source + ")"),
                perf::Cell::str(v.met ? v.text : "**" + v.text + "**")});
    data["calibration_targets"].push_back({{"what", c.target.what},
                                           {"goal", c.target.goal},
                                           {"unit", c.target.unit},
                                           {"source", c.target.source},
                                           {"better", harness::to_string(c.target.better)},
                                           {"measured", *c.measured},
                                           {"met", v.met},
                                           {"verdict", v.text}});
  }
  sec.paragraph(
         "Predicted by perf::predict_saturation from data.calibration alone (docs/estimator.md): "
         "batch = min(max batch, connections / (workers + 1)), throughput = min(cores · 10⁶ / "
         "(front end CPU + T(b)/b + wrk CPU), workers · 10⁶ · b / T(b)), p50 = connections / "
         "throughput. Max batch 1 is where the front end was calibrated, so it is shown but not "
         "judged. " +
         std::to_string(met) + " of " + std::to_string(checks.size()) + " checks met.")
      .table(std::move(ct))
      .table(std::move(vt));
  for (const auto& p : sw.points) {
    if (!p.auto_choice) continue;
    sec.paragraph("`myelin serve --max-batch auto --latency-budget-us " +
                  fmt(sw.auto_budget_us, 0) + " --calibration-model " + p.model +
                  "`, given this run's calibration, chose max "
                  "batch " +
                  std::to_string(p.max_batch) + " with a " + fmt(p.max_delay_us, 0) +
                  " µs delay (its log line gives the reason); measured with the same wrk load: " +
                  fmt(p.rps, 0) + " req/s, p50 " + fmt(p.p50_us, 0) + " µs, p99 " +
                  fmt(p.p99_us, 0) + " µs (rows marked auto).");
  }
  data["calibration"] = r.calibration;
}

}  // namespace myelin::bench::serve_bench
