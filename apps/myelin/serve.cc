// `myelin serve`: serves models over the Open Inference Protocol (HTTP/REST).
//
// With neither --repository nor --model it serves the example models shipped
// in models/ under their file names (docs/serving.md). SIGTERM and SIGINT
// drain gracefully: stop accepting, answer everything in flight, exit 0.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "apps/myelin/commands.h"
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
  int max_batch = 64;
  int max_delay_us = 500;
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

int run_serve(const ServeFlags& f) {
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
  ro.defaults.max_batch = static_cast<std::size_t>(f.max_batch);
  ro.defaults.max_delay = std::chrono::microseconds(f.max_delay_us);
  ro.defaults.max_queue = static_cast<std::size_t>(f.max_queue);
  ro.defaults.default_timeout = std::chrono::milliseconds(f.timeout_ms);
  ro.defaults.workers = static_cast<std::size_t>(f.workers);
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
  if (!f.port_file.empty()) {
    std::ofstream(f.port_file) << (*server)->port() << "\n";
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "{\"level\":\"info\",\"event\":\"draining\",\"signal\":\"%s\"}\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
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
  cmd->add_option("--max-batch", f->max_batch, "Largest batch, in rows (1: no batching)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  cmd->add_option("--max-delay-us", f->max_delay_us,
                  "How long a batch stays open to later requests")
      ->check(CLI::Range(0, 60000000))
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
  cmd->callback([f, &ctx] { ctx.exit_code = run_serve(*f); });
}

}  // namespace myelin::cli
