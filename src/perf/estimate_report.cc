#include "myelin/perf/estimate_report.h"

#include <cmath>
#include <string>
#include <vector>

#include "myelin/perf/format.h"

namespace myelin::perf {
namespace {

std::string batch(std::uint64_t n) { return std::to_string(n); }

std::string ops(double r) { return std::isfinite(r) ? group_int(r) : "unbounded"; }

std::string cap_text(const std::optional<double>& cap) {
  return (cap ? group_int(*cap) : std::string("none")) + " ops/sec";
}

std::string us(double v) { return std::isfinite(v) ? fixed(v, 1) : "unbounded"; }

// A wait in the unit a person reads best: "702.1 µs", "7.31 ms".
std::string wait_text(double us_value) {
  if (!std::isfinite(us_value)) return "unbounded (the batch cannot keep up)";
  if (us_value >= 1000) return fixed(us_value / 1000, 2) + " ms";
  return fixed(us_value, 1) + " µs";
}

Cell num_cell(double v, std::string text) { return Cell::num(v, std::move(text)); }

nlohmann::json opt_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json finite_json(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json metrics_json(const BatchMetrics& m) {
  return {
      {"n", m.n},
      {"t_batch_us", m.t_batch_us},
      {"service_us", m.service_us},
      {"amortised_latency_us", m.amortised_us},
      {"throughput_1core_ops", finite_json(m.r1)},
      {"throughput_ops", finite_json(m.r)},
      {"capped", m.capped},
      {"keeps_up", m.keeps_up},
      {"fill_avg_us", finite_json(m.fill_avg_us)},
      {"fill_max_us", finite_json(m.fill_max_us)},
      {"wait_avg_us", finite_json(m.wait_avg_us)},
      {"wait_max_us", finite_json(m.wait_max_us)},
      {"within_latency_budget", m.within_latency_budget},
      {"meets_target", m.meets_target},
      {"within_wait_budget", m.within_wait_budget},
      {"feasible", m.feasible()},
  };
}

nlohmann::json estimate_json(const Estimate& e) {
  const EstimatorParams& p = e.params;
  nlohmann::json params = {
      {"cores", p.cores},
      {"parallel_fraction", p.parallel_fraction},
      {"t_control_us", p.t_control_us},
      {"t_bridge_us", p.t_bridge_us},
      {"t_persist_us", p.t_persist_us},
      {"t_data_us", p.t_data_us},
      {"io_cap", opt_json(p.io_cap)},
      {"nic_cap", opt_json(p.nic_cap)},
      {"app_cap", opt_json(p.app_cap)},
      {"latency_budget_us", p.latency_budget_us},
      {"target_ops", opt_json(p.target_ops)},
      {"wait_budget_us", opt_json(p.wait_budget_us)},
      {"offered_load", opt_json(p.offered_load)},
      {"batch_min", p.batch_min},
      {"batch_max", p.batch_max},
      {"powers_of_two", p.powers_of_two},
      {"include_1000", p.include_1000},
      {"scaling", std::string(to_string(p.scaling))},
  };
  nlohmann::json candidates = nlohmann::json::array();
  for (const BatchMetrics& m : e.candidates) candidates.push_back(metrics_json(m));
  nlohmann::json frontier = nlohmann::json::array();
  for (std::size_t i : e.frontier) frontier.push_back(e.candidates[i].n);
  nlohmann::json curve = nlohmann::json::array();
  for (const BatchMetrics& m : e.curve) curve.push_back(metrics_json(m));
  return {
      {"parameters", std::move(params)},
      {"speedup", e.speedup},
      {"ceiling_1core_ops", finite_json(e.ceiling_1core)},
      {"ceiling_scaled_ops", finite_json(e.ceiling_scaled)},
      {"offered_load", e.offered_load},
      {"offered_load_is_default", e.offered_load_is_default},
      {"best", e.best ? metrics_json(e.candidates[*e.best]) : nlohmann::json(nullptr)},
      {"frontier", std::move(frontier)},
      {"lowest_latency", metrics_json(e.candidates[e.lowest_latency])},
      {"highest_throughput", metrics_json(e.candidates[e.highest_throughput])},
      {"candidates", std::move(candidates)},
      {"curve", std::move(curve)},
  };
}

void add_parameters(Report& r, const Estimate& e) {
  const EstimatorParams& p = e.params;
  std::string load = group_int(e.offered_load) + " msg/s";
  if (e.offered_load_is_default) load += " (default: the best throughput)";
  r.add_section("System Parameters")
      .bullets({
          {"Cores", num_cell(p.cores, std::to_string(p.cores))},
          {"Parallel Fraction (P)", num_cell(p.parallel_fraction, param(p.parallel_fraction, 2))},
          {"T_control", num_cell(p.t_control_us, param(p.t_control_us, 1) + " µs")},
          {"T_bridge", num_cell(p.t_bridge_us, param(p.t_bridge_us, 1) + " µs")},
          {"T_persist", num_cell(p.t_persist_us, param(p.t_persist_us, 1) + " µs")},
          {"T_data/msg", num_cell(p.t_data_us, param(p.t_data_us, 1) + " µs")},
          {"IO cap", Cell::str(cap_text(p.io_cap))},
          {"NIC cap", Cell::str(cap_text(p.nic_cap))},
          {"APP cap", Cell::str(cap_text(p.app_cap))},
          {"Scaling", Cell::str(std::string(to_string(p.scaling)))},
          {"Offered load", num_cell(e.offered_load, load)},
      });
}

Table frontier_table(const Estimate& e) {
  Table t{{{"N"}, {"Throughput (ops/sec)"}, {"Latency (µs/msg)"}}, {}};
  for (std::size_t i : e.frontier) {
    const BatchMetrics& m = e.candidates[i];
    t.add_row({num_cell(static_cast<double>(m.n), batch(m.n)), num_cell(m.r, ops(m.r)),
               num_cell(m.amortised_us, fixed(m.amortised_us, 4))});
  }
  return t;
}

void add_batch_result(Report& r, const Estimate& e) {
  Section& s = r.add_section("Batch Optimization Result");
  if (e.best) {
    const BatchMetrics& b = e.candidates[*e.best];
    s.bullets({
        {"Optimal Batch Size N", num_cell(static_cast<double>(b.n), batch(b.n))},
        {"Throughput", num_cell(b.r, ops(b.r) + " ops/sec")},
        {"Effective Latency", num_cell(b.amortised_us, fixed(b.amortised_us, 4) + " µs/msg")},
        {"Wait at the offered load",
         Cell::str("avg " + wait_text(b.wait_avg_us) + ", max " + wait_text(b.wait_max_us))},
    });
    s.paragraph("Top feasible frontier:");
    s.table(frontier_table(e));
    return;
  }
  const BatchMetrics& lo = e.candidates[e.lowest_latency];
  const BatchMetrics& hi = e.candidates[e.highest_throughput];
  s.bullets({{"Optimal Batch Size N", Cell::str("none feasible")}});
  s.paragraph(
      "No candidate batch size meets every constraint (section 7). The nearest candidates:");
  Table t{{{"Fallback", Align::kLeft}, {"N"}, {"Throughput (ops/sec)"}, {"Latency (µs/msg)"}}, {}};
  for (auto [label, m] :
       {std::pair{"lowest amortised latency", &lo}, std::pair{"highest throughput", &hi}}) {
    t.add_row({Cell::str(label), num_cell(static_cast<double>(m->n), batch(m->n)),
               num_cell(m->r, ops(m->r)), num_cell(m->amortised_us, fixed(m->amortised_us, 4))});
  }
  s.table(std::move(t));
}

void add_curve(Report& r, const Estimate& e) {
  Table t{{{"Batch"},
           {"Throughput Scaled (ops/sec)"},
           {"Throughput 1-core (ops/sec)"},
           {"Latency (µs/msg)"}},
          {}};
  for (const BatchMetrics& m : e.curve) {
    t.add_row({num_cell(static_cast<double>(m.n), batch(m.n)), num_cell(m.r, ops(m.r)),
               num_cell(m.r1, ops(m.r1)), num_cell(m.amortised_us, fixed(m.amortised_us, 4))});
  }
  r.add_section("Performance Curve Table").table(std::move(t));
}

void add_constraints(Report& r, const Estimate& e) {
  const EstimatorParams& p = e.params;
  std::size_t feasible = 0;
  for (const BatchMetrics& m : e.candidates) feasible += m.feasible() ? 1 : 0;
  r.add_section("Constraint Diagnostics")
      .bullets({
          {"latency_budget_us", num_cell(p.latency_budget_us, param(p.latency_budget_us, 1))},
          {"target_ops_sec",
           p.target_ops ? num_cell(*p.target_ops, group_int(*p.target_ops)) : Cell::str("none")},
          {"batch range", Cell::str("[" + batch(p.batch_min) + ", " + batch(p.batch_max) + "]")},
          {"wait_budget_us", p.wait_budget_us
                                 ? num_cell(*p.wait_budget_us, param(*p.wait_budget_us, 1))
                                 : Cell::str("none")},
          {"feasible candidates",
           Cell::str(std::to_string(feasible) + " of " + std::to_string(e.candidates.size()))},
      });
}

void add_wait(Report& r, const Estimate& e) {
  Section& s = r.add_section("Wait Latency at the Offered Load");
  s.paragraph(
      "Amortised cost per message is not the time a message waits. At an offered load of " +
      group_int(e.offered_load) +
      " msg/s a message waits for its batch to fill ((N-1)/load at worst, half that on average) "
      "and then for the batch to be processed. A batch whose throughput is below the load cannot "
      "keep up: its queue, and so the wait, grows without bound.");
  Table t{{{"N"},
           {"Throughput (ops/sec)"},
           {"Batch service (µs)"},
           {"Fill avg (µs)"},
           {"Wait avg (µs)"},
           {"Wait max (µs)"},
           {"Keeps up", Align::kLeft}},
          {}};
  for (const BatchMetrics& m : e.candidates) {
    t.add_row({num_cell(static_cast<double>(m.n), batch(m.n)), num_cell(m.r, ops(m.r)),
               num_cell(m.service_us, us(m.service_us)), num_cell(m.fill_avg_us, us(m.fill_avg_us)),
               num_cell(m.wait_avg_us, us(m.wait_avg_us)),
               num_cell(m.wait_max_us, us(m.wait_max_us)), Cell::str(m.keeps_up ? "yes" : "no")});
  }
  s.table(std::move(t));

  // The seed's own choice: highest throughput under the amortised budget alone.
  const BatchMetrics* seed_choice = nullptr;
  for (const BatchMetrics& m : e.candidates) {
    if (m.within_latency_budget && m.meets_target && (!seed_choice || m.r > seed_choice->r))
      seed_choice = &m;
  }
  if (seed_choice) {
    std::string text = "Optimising amortised cost alone picks N=" + batch(seed_choice->n) + " at " +
                       fixed(seed_choice->amortised_us, 4) +
                       " µs/msg; at this load a message then waits " +
                       wait_text(seed_choice->wait_avg_us) + " on average and " +
                       wait_text(seed_choice->wait_max_us) + " at worst";
    if (std::isfinite(seed_choice->wait_avg_us) && seed_choice->amortised_us > 0) {
      text += ", " + group_int(seed_choice->wait_avg_us / seed_choice->amortised_us) +
              "x its amortised figure";
    }
    text += ". Set --wait-budget-us (and --offered-load) to optimise the wait instead.";
    s.paragraph(std::move(text));
  }
}

void add_recommendations(Report& r, const Estimate& e) {
  const EstimatorParams& p = e.params;
  std::vector<Bullet> items;
  const double fixed_cost = p.t_control_us + p.t_bridge_us + p.t_persist_us;
  if (p.t_persist_us == 0) {
    items.push_back(
        {"Profile detected",
         Cell::str("transport (no persistence). The per-batch cost (" + param(fixed_cost, 1) +
                   " µs) is paid once per batch, so batching pays until N * T_data/msg dwarfs it "
                   "(N >> " +
                   group_int(p.t_data_us > 0 ? fixed_cost / p.t_data_us : 0) +
                   "); past that, larger batches only add waiting."),
         false});
  } else {
    items.push_back(
        {"Profile detected",
         Cell::str("persisted (T_persist = " + param(p.t_persist_us, 1) +
                   " µs per batch). Persistence throughput, not compute, usually sets the "
                   "limit: measure it and give it as --io-cap."),
         false});
  }
  if (e.best) {
    const BatchMetrics& b = e.candidates[*e.best];
    items.push_back({"Batch size",
                     Cell::str("use N=" + batch(b.n) + " as the default candidate (" + ops(b.r) +
                               " ops/sec); at " + group_int(e.offered_load) +
                               " msg/s a message waits " + wait_text(b.wait_avg_us) +
                               " on average. Verify with `myelin bench` and "
                               "real queue depths."),
                     false});
  } else {
    items.push_back({"Batch size",
                     Cell::str("nothing is feasible: relax --latency-budget-us, --target-ops or "
                               "--wait-budget-us, or reduce the per-batch cost."),
                     false});
  }
  if (p.t_persist_us > 0 && !p.io_cap) {
    items.push_back(
        {"Warning",
         Cell::str("persistence is modelled with no IO cap, so throughput is bounded by "
                   "compute alone and is likely optimistic."),
         false});
  }
  if (!p.target_ops) {
    items.push_back({"Target",
                     Cell::str("set --target-ops in CI profiles so that a throughput objective is "
                               "enforced, not only reported."),
                     false});
  }
  r.add_section("Final Recommendation").bullets(std::move(items));
}

}  // namespace

Report make_estimate_report(const Estimate& e, std::string generated) {
  Report r;
  r.title = "myelin Performance Estimate";
  r.generated = std::move(generated);
  r.method = "Formula-based estimator (not runtime benchmark)";
  r.add_section("Header Metadata")
      .bullets({{"Document", Cell::str("MYELIN-PERF-ESTIMATE")}, {"Method", Cell::str(r.method)}});
  add_parameters(r, e);
  r.add_section("Amdahl Scaling Summary")
      .bullets({{"Speedup S(cores=" + std::to_string(e.params.cores) +
                     ", P=" + param(e.params.parallel_fraction, 2) + ")",
                 num_cell(e.speedup, fixed(e.speedup, 2) + "x"), true, " = "}});
  r.add_section("Data-plane Ceiling Analysis")
      .bullets({
          {"Single-core data-plane ceiling",
           num_cell(e.ceiling_1core, ops(e.ceiling_1core) + " ops/sec")},
          {"Scaled data-plane ceiling (after Amdahl + caps)",
           num_cell(e.ceiling_scaled, ops(e.ceiling_scaled) + " ops/sec")},
      });
  add_batch_result(r, e);
  add_curve(r, e);
  add_constraints(r, e);
  add_wait(r, e);
  add_recommendations(r, e);
  r.footer =
      "This report is an analytical model; reconcile it with measured figures (`myelin bench`) "
      "and production telemetry.";
  r.data = estimate_json(e);
  return r;
}

}  // namespace myelin::perf
