// `myelin serve`: serves models over the Open Inference Protocol (HTTP/REST).
//
// With neither --repository nor --model it serves the example models shipped
// in models/ under their file names (docs/serving.md). SIGTERM and SIGINT
// drain gracefully: stop accepting, answer everything in flight, exit 0.
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apps/myelin/commands.h"
#include "myelin/perf/calibration.h"
#include "myelin/serve/amqp_server.h"
#include "myelin/serve/client.h"
#include "myelin/serve/http_server.h"
#include "myelin/serve/model_repository.h"
#include "myelin/serve/secure_server.h"

#ifndef MYELIN_MODELS_DIR
#define MYELIN_MODELS_DIR "models"
#endif

namespace myelin::cli {
namespace {

struct ServeFlags {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string repository;
  std::vector<std::string> models;
  int io_threads = 0;
  int workers = 1;
  std::string max_batch = "64";  // rows, or "auto" (from --calibration)
  int max_delay_us = 500;
  double latency_budget_us = 0;  // with --max-batch auto
  std::string calibration;       // with --max-batch auto; default reports/serve.json
  std::string calibration_model;
  int inline_max_us = 50;
  int max_queue = 1024;
  int timeout_ms = 0;
  int max_connections = 16384;
  int header_timeout_ms = 10000;
  int idle_timeout_ms = 60000;
  long long max_body_bytes = 64ll << 20;
  int drain_timeout_ms = 30000;
  std::string port_file;
  // The MSC1 front end (docs/serving.md, "The secure front end").
  int secure_port = -1;  // -1: none
  std::string secure_unix;
  std::string attestation;
  std::string secure_port_file;
  std::string tls_cert, tls_key;
  // The RabbitMQ front end (docs/serving.md, "The RabbitMQ front end").
  std::string amqp_uri;
  int amqp_prefetch = 64;
  std::string amqp_queue_prefix = std::string(serve::kAmqpQueuePrefix);
  std::string amqp_dead_letter_exchange;
};

int usage(const std::string& msg) {
  std::fprintf(stderr, "myelin serve: %s\n", msg.c_str());
  return kExitUsage;
}

// The shipped example models: every models/*.onnx, named by its stem.
std::vector<std::pair<std::string, std::string>> default_models() {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* dir : {MYELIN_MODELS_DIR, "models"}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".onnx")
        out.emplace_back(e.path().stem().string(), e.path().string());
    }
    if (!out.empty()) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// --max-batch auto: the batcher setting the calibrated estimator recommends
// for the latency budget (docs/estimator.md), logged with the reason.
Result<perf::BatcherSetting> auto_batcher(const ServeFlags& f, bool delay_given) {
  if (!(f.latency_budget_us > 0))
    return invalid_argument("--max-batch auto: needs --latency-budget-us N (> 0)");
  std::string file = f.calibration;
  if (file.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists("reports/serve.json", ec))
      return not_found(
          "--max-batch auto: no --calibration FILE given and reports/serve.json does not exist "
          "(run `myelin bench serve`, or pass --calibration)");
    file = "reports/serve.json";
  }
  auto cal = perf::load_calibration(file, f.calibration_model);
  if (!cal) return cal.error().with_context("--calibration");
  std::vector<perf::BatcherSetting> candidates;
  const std::vector<double> delays = delay_given
                                         ? std::vector<double>{static_cast<double>(f.max_delay_us)}
                                         : std::vector<double>{100, 500};
  for (std::uint64_t b = 1; b <= 1024; b *= 2) {
    for (double d : delays) candidates.push_back({b, d});
  }
  auto rec = perf::recommend(*cal, candidates, f.latency_budget_us);
  if (!rec) return rec.error().with_context("--max-batch auto");
  nlohmann::json line = {{"level", "info"},
                         {"event", "max_batch_auto"},
                         {"calibration", file},
                         {"model", cal->model},
                         {"max_batch", rec->setting.max_batch},
                         {"max_delay_us", rec->setting.max_delay_us},
                         {"latency_budget_us", f.latency_budget_us},
                         {"predicted_wait_us", rec->wait.wait_us},
                         {"predicted_capacity_rps", rec->saturation.throughput},
                         {"why", rec->why}};
  std::fprintf(stderr, "%s\n", line.dump().c_str());
  return rec->setting;
}

int run_serve(const ServeFlags& f, const CLI::App& cmd) {
  serve::RepositoryOptions ro;
  ro.root = f.repository;
  for (const auto& m : f.models) {
    const auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      return usage("--model: expected NAME=PATH, got '" + m + "'");
    }
    ro.files.emplace_back(m.substr(0, eq), m.substr(eq + 1));
  }
  if (ro.root.empty() && ro.files.empty()) {
    ro.files = default_models();
    if (ro.files.empty()) return usage("no --repository or --model given, and no models/ found");
  }
  const bool budget_given = cmd.count("--latency-budget-us") > 0;
  const bool calibration_given =
      cmd.count("--calibration") > 0 || cmd.count("--calibration-model") > 0;
  if (f.max_batch == "auto") {
    auto chosen = auto_batcher(f, cmd.count("--max-delay-us") > 0);
    if (!chosen) return usage(chosen.error().to_string());
    ro.defaults.max_batch = static_cast<std::size_t>(chosen->max_batch);
    ro.defaults.max_delay =
        std::chrono::microseconds(static_cast<std::int64_t>(chosen->max_delay_us));
  } else {
    if (budget_given || calibration_given)
      return usage(std::string(budget_given ? "--latency-budget-us" : "--calibration") +
                   ": only with --max-batch auto");
    long long n = 0;
    const char* end = f.max_batch.data() + f.max_batch.size();
    const auto [ptr, ec] = std::from_chars(f.max_batch.data(), end, n);
    if (ec != std::errc() || ptr != end || n < 1 || n > 65536)
      return usage("--max-batch: expected a number in [1, 65536] or auto, got '" + f.max_batch +
                   "'");
    ro.defaults.max_batch = static_cast<std::size_t>(n);
  }
  if (f.max_batch != "auto") ro.defaults.max_delay = std::chrono::microseconds(f.max_delay_us);
  ro.defaults.max_queue = static_cast<std::size_t>(f.max_queue);
  ro.defaults.default_timeout = std::chrono::milliseconds(f.timeout_ms);
  ro.defaults.workers = static_cast<std::size_t>(f.workers);
  ro.defaults.inline_max_compute = std::chrono::microseconds(f.inline_max_us);
  auto repo = serve::ModelRepository::create(ro);
  if (!repo) return usage(std::string(repo.error().message()));

  // Every thread started from here on inherits the blocked signals; this
  // thread takes them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  const bool secure = f.secure_port >= 0 || !f.secure_unix.empty();
  if (secure && f.attestation.empty()) {
    return usage("--secure-port/--secure-unix need --attestation snp|tdx|mock|none");
  }
  if (!secure && !f.attestation.empty()) {
    return usage(
        "--attestation applies to the secure front end: add --secure-port or --secure-unix");
  }

  // The attestation device is opened before anything starts: a server that
  // cannot attest refuses to start, with the reason.
  std::unique_ptr<serve::ChannelSecurity> security;
  if (secure) {
    serve::SecurityConfig sc;
    sc.kind = f.attestation;
    auto sec = serve::ChannelSecurity::create_responder(sc);
    if (!sec) {
      std::fprintf(stderr, "myelin serve: --attestation %s: %s\n", f.attestation.c_str(),
                   std::string(sec.error().message()).c_str());
      return kExitFailure;
    }
    security = std::move(*sec);
  }

  std::optional<amqp::ConnectionConfig> amqp_config;
  if (!f.amqp_uri.empty()) {
    auto config = amqp::ConnectionConfig::from_uri(f.amqp_uri);
    if (!config) return usage("--amqp: " + std::string(config.error().message()));
    amqp_config = std::move(*config);
    amqp_config->name = "myelin serve";
    // A worker rides through broker restarts and network faults unless the
    // URI says recovery=0 (docs/serving.md, "The RabbitMQ front end").
    if (f.amqp_uri.find("recovery=") == std::string::npos) amqp_config->recovery.enabled = true;
  }

  (*repo)->load_all();
  serve::HttpServerOptions ho;
  ho.host = f.host;
  ho.port = static_cast<std::uint16_t>(f.port);
  ho.io_threads = static_cast<std::size_t>(f.io_threads);
  ho.max_connections = static_cast<std::size_t>(f.max_connections);
  ho.header_timeout = std::chrono::milliseconds(f.header_timeout_ms);
  ho.idle_timeout = std::chrono::milliseconds(f.idle_timeout_ms);
  ho.max_body_bytes = static_cast<std::size_t>(f.max_body_bytes);
  ho.tls_cert_file = f.tls_cert;
  ho.tls_key_file = f.tls_key;
  auto server = serve::HttpServer::create(ho, **repo);
  if (!server) return usage(std::string(server.error().message()));
  if (Status s = (*server)->start(); !s.ok()) {
    std::fprintf(stderr, "myelin serve: %s\n", std::string(s.message()).c_str());
    return kExitFailure;
  }
  std::unique_ptr<serve::SecureInferenceServer> secure_server;
  if (secure) {
    serve::SecureServerOptions so;
    so.host = f.host;
    if (f.secure_port >= 0) so.port = static_cast<std::uint16_t>(f.secure_port);
    so.unix_path = f.secure_unix;
    so.session = security->responder();
    auto ss = serve::SecureInferenceServer::create(std::move(so), **repo);
    if (!ss) return usage(std::string(ss.error().message()));
    secure_server = std::move(*ss);
    if (Status s = secure_server->start(); !s.ok()) {
      std::fprintf(stderr, "myelin serve: secure front end: %s\n",
                   std::string(s.message()).c_str());
      return kExitFailure;
    }
    if (!f.secure_port_file.empty()) {
      std::ofstream(f.secure_port_file) << secure_server->port() << "\n";
    }
  }
  std::unique_ptr<serve::AmqpInferenceServer> amqp_server;
  if (amqp_config) {
    serve::AmqpServerOptions ao;
    ao.connection = std::move(*amqp_config);
    ao.prefetch = static_cast<std::uint16_t>(f.amqp_prefetch);
    ao.queue_prefix = f.amqp_queue_prefix;
    ao.dead_letter_exchange = f.amqp_dead_letter_exchange;
    auto as = serve::AmqpInferenceServer::create(std::move(ao), **repo);
    if (!as) return usage(std::string(as.error().message()));
    amqp_server = std::move(*as);
    if (Status s = amqp_server->start(); !s.ok()) {
      std::fprintf(stderr, "myelin serve: %s\n", std::string(s.message()).c_str());
      return kExitFailure;
    }
    for (const std::string& q : amqp_server->queues()) {
      std::fprintf(stderr, "{\"level\":\"info\",\"event\":\"consuming\",\"queue\":\"%s\"}\n",
                   q.c_str());
    }
  }
  if (!f.port_file.empty()) {
    std::ofstream(f.port_file) << (*server)->port() << "\n";
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "{\"level\":\"info\",\"event\":\"draining\",\"signal\":\"%s\"}\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  // The RabbitMQ front end first: it stops taking requests and answers
  // (and acknowledges) the ones it holds while the batchers still run.
  if (amqp_server) {
    if (Status s =
            amqp_server->shutdown(mono_now() + std::chrono::milliseconds(f.drain_timeout_ms));
        !s.ok()) {
      std::fprintf(stderr, "myelin serve: %s\n", std::string(s.message()).c_str());
    }
  }
  if (secure_server) (void)secure_server->shutdown();
  const Status s = (*server)->shutdown(mono_now() + std::chrono::milliseconds(f.drain_timeout_ms));
  server->reset();
  repo->reset();
  if (!s.ok()) {
    std::fprintf(stderr, "myelin serve: %s\n", std::string(s.message()).c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void register_serve(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve models over the Open Inference Protocol (KServe v2 / Triton REST)");
  cmd->add_option("--host", f->host, "IPv4 address to listen on")->capture_default_str();
  cmd->add_option("--http-port", f->port, "HTTP port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--repository", f->repository,
                  "Model repository: DIR/<name>/<version>/model.onnx|model.mylm");
  cmd->add_option("--model", f->models, "NAME=PATH: serve one file as model NAME (repeatable)");
  cmd->add_option("--io-threads", f->io_threads, "HTTP I/O threads (0: one per core)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_option("--workers", f->workers, "Inference threads per model")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-batch", f->max_batch,
                  "Largest batch, in rows (1: no batching), or auto: the size the calibrated "
                  "estimator recommends for --latency-budget-us")
      ->capture_default_str();
  cmd->add_option("--latency-budget-us", f->latency_budget_us,
                  "With --max-batch auto: the predicted wait a request may have, µs");
  cmd->add_option("--calibration", f->calibration,
                  "With --max-batch auto: a `myelin bench serve` report (default: "
                  "reports/serve.json)");
  cmd->add_option("--calibration-model", f->calibration_model,
                  "With --max-batch auto: the calibrated model to size for (when the file has "
                  "several)");
  cmd->add_option("--max-delay-us", f->max_delay_us,
                  "How long a batch stays open to later requests")
      ->check(CLI::Range(0, 60000000))
      ->capture_default_str();
  cmd->add_option("--inline-max-us", f->inline_max_us,
                  "Most of a model's measured compute an I/O thread runs itself (0: never)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-queue", f->max_queue, "Requests queued per model before 503")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", f->timeout_ms, "Default request timeout (0: none)")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  cmd->add_option("--max-connections", f->max_connections, "Open connections before 503")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--header-timeout-ms", f->header_timeout_ms,
                  "A request begun must arrive within this (408)")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  cmd->add_option("--idle-timeout-ms", f->idle_timeout_ms, "Close idle keep-alive connections")
      ->check(CLI::Range(1, 86400000))
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", f->max_body_bytes, "Largest request body (413)")
      ->check(CLI::Range(1ll, 1ll << 32))
      ->capture_default_str();
  cmd->add_option("--drain-timeout-ms", f->drain_timeout_ms,
                  "On SIGTERM/SIGINT, how long to wait for requests in flight")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  cmd->add_option("--port-file", f->port_file, "Write the bound HTTP port to this file");
  cmd->add_option("--secure-port", f->secure_port,
                  "Serve MSC1 secure-channel requests on this TCP port (0: any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--secure-unix", f->secure_unix,
                  "Serve MSC1 secure-channel requests on this Unix socket");
  cmd->add_option("--attestation", f->attestation,
                  "Secure channel attestation: snp (/dev/sev-guest), tdx (configfs-tsm), "
                  "mock (tests) or none (development)")
      ->check(CLI::IsMember({"snp", "tdx", "mock", "none"}));
  cmd->add_option("--secure-port-file", f->secure_port_file,
                  "Write the bound secure-channel TCP port to this file");
  cmd->add_option("--tls-cert", f->tls_cert,
                  "Serve HTTPS (TLS 1.3/1.2): PEM certificate chain (with --tls-key)");
  cmd->add_option("--tls-key", f->tls_key, "Serve HTTPS: PEM private key of --tls-cert");
  cmd->add_option("--amqp", f->amqp_uri,
                  "Also serve requests from RabbitMQ: amqp://USER:PASS@HOST:PORT/VHOST "
                  "(a queue per model)");
  cmd->add_option("--amqp-prefetch", f->amqp_prefetch,
                  "Unacknowledged requests per queue this worker holds")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--amqp-queue-prefix", f->amqp_queue_prefix, "Queue of model M: PREFIX + M")
      ->capture_default_str();
  cmd->add_option("--amqp-dead-letter-exchange", f->amqp_dead_letter_exchange,
                  "Declare the queues with this dead-letter exchange and dead-letter bad requests");
  cmd->callback([f, cmd, &ctx] { ctx.exit_code = run_serve(*f, *cmd); });
}

}  // namespace myelin::cli
