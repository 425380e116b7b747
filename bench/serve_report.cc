// reports/serve.md from ServeResults: tables, targets as data, verdicts
// computed from the measurements.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bench/serve_bench.h"

namespace myelin::bench::serve_bench {
namespace {

std::string fmt(double v, int digits = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
perf::Cell num(double v, int digits = 1) { return perf::Cell::num(v, fmt(v, digits)); }
perf::Cell us(double v) { return perf::Cell::num(v, fmt(v, v < 100 ? 1 : 0) + " µs"); }
perf::Cell us(const std::optional<double>& v) { return v ? us(*v) : perf::Cell::str("unanswered"); }
perf::Cell rps(double v) { return perf::Cell::num(v, fmt(v, 0)); }
perf::Cell times(double v) { return perf::Cell::num(v, fmt(v, v < 10 ? 2 : 1) + "x"); }

struct Target {
  std::string what;
  double measured = 0;
  double goal = 0;
  std::string unit;
  bool at_least = true;  // measured >= goal passes; else measured <= goal
  std::string source;
  [[nodiscard]] bool met() const { return at_least ? measured >= goal : measured <= goal; }
};

const Peer* peer(const ServeResults& r, const std::string& key) {
  for (const auto& p : r.peers) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

double sat(const ServeResults& r, const std::string& model, const std::string& key) {
  auto m = r.saturation.find(model);
  if (m == r.saturation.end()) return 0;
  auto k = m->second.find(key);
  return k == m->second.end() ? 0 : k->second.rps;
}

// The largest offered load whose p99 held <= 1 ms.
std::optional<OpenLoop> largest_under_1ms(const std::vector<OpenLoop>& steps) {
  std::optional<OpenLoop> best;
  for (const auto& s : steps) {
    if (s.p99_us && *s.p99_us <= 1000) best = s;
  }
  return best;
}

std::vector<Target> targets(const ServeResults& r) {
  std::vector<Target> t;
  const std::string lr = "logistic_regression";
  const double my = sat(r, lr, "myelin");
  const double fast = std::max(sat(r, lr, "fastapi1"), sat(r, lr, "fastapi2"));
  t.push_back({"LR over OIP JSON, saturation: myelin / nginx return 200", my / sat(r, "", "nginx"),
               0.5, "x", true, "issue: >= 50% of nginx"});
  if (fast > 0) {
    t.push_back({"LR saturation: myelin / best FastAPI + uvicorn", my / fast, 20, "x", true,
                 "issue: >= 20x FastAPI"});
  }
  if (sat(r, lr, "node") > 0) {
    t.push_back({"LR saturation: myelin / Node + onnxruntime-node", my / sat(r, lr, "node"), 4, "x",
                 true, "issue: >= 4x Node"});
  }
  t.push_back({"one connection, round trip p50 (µs), goal = nginx p50 + compute + 10",
               r.rtt_myelin_p50_us, r.rtt_nginx_p50_us + r.compute_p50_us + 10, "µs", false,
               "issue"});
  t.push_back({"server-side time p50 (µs, own histogram), goal = 5 + compute", r.server_p50_us,
               5 + r.compute_p50_us, "µs", false, "issue"});
  for (const auto& [model, o] : r.half_load) {
    t.push_back({"open loop at half saturation, p99 (µs): " + model, o.p99_us.value_or(1e9), 1000,
                 "µs", false, "issue: <= 1 ms"});
  }
  if (auto b = r.batching.find("mlp"); b != r.batching.end() && b->second.off.rps > 0) {
    t.push_back({"MLP saturation: batching on / off", b->second.on.rps / b->second.off.rps, 1.5,
                 "x", true, "issue: >= 1.5x"});
    t.push_back({"MLP p99 with batching (µs), goal = max delay + 2 batches' compute",
                 b->second.on.p99_us, b->second.max_delay_us + 2 * b->second.batch_compute_us, "µs",
                 false, "issue"});
  }
  // The bounded queue is judged where it is the limit: the compute-bound model.
  for (const auto& ov : r.overloads) {
    if (!ov.compute_bound) continue;
    const std::string m = " (" + ov.model + ")";
    t.push_back({"2x saturation: refusals answered, p99 (µs)" + m,
                 ov.run.refused_p99_us.value_or(ov.run.refused > 0 ? 1e9 : 0), 1000, "µs", false,
                 "issue: < 1 ms"});
    t.push_back({"2x saturation: admitted p99 (µs), goal = the configured timeout" + m,
                 ov.run.ok_p99_us.value_or(1e9), r.overload_budget_us, "µs", false, "issue"});
    if (ov.rss_min_mb > 0) {
      t.push_back({"2x saturation: RSS max / min" + m, ov.rss_max_mb / ov.rss_min_mb, 1.1, "x",
                   false, "issue: flat (within 10%)"});
    }
  }
  if (auto it = r.rss_mb.find("myelin"); it != r.rss_mb.end()) {
    t.push_back(
        {"RSS serving the three models (MB)", it->second, 30, "MB", false, "issue: <= 30 MB"});
  }
  if (r.idle_connections > 0) {
    t.push_back({"RSS per idle keep-alive connection (KB)",
                 (r.idle_rss_after_mb - r.idle_rss_before_mb) * 1e3 /
                     static_cast<double>(r.idle_connections),
                 5, "KB", false, "issue: <= 5 KB"});
  }
  return t;
}

// 20x FastAPI needs a server faster than the HTTP floor whenever nginx's
// own rate is under 20x FastAPI's: say so with this run's figures.
std::string floor_note(const ServeResults& r) {
  const double floor = sat(r, "", "nginx");
  const double fast = std::max(sat(r, "logistic_regression", "fastapi1"),
                               sat(r, "logistic_regression", "fastapi2"));
  if (floor <= 0 || fast <= 0) return "";
  return " nginx's return 200 is itself " + fmt(floor / fast, 1) +
         "x FastAPI's logistic-regression rate in this run: a 20x ratio would take a server "
         "faster than this machine's HTTP floor.";
}

}  // namespace

perf::Report render(const ServeResults& r) {
  perf::Report report;
  report.title = "myelin Benchmark: serve (seed 004's server, end to end over HTTP)";
  report.generated = perf::utc_timestamp_now();
  report.machine = perf::MachineInfo::detect();
  report.method =
      "Every server runs on this machine and listens on 127.0.0.1; the load generators share the "
      "same 2 cores, so ratios measured in the same run are what count. Closed loop: wrk -t1 "
      "(bench/serve/oip_post.lua), keep-alive, " +
      std::to_string(r.rounds) +
      " interleaved rounds (every server once per round; medians reported). Open loop: "
      "bench/serve/open_loop.cc, each request's latency counted from its scheduled send time. "
      "Server CPU: user + system time of the server's process group from /proc, divided by the "
      "requests wrk completed. Same models for every server: trained by "
      "bench/serve/make_models.py with scikit-learn; FastAPI serves the pickled estimators, "
      "myelin and Node the same ONNX files.";
  nlohmann::json data;
  if (r.peers.empty()) {  // `--only sweep`: the sweep alone
    report.method = "`myelin bench serve --only sweep`: the batch-size sweep alone.";
    render_sweep(r, report, data);
    report.data = std::move(data);
    return report;
  }

  // Targets.
  perf::Table tt{{{"Target", perf::Align::kLeft}, {"Measured"}, {"Goal"}, {"Verdict"}}, {}};
  int met = 0;
  const auto ts = targets(r);
  for (const auto& t : ts) {
    met += t.met() ? 1 : 0;
    tt.add_row(
        {perf::Cell::str(t.what), num(t.measured, t.unit == "x" ? 2 : 1),
         perf::Cell::num(t.goal, (t.at_least ? ">= " : "<= ") + fmt(t.goal, 1) + " " + t.unit),
         perf::Cell::str(t.met() ? "met" : "**missed**")});
    data["targets"].push_back({{"what", t.what},
                               {"measured", t.measured},
                               {"goal", t.goal},
                               {"unit", t.unit},
                               {"at_least", t.at_least},
                               {"met", t.met()}});
  }
  report
      .add_section("Targets (" + std::to_string(met) + " of " + std::to_string(ts.size()) +
                   " met in this run)")
      .table(std::move(tt));

  // Peers.
  perf::Table pt{{{"Server", perf::Align::kLeft}, {"Stack", perf::Align::kLeft}}, {}};
  for (const auto& p : r.peers) {
    pt.add_row(
        {perf::Cell::str(p.label), perf::Cell::str(p.ran ? p.version : "not run: " + p.why_not)});
  }
  report.add_section("Servers measured").table(std::move(pt));

  // Saturation.
  perf::Table st{{{"Model", perf::Align::kLeft},
                  {"Server", perf::Align::kLeft},
                  {"req/s"},
                  {"vs myelin"},
                  {"p50"},
                  {"p99"},
                  {"server CPU µs / req"},
                  {"errors"}},
                 {}};
  auto add_sat = [&](const std::string& model, const std::string& key, const Load& l) {
    const double my = sat(r, model.empty() ? "logistic_regression" : model, "myelin");
    const Peer* p = peer(r, key);
    st.add_row({perf::Cell::str(model.empty() ? "(none: HTTP floor)" : model),
                perf::Cell::str(p ? p->label : key), rps(l.rps),
                l.rps > 0 ? times(my / l.rps) : perf::Cell::str("-"), us(l.p50_us), us(l.p99_us),
                num(l.cpu_us_per_request), num(l.non_2xx, 0)});
    data["saturation"].push_back({{"model", model},
                                  {"server", key},
                                  {"rps", l.rps},
                                  {"p50_us", l.p50_us},
                                  {"p99_us", l.p99_us},
                                  {"cpu_us_per_request", l.cpu_us_per_request},
                                  {"non_2xx", l.non_2xx}});
  };
  for (const auto& model : r.models) {
    if (auto it = r.saturation.find(model); it != r.saturation.end()) {
      for (const std::string key : {"myelin", "fastapi1", "fastapi2", "node"}) {
        if (auto k = it->second.find(key); k != it->second.end()) add_sat(model, key, k->second);
      }
    }
  }
  if (auto it = r.saturation.find(""); it != r.saturation.end()) {
    for (const auto& [key, l] : it->second) add_sat("", key, l);
  }
  std::string rounds_text = "Logistic regression req/s per round:";
  for (std::size_t i = 0; i < r.saturation_rounds_lr.size(); ++i) {
    rounds_text += " round " + std::to_string(i + 1) + ":";
    for (const auto& [k, v] : r.saturation_rounds_lr[i]) rounds_text += " " + k + " " + fmt(v, 0);
    rounds_text += ";";
  }
  report.add_section("Saturation (closed loop: wrk -t1 -c16, batch-1 requests, OIP JSON)")
      .paragraph(
          "\"vs myelin\" is myelin's req/s over the row's. nginx answers every request with "
          "200 \"ok\" and does no work: the HTTP floor of this machine." +
          floor_note(r) + " " + rounds_text)
      .table(std::move(st));

  // Sequential.
  perf::Table qt{{{"", perf::Align::kLeft}, {"p50"}, {"p99"}}, {}};
  qt.add_row({perf::Cell::str("nginx return 200, round trip"), us(r.rtt_nginx_p50_us),
              us(r.rtt_nginx_p99_us)});
  qt.add_row({perf::Cell::str("myelin, logistic regression, round trip"), us(r.rtt_myelin_p50_us),
              us(r.rtt_myelin_p99_us)});
  qt.add_row({perf::Cell::str("myelin server-side (last request byte read -> answer written)"),
              us(r.server_p50_us), us(r.server_p99_us)});
  qt.add_row({perf::Cell::str("  of which before the write (answer encoded, not yet sent)"),
              us(r.ready_p50_us), us(r.ready_p99_us)});
  qt.add_row({perf::Cell::str("Model::predict, batch 1, in process (the compute)"),
              us(r.compute_p50_us), perf::Cell::str("-")});
  std::string write_share;
  if (r.ready_p50_us > 0 && r.server_p50_us > r.ready_p50_us) {
    write_share = " In this run the answer was encoded " + fmt(r.ready_p50_us, 1) +
                  " µs (p50) after the last request byte was read, and handed to the socket " +
                  fmt(r.server_p50_us, 1) + " µs after it: the write takes " +
                  fmt((r.server_p50_us - r.ready_p50_us) / r.server_p50_us * 100, 0) +
                  "% of the server-side time.";
  }
  report.add_section("One connection, sequential requests")
      .paragraph(std::to_string(r.rtt_samples) +
                 " requests per server, from this process over one keep-alive connection "
                 "(myelin's HttpClient), in 3 interleaved rounds, the client pinned to CPU 0 and "
                 "both servers to CPU 1 (unpinned, this VM's scheduler puts the two ends on one "
                 "core or two by chance and every server's round trip flips between ~20 and "
                 "~70 µs). The server-side figures are "
                 "interpolated from myelin's own request_duration and response_ready_duration "
                 "histograms (buckets 1 µs apart up to 6 µs) over exactly these requests; their "
                 "difference is the write of the answer, in which the kernel also runs the "
                 "loopback client's receive path. Triton publishes ~140 µs of server "
                 "overhead plus queueing for a 16 µs model." +
                 write_share)
      .table(std::move(qt));
  data["sequential"] = {
      {"myelin_p50_us", r.rtt_myelin_p50_us}, {"myelin_p99_us", r.rtt_myelin_p99_us},
      {"nginx_p50_us", r.rtt_nginx_p50_us},   {"nginx_p99_us", r.rtt_nginx_p99_us},
      {"server_p50_us", r.server_p50_us},     {"server_p99_us", r.server_p99_us},
      {"ready_p50_us", r.ready_p50_us},       {"ready_p99_us", r.ready_p99_us},
      {"compute_p50_us", r.compute_p50_us}};

  // Open loop.
  perf::Table ot{
      {{"Model", perf::Align::kLeft}, {"offered req/s"}, {"achieved"}, {"p50"}, {"p99"}, {"p99.9"}},
      {}};
  for (const auto& [model, o] : r.half_load) {
    ot.add_row({perf::Cell::str(model), rps(o.offered_rps), rps(o.achieved_rps), us(o.p50_us),
                us(o.p99_us), us(o.p999_us)});
    data["half_load"][model] = {{"offered", o.offered_rps},
                                {"p50_us", o.p50_us.value_or(-1)},
                                {"p99_us", o.p99_us.value_or(-1)}};
  }
  report.add_section("Open loop at half of myelin's saturation (32 connections)")
      .table(std::move(ot));

  perf::Table lt{{{"Model", perf::Align::kLeft},
                  {"Server", perf::Align::kLeft},
                  {"steps (offered req/s: p99)", perf::Align::kLeft},
                  {"largest with p99 <= 1 ms"}},
                 {}};
  for (const auto& [model, by] : r.steps) {
    for (const auto& [key, steps] : by) {
      std::string text;
      for (const auto& s : steps) {
        text += (text.empty() ? "" : "; ") + fmt(s.offered_rps, 0) + ": " +
                (s.p99_us ? fmt(*s.p99_us, 0) + " µs" : "unanswered");
      }
      const auto best = largest_under_1ms(steps);
      const Peer* p = peer(r, key);
      lt.add_row({perf::Cell::str(model), perf::Cell::str(p ? p->label : key),
                  perf::Cell::str(text), best ? rps(best->offered_rps) : perf::Cell::str("none")});
      data["p99_1ms"][model][key] = best ? best->offered_rps : 0;
    }
  }
  report.add_section("Largest offered load held with p99 <= 1 ms")
      .paragraph(
          "Fixed rates of 25, 50, 75 and 90% of each server's own saturation rate, 2.5 s "
          "each (0.5 s warm-up), 32 connections; a server's steps stop at its first p99 "
          "over 1 ms.")
      .table(std::move(lt));

  // Batching.
  perf::Table bt{{{"Model", perf::Align::kLeft},
                  {"batching on req/s"},
                  {"off req/s"},
                  {"gain"},
                  {"on p99"},
                  {"off p99"},
                  {"mean batch"},
                  {"compute per batch"},
                  {"batch sizes (share of batches)", perf::Align::kLeft}},
                 {}};
  for (const auto& [model, b] : r.batching) {
    std::string hist;
    double prev = 0;
    for (const auto& [le, share] : b.batch_hist) {
      if (share >= 0.005) {
        hist += (hist.empty() ? "" : ", ") + (le > 1e9 ? ">" + fmt(prev, 0) : "<=" + fmt(le, 0)) +
                ": " + fmt(share * 100, 0) + "%";
      }
      prev = le;
    }
    bt.add_row({perf::Cell::str(model), rps(b.on.rps), rps(b.off.rps),
                b.off.rps > 0 ? times(b.on.rps / b.off.rps) : perf::Cell::str("-"), us(b.on.p99_us),
                us(b.off.p99_us), num(b.mean_batch), us(b.batch_compute_us),
                perf::Cell::str(hist)});
    data["batching"][model] = {{"on_rps", b.on.rps},         {"off_rps", b.off.rps},
                               {"on_p99_us", b.on.p99_us},   {"off_p99_us", b.off.p99_us},
                               {"mean_batch", b.mean_batch}, {"compute_us", b.batch_compute_us}};
  }
  std::string why;
  for (const auto& [model, b] : r.batching) {
    // Batching can only save compute: with all of it gone, a request would
    // still cost the rest of its server CPU (HTTP, JSON, the answer).
    const double cpu = b.off.cpu_us_per_request;
    if (cpu > b.off_compute_us && b.off_compute_us > 0) {
      why += " " + model + ": with batching off a request costs " + fmt(cpu, 1) +
             " µs of server CPU, of which the model's compute is " + fmt(b.off_compute_us, 1) +
             " µs, so even free compute would raise throughput at most " +
             fmt(cpu / (cpu - b.off_compute_us), 2) + "x; batched, compute was " +
             fmt(b.mean_batch > 0 ? b.batch_compute_us / b.mean_batch : 0, 1) +
             " µs per row. With 64 connections in a closed loop at " + fmt(b.on.rps, 0) +
             " req/s a request waits " + fmt(b.on.rps > 0 ? 64 / b.on.rps * 1e6 : 0, 0) +
             " µs on average (Little's law): its p99 is queueing for the I/O threads, not "
             "batch compute.";
    }
  }
  report.add_section("Dynamic batching on (max batch 64, max delay 500 µs) vs off (max batch 1)")
      .paragraph(
          "wrk -t1 -c64, 2 interleaved rounds each; batch sizes and compute per batch from "
          "myelin's own histograms (with batching off, from the max-batch-1 server's). "
          "Batches form from what one pass of an I/O loop read; cheap models run inline "
          "on the I/O thread." +
          why)
      .table(std::move(bt));

  // JSON vs binary.
  perf::Table jt{{{"MLP request", perf::Align::kLeft},
                  {"body bytes"},
                  {"req/s"},
                  {"p50"},
                  {"p99"},
                  {"server-side p50"}},
                 {}};
  jt.add_row({perf::Cell::str("JSON (784 numbers)"), num(static_cast<double>(r.mlp_json_bytes), 0),
              rps(r.mlp_json.rps), us(r.mlp_json.p50_us), us(r.mlp_json.p99_us),
              us(r.mlp_json_server_p50_us)});
  jt.add_row({perf::Cell::str("binary tensor data (inputs and outputs)"),
              num(static_cast<double>(r.mlp_binary_bytes), 0), rps(r.mlp_binary.rps),
              us(r.mlp_binary.p50_us), us(r.mlp_binary.p99_us), us(r.mlp_binary_server_p50_us)});
  report.add_section("JSON vs binary tensors (MLP 784-128-10, wrk -c16)").table(std::move(jt));

  // Start-up and memory.
  perf::Table mt{{{"Server", perf::Align::kLeft}, {"start to ready"}, {"RSS (3 models)"}}, {}};
  for (const auto& [key, ms] : r.startup_ms) {
    const Peer* p = peer(r, key);
    mt.add_row({perf::Cell::str(p ? p->label : key), perf::Cell::num(ms, fmt(ms, 1) + " ms"),
                perf::Cell::num(r.rss_mb.at(key), fmt(r.rss_mb.at(key), 1) + " MB")});
    data["startup"][key] = {{"ms", ms}, {"rss_mb", r.rss_mb.at(key)}};
  }
  report.add_section("Start-up and memory")
      .paragraph(
          "From fork to the first 200 from /v2/health/ready (myelin loads every model "
          "before it listens); RSS of the server's process group 200 ms later. Median of 5 "
          "starts for myelin, 2 for the peers. Idle connections: " +
          std::to_string(r.idle_connections) +
          " keep-alive connections that each made "
          "one request, held open: RSS " +
          fmt(r.idle_rss_before_mb, 1) + " MB before, " + fmt(r.idle_rss_after_mb, 1) +
          " MB with them open.")
      .table(std::move(mt));
  data["idle"] = {{"connections", r.idle_connections},
                  {"rss_before_mb", r.idle_rss_before_mb},
                  {"rss_after_mb", r.idle_rss_after_mb}};

  // Overload.
  perf::Table vt{{{"Model", perf::Align::kLeft},
                  {"saturation req/s"},
                  {"offered req/s"},
                  {"achieved req/s"},
                  {"200"},
                  {"503 refused"},
                  {"504 timed out"},
                  {"other"},
                  {"admitted p99"},
                  {"refusals p99"},
                  {"generator lag p99"},
                  {"RSS min-max"}},
                 {}};
  for (const auto& ov : r.overloads) {
    const OpenLoop& o = ov.run;
    const double total = o.ok + o.refused + o.timed_out + o.other;
    vt.add_row(
        {perf::Cell::str(ov.model + (ov.compute_bound ? " (compute-bound)" : " (HTTP-bound)")),
         rps(ov.sat_rps), rps(o.offered_rps), rps(o.achieved_rps), num(o.ok, 0),
         perf::Cell::num(o.refused, fmt(o.refused, 0) + " (" +
                                        fmt(total > 0 ? o.refused / total * 100 : 0, 1) + "%)"),
         num(o.timed_out, 0), num(o.other, 0), us(o.ok_p99_us), us(o.refused_p99_us),
         us(o.send_lag_p99_us),
         perf::Cell::str(fmt(ov.rss_min_mb, 1) + "-" + fmt(ov.rss_max_mb, 1) + " MB")});
    data["overload"][ov.model] = {{"compute_bound", ov.compute_bound},
                                  {"saturation", ov.sat_rps},
                                  {"offered", o.offered_rps},
                                  {"achieved", o.achieved_rps},
                                  {"ok", o.ok},
                                  {"refused", o.refused},
                                  {"timed_out", o.timed_out},
                                  {"other", o.other},
                                  {"ok_p99_us", o.ok_p99_us.value_or(-1)},
                                  {"refused_p99_us", o.refused_p99_us.value_or(-1)},
                                  {"send_lag_p99_us", o.send_lag_p99_us.value_or(-1)},
                                  {"rss_min_mb", ov.rss_min_mb},
                                  {"rss_max_mb", ov.rss_max_mb}};
  }
  report.add_section("Twice saturation with a bounded queue")
      .paragraph("One myelin server with --max-queue " + std::to_string(r.overload_queue) +
                 " and --timeout-ms " + fmt(r.overload_budget_us / 1000, 0) +
                 "; open loop (256 connections) at twice each model's saturation on that server. "
                 "Latency runs from each request's due time, so it includes time spent in the "
                 "generator and in socket buffers. The MLP saturates the HTTP layer before its "
                 "compute on this machine, so twice its rate overloads the sockets and the JSON "
                 "parsing (both cores), not the queue: that row shows what an HTTP overload costs. "
                 "mlp_wide (32-2048-2048-10, random weights, bench/serve/make_models.py: 8.4 MFLOP "
                 "per row behind a 32-number request) is limited by its compute, which is the "
                 "overload the bounded queue exists for, and the "
                 "targets are judged on it. Saturation of mlp_wide: wrk -c16 on the same server.")
      .table(std::move(vt));
  render_sweep(r, report, data);
  report.data = std::move(data);
  return report;
}

}  // namespace myelin::bench::serve_bench
