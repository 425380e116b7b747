#include "myelin/perf/calibration_report.h"

#include <cmath>
#include <vector>

#include "myelin/perf/format.h"

namespace myelin::perf {
namespace {

Cell us(double v) { return std::isfinite(v) ? Cell::num(v, fixed(v, 1)) : Cell::str("unbounded"); }
Cell rate(double v) { return Cell::num(v, group_int(v)); }

std::vector<BatcherSetting> settings_of(const CalibrationSettings& s) {
  std::vector<BatcherSetting> out;
  for (std::uint64_t b : s.max_batches) {
    if (b == 1) {
      out.push_back({1, 0});  // no batch forms: the delay cannot matter
      continue;
    }
    for (double d : s.max_delays_us) out.push_back({b, d});
  }
  return out;
}

}  // namespace

Report make_calibration_report(const ServeCalibration& c, const CalibrationSettings& settings,
                               std::string generated) {
  Report r;
  r.title = "myelin estimate --calibrate: " + c.model + " on the machine that measured " + c.origin;
  r.generated = std::move(generated);
  r.method =
      "T(n) = fixed + n * per_row fitted by least squares to the in-process batch compute times; "
      "the formulas are in docs/estimator.md";
  nlohmann::json data;
  data["model"] = c.model;
  data["fit"] = {{"fixed_us", c.fit.fixed_us}, {"per_row_us", c.fit.per_row_us}, {"r2", c.fit.r2}};

  auto& cal = r.add_section("Calibration");
  cal.bullets(
      {{"model", Cell::str(c.model)},
       {"cores, workers", Cell::str(std::to_string(c.cores) + ", " + std::to_string(c.workers))},
       {"per-batch fixed cost", Cell::num(c.fit.fixed_us, fixed(c.fit.fixed_us, 2) + " µs")},
       {"per-row cost", Cell::num(c.fit.per_row_us, fixed(c.fit.per_row_us, 3) + " µs")},
       {"fit r²", Cell::num(c.fit.r2, fixed(c.fit.r2, 4))},
       {"front end, latency per request",
        Cell::num(c.frontend_us, fixed(c.frontend_us, 1) + " µs")},
       {"front end, CPU per request",
        Cell::num(c.frontend_cpu_us, fixed(c.frontend_cpu_us, 1) + " µs")},
       {"load generator, CPU per request",
        Cell::num(c.client_cpu_us, fixed(c.client_cpu_us, 1) + " µs")}});
  Table fit{{{"batch"}, {"measured µs"}, {"fitted µs"}, {"error"}}, {}};
  for (const auto& s : c.batch_compute) {
    const double f = c.fit.at(s.n);
    const double e = s.us > 0 ? (f - s.us) / s.us * 100 : 0;
    fit.add_row({Cell::num(s.n, group_int(s.n)), us(s.us), us(f), Cell::num(e, fixed(e, 1) + "%")});
  }
  cal.table(std::move(fit));

  Table pred{{{"max batch"},
              {"max delay µs"},
              {"batch (closed)"},
              {"saturation req/s"},
              {"p50 µs (closed)"},
              {"bound", Align::kLeft},
              {"offered req/s"},
              {"batch (open)"},
              {"wait µs (open)"}},
             {}};
  for (const BatcherSetting& s : settings_of(settings)) {
    const auto sat = predict_saturation(c, s, settings.connections);
    const double offered = settings.offered_load.value_or(sat.throughput / 2);
    const auto w = predict_wait(c, s, offered);
    pred.add_row({Cell::num(static_cast<double>(s.max_batch), std::to_string(s.max_batch)),
                  Cell::num(s.max_delay_us, group_int(s.max_delay_us)),
                  Cell::num(sat.batch, fixed(sat.batch, 1)), rate(sat.throughput), us(sat.p50_us),
                  Cell::str(sat.cpu_bound ? "cores" : "workers"), rate(offered),
                  Cell::num(w.batch, fixed(w.batch, 2)), us(w.wait_us)});
    data["predictions"].push_back(
        {{"max_batch", s.max_batch},
         {"max_delay_us", s.max_delay_us},
         {"saturation_rps", sat.throughput},
         {"p50_us", sat.p50_us},
         {"offered_rps", offered},
         {"wait_us",
          std::isfinite(w.wait_us) ? nlohmann::json(w.wait_us) : nlohmann::json(nullptr)}});
  }
  r.add_section("Predicted per batcher setting")
      .paragraph("Closed loop with " + group_int(settings.connections) +
                 " connections (the load generator's CPU on the same cores); open loop with "
                 "random arrivals at the offered rate (default: half the setting's saturation).")
      .table(std::move(pred));

  if (settings.latency_budget_us) {
    const auto cands = settings_of(settings);
    auto rec = recommend(c, cands, *settings.latency_budget_us, settings.offered_load);
    auto& sec = r.add_section("Recommendation");
    if (rec) {
      sec.paragraph(rec->why);
      data["recommendation"] = {{"max_batch", rec->setting.max_batch},
                                {"max_delay_us", rec->setting.max_delay_us},
                                {"wait_us", rec->wait.wait_us}};
    } else {
      sec.paragraph(std::string(rec.error().message()));
      data["recommendation"] = nullptr;
    }
  }
  r.data = std::move(data);
  return r;
}

}  // namespace myelin::perf
