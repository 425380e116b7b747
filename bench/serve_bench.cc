// `myelin bench serve` (seed 004's server): myelin serve end to end over
// loopback HTTP against FastAPI + scikit-learn, Node.js + onnxruntime-node
// and nginx's `return 200`, in one run, on the same models.
//
// Measure -> results -> render: this file starts the servers, drives wrk
// (closed loop) and bench/serve/open_loop.cc (open loop) at them, reads
// their CPU time and RSS from /proc, and fills ServeResults;
// serve_report.cc renders it.
#include "bench/serve_bench.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/bench_part.h"
#include "bench/serve/sweep.h"
#include "bench/serve_harness.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/model/model.h"
#include "myelin/serve/http_client.h"

#ifndef MYELIN_SOURCE_DIR
#define MYELIN_SOURCE_DIR "."
#endif

namespace myelin::bench {
namespace fs = std::filesystem;
using namespace serve_harness;  // NOLINT(google-build-using-namespace): bench-local plumbing
using serve_bench::Load;
using serve_bench::OpenLoop;
using serve_bench::ServeResults;

namespace {

constexpr double kUs = 1e6;

struct Env {
  std::string source = MYELIN_SOURCE_DIR;
  std::string bin_dir;  // where myelin and myelin_open_loop live
  std::string work;     // models, logs, bodies
  std::string myelin, open_loop;
  bool quick = false;
  double wrk_seconds = 3;
};

struct Server {
  std::string key;
  Process proc;
  std::uint16_t port = 0;
  // Path for a model's infer request ("" model: the floor's path).
  std::string path(const std::string& model) const {
    return key == "nginx" ? "/" : "/v2/models/" + model + "/infer";
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<Server> start_server(const Env& env, const std::string& key,
                            const std::vector<std::string>& extra_args = {}) {
  Server s;
  s.key = key;
  MYELIN_ASSIGN_OR_RETURN(s.port, free_port());
  const std::string port = std::to_string(s.port);
  const std::string log = env.work + "/" + key + ".log";
  const std::string models = env.work + "/models";
  std::vector<std::string> argv;
  if (key.rfind("myelin", 0) == 0) {
    argv = {env.myelin, "serve", "--http-port", port};
    for (const char* m : {"logistic_regression", "trees", "mlp"}) {
      argv.push_back("--model");
      argv.push_back(std::string(m) + "=" + models + "/" + m + ".onnx");
    }
  } else if (key == "fastapi1" || key == "fastapi2") {
    argv = {"/usr/bin/python3", env.source + "/bench/serve/fastapi_peer.py",
            "--models",         models,
            "--port",           port,
            "--workers",        key == "fastapi1" ? "1" : "2"};
  } else if (key == "node") {
    argv = {
        "node",  env.source + "/bench/serve/node_peer.js",    "--models", models, "--port", port,
        "--ort", env.source + "/build/model-npm/node_modules"};
  } else if (key == "nginx") {
    auto started =
        run_capture({env.source + "/bench/serve/nginx_peer.sh", "start", env.work + "/nginx", port},
                    std::chrono::seconds(10));
    if (!started) return started.error();
    return s;  // a daemon: stopped by stop_nginx()
  }
  for (const auto& a : extra_args) argv.push_back(a);
  MYELIN_ASSIGN_OR_RETURN(s.proc, Process::spawn(argv, log));
  auto ready = wait_ready(s.port, "/v2/health/ready", std::chrono::seconds(60));
  if (!ready) {
    return unavailable(key + " did not become ready: " + read_file(log).substr(0, 400));
  }
  return s;
}

void stop_nginx(const Env& env) {
  (void)run_capture({env.source + "/bench/serve/nginx_peer.sh", "stop", env.work + "/nginx"},
                    std::chrono::seconds(10));
}

// nginx is a daemon outside our process group: its master leads a group of its own.
pid_t nginx_pgid(const Env& env) {
  const std::string pid = read_file(env.work + "/nginx/nginx.pid");
  return pid.empty() ? -1 : static_cast<pid_t>(std::stol(pid));
}

double cpu_of(const Server& s, const Env& env) {
  return s.key == "nginx" ? group_cpu_seconds(nginx_pgid(env)) : s.proc.cpu_seconds();
}

Result<Load> wrk(const Env& env, const Server& s, const std::string& model,
                 const std::string& body_file, int connections, double seconds,
                 const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> e = {"WRK_BODY=" + body_file, "WRK_PATH=" + s.path(model)};
  for (const auto& x : extra_env) e.push_back(x);
  const double cpu0 = cpu_of(s, env);
  MYELIN_ASSIGN_OR_RETURN(auto out,
                          run_capture({"wrk", "-t1", "-c" + std::to_string(connections),
                                       "-d" + std::to_string(static_cast<int>(seconds)) + "s", "-s",
                                       env.source + "/bench/serve/oip_post.lua",
                                       "http://127.0.0.1:" + std::to_string(s.port)},
                                      std::chrono::seconds(static_cast<int>(seconds) + 30), e));
  const double cpu = cpu_of(s, env) - cpu0;
  MYELIN_ASSIGN_OR_RETURN(auto j, last_json_line(out));
  Load l;
  l.rps = j["rps"].get<double>();
  l.p50_us = j["latency_us"]["p50"].get<double>();
  l.p99_us = j["latency_us"]["p99"].get<double>();
  l.non_2xx = j["non_2xx"].get<double>();
  const double n = j["requests"].get<double>();
  l.requests = n;
  l.cpu_us_per_request = n > 0 ? cpu / n * kUs : 0;
  return l;
}

Result<OpenLoop> open_loop(const Env& env, const Server& s, const std::string& model,
                           const std::string& body_file, double rate, double seconds,
                           int connections) {
  MYELIN_ASSIGN_OR_RETURN(
      auto out, run_capture({env.open_loop, "--port", std::to_string(s.port), "--path",
                             s.path(model), "--body", body_file, "--rate", std::to_string(rate),
                             "--duration", std::to_string(seconds), "--warmup", "0.5",
                             "--connections", std::to_string(connections), "--json"},
                            std::chrono::seconds(static_cast<int>(seconds) + 30)));
  MYELIN_ASSIGN_OR_RETURN(auto j, last_json_line(out));
  OpenLoop o;
  o.offered_rps = rate;
  o.achieved_rps = j["achieved_rps"].get<double>();
  auto opt = [](const nlohmann::json& v) -> std::optional<double> {
    if (v.is_null()) return std::nullopt;
    return v.get<double>();
  };
  o.p50_us = opt(j["latency_us"]["p50"]);
  o.p99_us = opt(j["latency_us"]["p99"]);
  o.p999_us = opt(j["latency_us"]["p999"]);
  o.ok = j["status_200"].get<double>();
  for (auto it = j["non_200"].begin(); it != j["non_200"].end(); ++it) {
    const std::string& code = it.key();
    (code == "503" ? o.refused : code == "504" ? o.timed_out : o.other) += it.value().get<double>();
  }
  if (j.contains("send_lag_us")) o.send_lag_p99_us = opt(j["send_lag_us"]["p99"]);
  if (j.contains("latency_us_by_status")) {
    const auto& by = j["latency_us_by_status"];
    if (by.contains("200")) o.ok_p99_us = opt(by["200"]["p99"]);
    if (by.contains("503")) o.refused_p99_us = opt(by["503"]["p99"]);
  }
  return o;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

Load median_load(const std::vector<Load>& runs) {
  std::vector<double> rps, p50, p99, cpu, bad;
  for (const auto& l : runs) {
    rps.push_back(l.rps);
    p50.push_back(l.p50_us);
    p99.push_back(l.p99_us);
    cpu.push_back(l.cpu_us_per_request);
    bad.push_back(l.non_2xx);
  }
  return {median(rps), median(p50), median(p99), median(cpu), median(bad)};
}

// A binary-tensor OIP body for one row of `features` floats.
std::string binary_body(std::size_t features, std::size_t& json_length) {
  const std::string json = "{\"inputs\":[{\"name\":\"X\",\"shape\":[1," + std::to_string(features) +
                           "],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":" +
                           std::to_string(features * 4) +
                           "}}],\"outputs\":[{\"name\":\"label\",\"parameters\":{\"binary_data\":"
                           "true}},{\"name\":\"probabilities\",\"parameters\":{\"binary_data\":"
                           "true}}]}";
  json_length = json.size();
  std::string body = json;
  for (std::size_t i = 0; i < features; ++i) {
    const float v = static_cast<float>((i * 37) % 17) / 17.0f;
    body.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  return body;
}

// Sequential round trips on one keep-alive connection.
Status sequential(const Server& s, const std::string& model, const std::string& body, std::size_t n,
                  LatencyRecorder& rec) {
  MYELIN_ASSIGN_OR_RETURN(auto c, serve::HttpClient::connect("127.0.0.1", s.port));
  const std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/json"}};
  for (std::size_t i = 0; i < n + 200; ++i) {
    const MonoTime t0 = mono_now();
    MYELIN_ASSIGN_OR_RETURN(auto r, c->request("POST", s.path(model), body, h));
    if (i >= 200) rec.record_since(t0);
    if (r.status != 200) return internal_error(s.key + ": HTTP " + std::to_string(r.status));
  }
  return {};
}

double compute_p50_us(const std::string& onnx, std::size_t features) {
  auto m = model::Model::load(onnx);
  if (!m) return 0;
  auto ws = m->make_workspace(1);
  std::vector<float> x(features, 0.5f);
  const TensorView in = TensorView::of<float>(std::span<const float>(x),
                                              Shape{1, static_cast<std::int64_t>(features)});
  std::vector<std::vector<std::byte>> outs;
  std::vector<MutableTensorView> out_views;
  for (std::size_t j = 0; j < m->outputs().size(); ++j) {
    const Shape sh = m->output_shape(j, 1).value();
    outs.emplace_back(sh.element_count().value() * dtype_size(m->outputs()[j].dtype));
  }
  for (std::size_t j = 0; j < outs.size(); ++j) {
    out_views.push_back({m->outputs()[j].dtype, m->output_shape(j, 1).value(), outs[j]});
  }
  LatencyRecorder rec(20000);
  for (int i = 0; i < 22000; ++i) {
    const MonoTime t0 = mono_now();
    (void)m->predict(std::span<const TensorView>(&in, 1), out_views, *ws);
    if (i >= 2000) rec.record_since(t0);
  }
  return rec.summarize().p50 / 1e3;
}

// User + system CPU seconds of the children this process has waited for
// (run_capture waits for wrk, so a difference around one run is wrk's).
double children_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  const auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// The median compute time of one batch of each size in `sizes`, the model
// run in process on this thread (no HTTP, no batcher): the points the
// estimator fits T(n) = fixed + n * per_row to.
Result<std::vector<perf::BatchCostSample>> batch_compute(const std::string& onnx,
                                                         std::size_t features,
                                                         const std::vector<std::size_t>& sizes,
                                                         Nanos budget_each) {
  MYELIN_ASSIGN_OR_RETURN(auto m, model::Model::load(onnx));
  std::vector<perf::BatchCostSample> out;
  for (const std::size_t n : sizes) {
    MYELIN_ASSIGN_OR_RETURN(auto ws, m.make_workspace(n));
    std::vector<float> x(n * features);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 17.0f;
    const TensorView in = TensorView::of<float>(
        std::span<const float>(x),
        Shape{static_cast<std::int64_t>(n), static_cast<std::int64_t>(features)});
    std::vector<std::vector<std::byte>> outs;
    std::vector<MutableTensorView> out_views;
    for (std::size_t j = 0; j < m.outputs().size(); ++j) {
      MYELIN_ASSIGN_OR_RETURN(const Shape sh, m.output_shape(j, n));
      MYELIN_ASSIGN_OR_RETURN(const auto count, sh.element_count());
      outs.emplace_back(count * dtype_size(m.outputs()[j].dtype));
    }
    for (std::size_t j = 0; j < outs.size(); ++j) {
      MYELIN_ASSIGN_OR_RETURN(const Shape sh, m.output_shape(j, n));
      out_views.push_back({m.outputs()[j].dtype, sh, outs[j]});
    }
    // Warm up, then time single batches until the budget or 5,000 runs.
    for (int i = 0; i < 20; ++i) {
      MYELIN_RETURN_IF_ERROR(m.predict(std::span<const TensorView>(&in, 1), out_views, ws));
    }
    LatencyRecorder rec(5000);
    const MonoTime end = mono_now() + budget_each;
    for (int i = 0; i < 5000 && mono_now() < end; ++i) {
      const MonoTime t0 = mono_now();
      MYELIN_RETURN_IF_ERROR(m.predict(std::span<const TensorView>(&in, 1), out_views, ws));
      rec.record_since(t0);
    }
    out.push_back({static_cast<double>(n), rec.summarize().p50 / 1e3});
  }
  return out;
}

// Opens `n` keep-alive connections that each made one request, and holds them.
std::vector<std::unique_ptr<net::Stream>> open_idle(std::uint16_t port, std::size_t n) {
  std::vector<std::unique_ptr<net::Stream>> out;
  const std::string req = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t i = 0; i < n; ++i) {
    auto s = net::connect_tcp("127.0.0.1", port, std::chrono::seconds(2));
    if (!s) break;
    if (!(*s)->write(std::as_bytes(std::span<const char>(req)))) break;
    char buf[256];
    const MonoTime deadline = mono_now() + std::chrono::seconds(2);
    bool answered = false;
    while (!answered && mono_now() < deadline) {
      auto r = (*s)->read(std::as_writable_bytes(std::span<char>(buf)));
      if (!r || r->eof) break;
      answered = r->bytes > 0;
      if (!answered) (void)(*s)->wait(kIoReadable, deadline);
    }
    if (!answered) break;
    out.push_back(std::move(*s));
  }
  return out;
}

// Interleaved rounds: every peer once per round, so drift hits all alike.
Status measure_saturation(const Env& env, std::map<std::string, Server>& servers, ServeResults& r) {
  const std::vector<std::string> order = {"myelin", "fastapi1", "fastapi2", "node"};
  std::map<std::string, std::map<std::string, std::vector<Load>>> runs;
  for (int round = 0; round < r.rounds; ++round) {
    std::map<std::string, double> lr_round;
    for (const auto& model : r.models) {
      for (const auto& key : order) {
        if (!servers.count(key)) continue;
        auto l = wrk(env, servers.at(key), model, env.work + "/models/" + model + ".json", 16,
                     env.wrk_seconds);
        if (!l) return l.error();
        runs[model][key].push_back(*l);
        if (model == "logistic_regression") lr_round[key] = l->rps;
      }
    }
    if (servers.count("nginx")) {
      auto l = wrk(env, servers.at("nginx"), "", env.work + "/models/logistic_regression.json", 16,
                   env.wrk_seconds);
      if (!l) return l.error();
      runs[""]["nginx"].push_back(*l);
      lr_round["nginx"] = l->rps;
    }
    r.saturation_rounds_lr.push_back(lr_round);
  }
  for (const auto& [model, by] : runs) {
    for (const auto& [key, loads] : by) r.saturation[model][key] = median_load(loads);
  }
  return {};
}

Status measure_sequential(const Env& env, std::map<std::string, Server>& servers, ServeResults& r) {
  const std::string body = read_file(env.work + "/models/logistic_regression.json");
  const Server& my = servers.at("myelin");
  const Server& floor = servers.at("nginx");
  const std::size_t per_round = env.quick ? 500 : 2000;
  LatencyRecorder m(per_round * 3), n(per_round * 3);
  // Client on CPU 0, both servers on CPU 1: every exchange crosses cores,
  // as it does for a client elsewhere. Unpinned, this VM's scheduler puts
  // client and server on one core or two by chance, and the round trip
  // flips between ~20 and ~70 µs for nginx and myelin alike.
  pin_self(0);
  pin_group(my.proc.pid(), 1);
  pin_group(nginx_pgid(env), 1);
  MYELIN_ASSIGN_OR_RETURN(auto before, scrape(my.port));
  Status run_status;
  for (int round = 0; round < 3 && run_status.ok(); ++round) {
    run_status = sequential(floor, "", body, per_round, n);
    if (run_status.ok()) run_status = sequential(my, "logistic_regression", body, per_round, m);
  }
  pin_self(-1);
  pin_group(my.proc.pid(), -1);
  pin_group(nginx_pgid(env), -1);
  MYELIN_RETURN_IF_ERROR(run_status);
  MYELIN_ASSIGN_OR_RETURN(auto after, scrape(my.port));
  const auto ms = m.summarize();
  const auto ns = n.summarize();
  r.rtt_samples = m.count();
  r.rtt_myelin_p50_us = ms.p50 / 1e3;
  r.rtt_myelin_p99_us = ms.p99 / 1e3;
  r.rtt_nginx_p50_us = ns.p50 / 1e3;
  r.rtt_nginx_p99_us = ns.p99 / 1e3;
  const std::string lab = "model=\"logistic_regression\"";
  auto h1 = find_histogram(after, "myelin_inference_request_duration_seconds", lab);
  auto h0 = find_histogram(before, "myelin_inference_request_duration_seconds", lab);
  if (h1 && h0) {
    const auto d = subtract(*h1, *h0);
    r.server_p50_us = quantile(d, 0.5) * kUs;
    r.server_p99_us = quantile(d, 0.99) * kUs;
  }
  auto g1 = find_histogram(after, "myelin_inference_response_ready_duration_seconds", lab);
  auto g0 = find_histogram(before, "myelin_inference_response_ready_duration_seconds", lab);
  if (g1 && g0) {
    const auto d = subtract(*g1, *g0);
    r.ready_p50_us = quantile(d, 0.5) * kUs;
    r.ready_p99_us = quantile(d, 0.99) * kUs;
  }
  r.compute_p50_us = compute_p50_us(env.work + "/models/logistic_regression.onnx", 4);
  return {};
}

Status measure_open_loop(const Env& env, std::map<std::string, Server>& servers, ServeResults& r) {
  const double secs = env.quick ? 2 : 4;
  for (const auto& model : r.models) {
    const double sat = r.saturation[model]["myelin"].rps;
    auto o = open_loop(env, servers.at("myelin"), model, env.work + "/models/" + model + ".json",
                       std::max(100.0, sat / 2), secs, 32);
    if (!o) return o.error();
    r.half_load[model] = *o;
  }
  // Largest load each server holds with p99 <= 1 ms: fractions of its own
  // saturation (logistic regression for every peer; every model for myelin).
  const std::vector<double> fractions = {0.25, 0.5, 0.75, 0.9};
  for (const auto& model : r.models) {
    for (const auto& [key, server] : servers) {
      if (key == "nginx" || key == "myelin_nobatch") continue;
      if (key != "myelin" && model != "logistic_regression") continue;
      const double sat = r.saturation[model][key].rps;
      if (sat <= 0) continue;
      for (double f : fractions) {
        auto o = open_loop(env, server, model, env.work + "/models/" + model + ".json",
                           std::max(50.0, sat * f), env.quick ? 1.5 : 2.5, 32);
        if (!o) return o.error();
        r.steps[model][key].push_back(*o);
        if (!o->p99_us || *o->p99_us > 1000) break;  // higher loads only get worse
      }
    }
  }
  return {};
}

Status measure_batching(const Env& env, std::map<std::string, Server>& servers, ServeResults& r) {
  for (const std::string model : {"trees", "mlp"}) {
    ServeResults::Batching b;
    std::vector<Load> on, off;
    const std::string body = env.work + "/models/" + model + ".json";
    const std::string lab = "model=\"" + model + "\"";
    MYELIN_ASSIGN_OR_RETURN(auto before, scrape(servers.at("myelin").port));
    MYELIN_ASSIGN_OR_RETURN(auto before_off, scrape(servers.at("myelin_nobatch").port));
    for (int round = 0; round < 2; ++round) {
      auto l1 = wrk(env, servers.at("myelin"), model, body, 64, env.wrk_seconds);
      if (!l1) return l1.error();
      on.push_back(*l1);
      auto l0 = wrk(env, servers.at("myelin_nobatch"), model, body, 64, env.wrk_seconds);
      if (!l0) return l0.error();
      off.push_back(*l0);
    }
    MYELIN_ASSIGN_OR_RETURN(auto after, scrape(servers.at("myelin").port));
    MYELIN_ASSIGN_OR_RETURN(auto after_off, scrape(servers.at("myelin_nobatch").port));
    {
      auto a = find_histogram(after_off, "myelin_inference_compute_duration_seconds", lab);
      auto z = find_histogram(before_off, "myelin_inference_compute_duration_seconds", lab);
      if (a && z) {
        const auto d = subtract(*a, *z);
        b.off_compute_us = d.count > 0 ? d.sum / d.count * kUs : 0;
      }
    }
    b.on = median_load(on);
    b.off = median_load(off);
    auto bs1 = find_histogram(after, "myelin_inference_batch_size", lab);
    auto bs0 = find_histogram(before, "myelin_inference_batch_size", lab);
    if (bs1 && bs0) {
      const auto d = subtract(*bs1, *bs0);
      b.mean_batch = d.count > 0 ? d.sum / d.count : 0;
      double prev = 0;
      for (const auto& [le, cum] : d.buckets) {
        b.batch_hist.emplace_back(le, d.count > 0 ? (cum - prev) / d.count : 0);
        prev = cum;
      }
    }
    auto c1 = find_histogram(after, "myelin_inference_compute_duration_seconds", lab);
    auto c0 = find_histogram(before, "myelin_inference_compute_duration_seconds", lab);
    if (c1 && c0) {
      const auto d = subtract(*c1, *c0);
      b.batch_compute_us = d.count > 0 ? d.sum / d.count * kUs : 0;
    }
    b.max_delay_us = 500;
    r.batching[model] = b;
  }
  return {};
}

Status measure_binary(const Env& env, std::map<std::string, Server>& servers, ServeResults& r) {
  std::size_t json_length = 0;
  const std::string bin = binary_body(784, json_length);
  const std::string bin_file = env.work + "/mlp.bin";
  std::ofstream(bin_file, std::ios::binary) << bin;
  const std::string json_file = env.work + "/models/mlp.json";
  r.mlp_binary_bytes = bin.size();
  r.mlp_json_bytes = read_file(json_file).size();
  const Server& my = servers.at("myelin");
  const std::string lab = "model=\"mlp\"";
  std::vector<Load> js, bs;
  std::vector<double> js_srv, bs_srv;
  for (int round = 0; round < 2; ++round) {
    for (int binary = 0; binary < 2; ++binary) {
      MYELIN_ASSIGN_OR_RETURN(auto before, scrape(my.port));
      auto l = binary ? wrk(env, my, "mlp", bin_file, 16, env.wrk_seconds,
                            {"WRK_IHCL=" + std::to_string(json_length)})
                      : wrk(env, my, "mlp", json_file, 16, env.wrk_seconds);
      if (!l) return l.error();
      MYELIN_ASSIGN_OR_RETURN(auto after, scrape(my.port));
      auto h1 = find_histogram(after, "myelin_inference_request_duration_seconds", lab);
      auto h0 = find_histogram(before, "myelin_inference_request_duration_seconds", lab);
      const double srv = h1 && h0 ? quantile(subtract(*h1, *h0), 0.5) * kUs : 0;
      (binary ? bs : js).push_back(*l);
      (binary ? bs_srv : js_srv).push_back(srv);
    }
  }
  r.mlp_json = median_load(js);
  r.mlp_binary = median_load(bs);
  r.mlp_json_server_p50_us = median(js_srv);
  r.mlp_binary_server_p50_us = median(bs_srv);
  return {};
}

Status measure_startup(const Env& env, ServeResults& r) {
  for (const std::string key : {"myelin", "fastapi1", "node"}) {
    std::vector<double> ms, rss;
    const int reps = key == "myelin" ? 5 : 2;
    for (int i = 0; i < reps; ++i) {
      const MonoTime t0 = mono_now();
      auto s = start_server(env, key);
      if (!s) {
        if (key == "myelin") return s.error();
        break;
      }
      ms.push_back(static_cast<double>((mono_now() - t0).count()) / 1e6);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      rss.push_back(s->proc.group_rss_bytes() / 1e6);
      s->proc.stop();
    }
    if (!ms.empty()) {
      r.startup_ms[key] = median(ms);
      r.rss_mb[key] = median(rss);
    }
  }
  return {};
}

Status measure_idle(const Env& env, ServeResults& r) {
  MYELIN_ASSIGN_OR_RETURN(auto s, start_server(env, "myelin", {"--io-threads", "2"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r.idle_rss_before_mb = s.proc.group_rss_bytes() / 1e6;
  auto conns = open_idle(s.port, env.quick ? 1000 : 10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.idle_connections = conns.size();
  r.idle_rss_after_mb = s.proc.group_rss_bytes() / 1e6;
  conns.clear();
  s.proc.stop();
  return {};
}

// One open-loop run at twice `sat_rps` against the bounded server `s`, with
// its RSS sampled every 250 ms.
Result<ServeResults::Overload> overload_run(const Env& env, const Server& s,
                                            const std::string& model, double sat_rps) {
  ServeResults::Overload ov;
  ov.model = model;
  ov.sat_rps = sat_rps;
  std::atomic<bool> done{false};
  std::vector<double> rss;
  std::thread sampler([&] {
    while (!done) {
      rss.push_back(s.proc.group_rss_bytes() / 1e6);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  auto o = open_loop(env, s, model, env.work + "/models/" + model + ".json", 2 * sat_rps,
                     env.quick ? 2 : 4, 256);
  done = true;
  sampler.join();
  if (!o) return o.error();
  ov.run = *o;
  if (rss.size() > 2) {
    // Skip the first sample (connections still opening).
    ov.rss_min_mb = *std::min_element(rss.begin() + 1, rss.end());
    ov.rss_max_mb = *std::max_element(rss.begin() + 1, rss.end());
  }
  return ov;
}

Status measure_overload(const Env& env, ServeResults& r) {
  const std::size_t queue = 32;
  const int timeout_ms = 20;
  const std::string wide = "mlp_wide";
  MYELIN_ASSIGN_OR_RETURN(
      auto s, start_server(
                  env, "myelin_bounded",
                  {"--max-queue", std::to_string(queue), "--timeout-ms", std::to_string(timeout_ms),
                   "--model", wide + "=" + env.work + "/models/" + wide + ".onnx"}));
  r.overload_queue = queue;
  r.overload_budget_us = timeout_ms * 1000.0;
  MYELIN_ASSIGN_OR_RETURN(auto http_bound,
                          overload_run(env, s, "mlp", r.saturation["mlp"]["myelin"].rps));
  r.overloads.push_back(std::move(http_bound));
  // mlp_wide's own saturation, closed loop on the same server: 16 connections
  // never fill the 32-request queue.
  MYELIN_ASSIGN_OR_RETURN(
      auto sat, wrk(env, s, wide, env.work + "/models/" + wide + ".json", 16, env.wrk_seconds));
  MYELIN_ASSIGN_OR_RETURN(auto compute_bound, overload_run(env, s, wide, sat.rps));
  compute_bound.compute_bound = true;
  r.overloads.push_back(std::move(compute_bound));
  return {};
}

// One closed-loop run of `model` on a myelin server with a given batcher
// setting: throughput and latency from wrk, CPU per request of the server
// and of wrk, and the batch sizes from the server's own /metrics.
Result<serve_bench::SweepPoint> sweep_point(const Env& env, const Server& s,
                                            const std::string& model, int connections) {
  serve_bench::SweepPoint p;
  p.model = model;
  const std::string lab = "model=\"" + model + "\"";
  MYELIN_ASSIGN_OR_RETURN(auto before, scrape(s.port));
  const double client0 = children_cpu_seconds();
  MYELIN_ASSIGN_OR_RETURN(auto l, wrk(env, s, model, env.work + "/models/" + model + ".json",
                                      connections, env.wrk_seconds));
  const double client = children_cpu_seconds() - client0;
  MYELIN_ASSIGN_OR_RETURN(auto after, scrape(s.port));
  p.rps = l.rps;
  p.p50_us = l.p50_us;
  p.p99_us = l.p99_us;
  p.server_cpu_us = l.cpu_us_per_request;
  p.client_cpu_us = l.requests > 0 ? client / l.requests * kUs : 0;
  auto b1 = find_histogram(after, "myelin_inference_batch_size", lab);
  auto b0 = find_histogram(before, "myelin_inference_batch_size", lab);
  if (!b1 || !b0)
    return not_found(s.key + ": /metrics has no myelin_inference_batch_size{" + lab + "}");
  const auto d = subtract(*b1, *b0);
  p.mean_batch = d.count > 0 ? d.sum / d.count : 0;
  double prev = 0;
  for (const auto& [le, cum] : d.buckets) {
    p.batch_hist.emplace_back(le, d.count > 0 ? (cum - prev) / d.count : 0);
    prev = cum;
  }
  return p;
}

// The batch-size sweep: for the trees and the MLP, every batcher setting
// (max batch 1, 4, 16, 64; two max queue delays), the model's compute per
// batch size in process, and the front end's cost at max batch 1.
Status measure_sweep(const Env& env, ServeResults& r) {
  serve_bench::Sweep& sw = r.sweep;
  sw.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  sw.workers = 1;  // myelin serve's default --workers
  sw.connections = 64;
  const std::vector<std::pair<std::string, std::size_t>> models = {{"trees", 30}, {"mlp", 784}};
  const std::vector<std::size_t> sizes = {1, 2, 4, 8, 16, 32, 64};
  for (const auto& [model, features] : models) {
    MYELIN_ASSIGN_OR_RETURN(sw.models[model].batch_compute,
                            batch_compute(env.work + "/models/" + model + ".onnx", features, sizes,
                                          std::chrono::milliseconds(env.quick ? 100 : 400)));
  }
  std::vector<perf::BatcherSetting> settings = {{1, 0}};
  for (const std::uint64_t b : {4, 16, 64}) {
    for (const double d : {100.0, 500.0}) settings.push_back({b, d});
  }
  for (const auto& st : settings) {
    const std::string key = "myelin_b" + std::to_string(st.max_batch) + "_d" +
                            std::to_string(static_cast<int>(st.max_delay_us));
    MYELIN_ASSIGN_OR_RETURN(
        auto s, start_server(env, key,
                             {"--max-batch", std::to_string(st.max_batch), "--max-delay-us",
                              std::to_string(static_cast<int>(st.max_delay_us))}));
    for (const auto& [model, features] : models) {
      MYELIN_ASSIGN_OR_RETURN(auto p, sweep_point(env, s, model, sw.connections));
      p.max_batch = st.max_batch;
      p.max_delay_us = st.max_delay_us;
      sw.points.push_back(std::move(p));
      if (st.max_batch != 1) continue;
      // The front end's latency per request: one connection, sequential, so
      // nothing queues; the server's own request duration minus T(1).
      const std::string lab = "model=\"" + model + "\"";
      const std::string body = read_file(env.work + "/models/" + model + ".json");
      LatencyRecorder rec(env.quick ? 300 : 1000);
      MYELIN_ASSIGN_OR_RETURN(auto before, scrape(s.port));
      MYELIN_RETURN_IF_ERROR(sequential(s, model, body, env.quick ? 300 : 1000, rec));
      MYELIN_ASSIGN_OR_RETURN(auto after, scrape(s.port));
      auto h1 = find_histogram(after, "myelin_inference_request_duration_seconds", lab);
      auto h0 = find_histogram(before, "myelin_inference_request_duration_seconds", lab);
      if (!h1 || !h0) return not_found(key + ": /metrics has no request duration for " + model);
      auto& mc = sw.models[model];
      mc.frontend_us = quantile(subtract(*h1, *h0), 0.5) * kUs - mc.batch_compute.front().us;
    }
    s.proc.stop();
  }
  MYELIN_ASSIGN_OR_RETURN(r.calibration, serve_bench::calibration_json(sw));
  // What `myelin serve --max-batch auto` picks from this calibration for the
  // MLP, and what that choice measures.
  {
    sw.auto_budget_us = 1000;
    const std::string file = env.work + "/calibration.json";
    std::ofstream(file) << nlohmann::json{{"data", {{"calibration", r.calibration}}}}.dump();
    MYELIN_ASSIGN_OR_RETURN(
        auto s, start_server(env, "myelin_auto",
                             {"--max-batch", "auto", "--latency-budget-us",
                              std::to_string(static_cast<int>(sw.auto_budget_us)), "--calibration",
                              file, "--calibration-model", "mlp"}));
    std::optional<nlohmann::json> choice;
    std::istringstream log(read_file(env.work + "/myelin_auto.log"));
    for (std::string line; std::getline(log, line);) {
      if (line.find("\"max_batch_auto\"") == std::string::npos) continue;
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("max_batch") && j["max_batch"].is_number_unsigned() &&
          j.contains("max_delay_us") && j["max_delay_us"].is_number())
        choice = j;
    }
    if (!choice) return not_found("myelin_auto.log: no max_batch_auto line");
    MYELIN_ASSIGN_OR_RETURN(auto p, sweep_point(env, s, "mlp", sw.connections));
    p.max_batch = (*choice)["max_batch"].get<std::uint64_t>();
    p.max_delay_us = (*choice)["max_delay_us"].get<double>();
    p.auto_choice = true;
    sw.points.push_back(std::move(p));
    s.proc.stop();
  }
  MYELIN_ASSIGN_OR_RETURN(r.calibration, serve_bench::calibration_json(sw));
  MYELIN_ASSIGN_OR_RETURN(r.calibration_check, serve_bench::check_predictions(sw, r.calibration));
  return {};
}

std::string version_of(const std::vector<std::string>& argv) {
  auto out = run_capture(argv, std::chrono::seconds(20));
  if (!out) return "unknown";
  auto j = last_json_line(*out);
  if (j && j->is_object()) {
    std::string s;
    for (auto it = j->begin(); it != j->end(); ++it) {
      if (!s.empty()) s += ", ";
      s += it.key() + " " +
           (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
    }
    return s;
  }
  std::string line = *out;
  return line.substr(0, line.find('\n'));
}

}  // namespace

Result<perf::Report> run_serve_bench(const BenchOptions& options) {
  Env env;
  env.quick = options.quick;
  env.wrk_seconds = options.quick ? 2 : 3;
  std::error_code ec;
  // This process is myelin-bench; the server it measures is the `myelin`
  // binary beside it.
  env.bin_dir = fs::read_symlink("/proc/self/exe", ec).parent_path().string();
  env.myelin = env.bin_dir + "/myelin";
  env.open_loop = env.bin_dir + "/myelin_open_loop";
  env.work = (fs::path(env.bin_dir).parent_path() / "bench-serve").string();
  fs::create_directories(env.work + "/models", ec);
  for (const auto& [path, target] :
       {std::pair{env.open_loop, "myelin_open_loop"}, std::pair{env.myelin, "myelin"}}) {
    if (!fs::exists(path))
      return failed_precondition(path + " is missing: build the " + target + " target");
  }
  // 10,000 idle connections need as many descriptors (servers inherit this).
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = std::max<rlim_t>(lim.rlim_cur, std::min<rlim_t>(lim.rlim_max, 65536));
  ::setrlimit(RLIMIT_NOFILE, &lim);

  if (!options.only.empty() && options.only != "sweep")
    return invalid_argument("--only: the serve part has one stage to run alone, sweep; got '" +
                            options.only + "'");
  ServeResults r;
  r.rounds = options.quick ? 1 : 3;
  r.models = {"logistic_regression", "trees", "mlp"};
  r.model_desc = {{"logistic_regression", "LogisticRegression, 4 features, 3 classes (iris)"},
                  {"trees", "GradientBoostingClassifier, 100 trees x depth 6, 30 features"},
                  {"mlp", "MLPClassifier 784-128-10"}};
  if (!fs::exists(env.work + "/models/mlp_wide.onnx")) {
    std::fprintf(stderr, "myelin bench serve: training the models (python3-sklearn)...\n");
    auto made = run_capture(
        {"/usr/bin/python3", env.source + "/bench/serve/make_models.py", env.work + "/models"},
        std::chrono::minutes(10));
    if (!made) return made.error();
  }
  if (options.only == "sweep") {
    std::fprintf(stderr, "myelin bench serve: batch-size sweep (only)...\n");
    MYELIN_RETURN_IF_ERROR(measure_sweep(env, r));
    return serve_bench::render(r);
  }
  (void)run_capture({env.source + "/scripts/setup-bench-peers"}, std::chrono::minutes(10));

  r.peers = {{"myelin", "myelin serve", "myelin " MYELIN_BENCH_VERSION, false, ""},
             {"fastapi1", "FastAPI + uvicorn + scikit-learn, 1 worker", "", false, ""},
             {"fastapi2", "FastAPI + uvicorn + scikit-learn, 2 workers", "", false, ""},
             {"node", "Node.js http + onnxruntime-node", "", false, ""},
             {"nginx", "nginx `return 200` (HTTP floor, 1 worker)", "", false, ""}};
  const std::string fastapi_version =
      version_of({"/usr/bin/python3", env.source + "/bench/serve/fastapi_peer.py", "--versions"});
  const std::string node_version =
      version_of({"node", env.source + "/bench/serve/node_peer.js", "--versions", "--ort",
                  env.source + "/build/model-npm/node_modules"});
  const std::string nginx_version = version_of({"sh", "-c", "nginx -v 2>&1"});

  std::map<std::string, Server> servers;
  for (auto& p : r.peers) {
    auto s = start_server(env, p.key);
    if (!s) {
      p.why_not = std::string(s.error().message());
      if (p.key == "myelin" || p.key == "nginx") return s.error();
      continue;
    }
    p.ran = true;
    p.version = p.key == "myelin"  ? p.version
                : p.key == "node"  ? node_version
                : p.key == "nginx" ? nginx_version
                                   : fastapi_version;
    servers.emplace(p.key, std::move(*s));
  }
  {
    auto nb = start_server(env, "myelin_nobatch", {"--max-batch", "1"});
    if (!nb) return nb.error();
    servers.emplace("myelin_nobatch", std::move(*nb));
  }
  struct NginxStop {
    const Env& env;
    ~NginxStop() { stop_nginx(env); }
  } nginx_stop{env};

  std::fprintf(stderr, "myelin bench serve: saturation (wrk, %d rounds)...\n", r.rounds);
  MYELIN_RETURN_IF_ERROR(measure_saturation(env, servers, r));
  std::fprintf(stderr, "myelin bench serve: sequential round trips...\n");
  MYELIN_RETURN_IF_ERROR(measure_sequential(env, servers, r));
  std::fprintf(stderr, "myelin bench serve: open loop...\n");
  MYELIN_RETURN_IF_ERROR(measure_open_loop(env, servers, r));
  std::fprintf(stderr, "myelin bench serve: batching on/off...\n");
  MYELIN_RETURN_IF_ERROR(measure_batching(env, servers, r));
  std::fprintf(stderr, "myelin bench serve: JSON vs binary...\n");
  MYELIN_RETURN_IF_ERROR(measure_binary(env, servers, r));
  servers.clear();
  stop_nginx(env);
  std::fprintf(stderr, "myelin bench serve: start-up, RSS, idle connections, overload...\n");
  MYELIN_RETURN_IF_ERROR(measure_startup(env, r));
  MYELIN_RETURN_IF_ERROR(measure_idle(env, r));
  MYELIN_RETURN_IF_ERROR(measure_overload(env, r));
  std::fprintf(stderr, "myelin bench serve: batch-size sweep and calibration check...\n");
  if (Status s = measure_sweep(env, r); !s.ok()) {
    // Shown in the report's sweep section; the rest of the run stands.
    r.sweep_error = s.to_string();
    std::fprintf(stderr, "myelin bench serve: sweep: %s\n", r.sweep_error.c_str());
  }
  return serve_bench::render(r);
}

}  // namespace myelin::bench
