#include "myelin/serve/http_server.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include "src/serve/http_connection.h"
#include "src/serve/log.h"

namespace myelin::serve {
using detail::Connection;
using detail::LoopContext;

struct HttpServer::Impl {
  detail::ServerShared shared;
  std::vector<std::unique_ptr<LoopContext>> loops;
  std::unique_ptr<detail::AdminQueue> admin;
  std::uint16_t port = 0;
  std::atomic<std::size_t> next_loop{0};
  bool started = false;
  bool stopped = false;

  void log(const std::string& line) const {
    if (shared.options.log) {
      shared.options.log(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }

  void accept(LoopContext& lc, std::unique_ptr<net::Stream> stream) {
    auto& m = shared.metrics;
    if (shared.draining.load(std::memory_order_relaxed)) {
      stream->close();
      return;
    }
    if (m.open_connections.load(std::memory_order_relaxed) >=
        static_cast<std::int64_t>(shared.options.max_connections)) {
      m.refused_connections.fetch_add(1, std::memory_order_relaxed);
      if (shared.tls) {  // a plain-text 503 would be noise to a TLS client
        stream->close();
        return;
      }
      const std::string body = "{\"error\":\"too many connections (limit " +
                               std::to_string(shared.options.max_connections) + ")\"}";
      const std::string msg =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
          "application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      (void)stream->write(std::as_bytes(std::span<const char>(msg)));
      (void)stream->shutdown_write();
      stream->close();
      return;
    }
    m.accepted_connections.fetch_add(1, std::memory_order_relaxed);
    if (shared.tls) {
      auto tls = net::TlsStream::server(shared.tls, std::move(stream));
      if (!tls) {
        log(detail::log_line("error", "tls", {{"error", tls.error().to_string()}}));
        return;
      }
      stream = std::move(*tls);
    }
    auto conn = std::make_shared<Connection>(lc, std::move(stream));
    if (!conn->start().ok()) return;
    lc.connections.emplace(conn.get(), std::move(conn));
  }

  static void sweep(LoopContext& lc) {
    const MonoTime now = mono_now();
    std::vector<std::shared_ptr<Connection>> all;
    all.reserve(lc.connections.size());
    for (auto& [p, c] : lc.connections) all.push_back(c);
    for (auto& c : all) c->sweep(now);
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_) (void)shutdown(mono_now());
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(HttpServerOptions options,
                                                       ModelRepository& repository) {
  if (options.io_threads == 0) {
    options.io_threads = std::max(1u, std::thread::hardware_concurrency());
  }
  if (options.max_connections == 0) return invalid_argument("max connections must be >= 1");
  if (options.max_pipeline == 0) return invalid_argument("max pipeline must be >= 1");
  auto impl = std::make_unique<Impl>();
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
      return invalid_argument("--tls-cert and --tls-key: give both or neither");
    }
    net::TlsServerOptions to;
    to.cert_file = options.tls_cert_file;
    to.key_file = options.tls_key_file;
    to.alpn = {"http/1.1"};
    static constexpr std::string_view kBody =
        "{\"error\":\"this port speaks HTTPS: plain HTTP was sent to it\"}";
    to.plaintext_reply =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(kBody.size()) + "\r\nConnection: close\r\n\r\n" + std::string(kBody);
    // Runs on an I/O loop; holds a copy of the log sink, not the server.
    to.on_failure = [log = options.log](const std::string& peer, const Status& error) {
      const std::string line = detail::log_line(
          "warn", "tls_failed", {{"peer", peer}, {"error", std::string(error.message())}});
      if (log) {
        log(line);
      } else {
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    };
    MYELIN_ASSIGN_OR_RETURN(impl->shared.tls, net::TlsContext::server(to));
    impl->shared.metrics.tls = &impl->shared.tls->stats();
  }
  impl->shared.options = std::move(options);
  impl->shared.repository = &repository;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

Status HttpServer::start() {
  Impl& im = *impl_;
  if (im.started) return failed_precondition("HttpServer::start: already started");
  im.started = true;
  const HttpServerOptions& o = im.shared.options;
  im.admin = std::make_unique<detail::AdminQueue>();
  im.shared.admin = im.admin.get();
  std::uint16_t port = o.port;
  for (std::size_t i = 0; i < o.io_threads; ++i) {
    auto lc = std::make_unique<LoopContext>();
    lc->shared = &im.shared;
    lc->read_buffer = std::make_unique<std::byte[]>(lc->read_buffer_size);
    MYELIN_ASSIGN_OR_RETURN(lc->loop, EventLoop::create());
    LoopContext* raw = lc.get();
    Impl* impl = &im;
    net::ListenOptions lo;
    lo.reuse_port = true;
    auto listener = net::Listener::tcp(
        *lc->loop, o.host, port,
        [impl, raw](std::unique_ptr<net::Stream> s) { impl->accept(*raw, std::move(s)); }, lo);
    if (!listener) {
      return Status(listener.error().code(),
                    "--host/--http-port: " + std::string(listener.error().message()));
    }
    lc->listener = std::move(*listener);
    port = lc->listener->port();  // port 0: the others join the one the first got
    const Nanos shortest = std::min(o.header_timeout, o.idle_timeout);
    const Nanos period =
        std::clamp<Nanos>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
    auto timer = lc->loop->schedule_every(period, [raw] { Impl::sweep(*raw); });
    if (!timer) return timer.error();
    lc->sweep_timer = *timer;
    im.loops.push_back(std::move(lc));
  }
  im.port = port;
  for (auto& lc : im.loops) MYELIN_RETURN_IF_ERROR(lc->loop->start());
  im.log(detail::log_line("info", "listening",
                          {{"protocol", im.shared.tls ? "https" : "http"},
                           {"address", o.host + ":" + std::to_string(port)},
                           {"io_threads", o.io_threads}}));
  return {};
}

std::uint16_t HttpServer::port() const noexcept { return impl_->port; }

Status HttpServer::adopt(std::unique_ptr<net::Stream> stream) {
  Impl& im = *impl_;
  if (!im.started || im.loops.empty()) return failed_precondition("HttpServer::adopt: not started");
  if (im.shared.draining.load()) return closed("HttpServer::adopt: shutting down");
  LoopContext* lc = im.loops[im.next_loop.fetch_add(1) % im.loops.size()].get();
  Impl* impl = &im;
  return lc->loop->submit(
      [impl, lc, s = std::move(stream)]() mutable { impl->accept(*lc, std::move(s)); });
}

const ServerMetrics& HttpServer::metrics() const noexcept { return impl_->shared.metrics; }

Status HttpServer::shutdown(MonoTime deadline) {
  Impl& im = *impl_;
  if (im.stopped) return {};
  im.stopped = true;
  im.shared.draining.store(true);
  // 1. Stop accepting; tell every connection to close once it owes nothing.
  for (auto& lc : im.loops) {
    LoopContext* raw = lc.get();
    (void)lc->loop->submit([raw] {
      if (raw->listener) raw->listener->close();
      std::vector<std::shared_ptr<Connection>> all;
      for (auto& [p, c] : raw->connections) all.push_back(c);
      for (auto& c : all) c->drain();
    });
  }
  // 2. Wait for the answers in flight.
  Status result;
  for (;;) {
    std::size_t open = 0;
    for (auto& lc : im.loops) {
      std::atomic<std::size_t> n{0};
      std::atomic<bool> done{false};
      LoopContext* raw = lc.get();
      if (lc->loop
              ->submit([raw, &n, &done] {
                n = raw->connections.size();
                done = true;
              })
              .ok()) {
        while (!done.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
        open += n.load();
      }
    }
    if (open == 0) break;
    if (mono_now() >= deadline) {
      result = deadline_exceeded(std::to_string(open) +
                                 " connections still had work at the shutdown deadline");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // 3. Close what is left, answer everything queued, stop the loops.
  for (auto& lc : im.loops) {
    LoopContext* raw = lc.get();
    (void)lc->loop->submit([raw] {
      std::vector<std::shared_ptr<Connection>> all;
      for (auto& [p, c] : raw->connections) all.push_back(c);
      for (auto& c : all) c->close_now();
      if (raw->sweep_timer != 0) (void)raw->loop->cancel(raw->sweep_timer);
    });
  }
  if (im.admin) im.admin->stop();
  im.shared.repository->shutdown();
  for (auto& lc : im.loops) (void)lc->loop->shutdown();
  // Connections still referenced by nothing but dropped tasks are gone now;
  // listeners close with their loops' contexts.
  for (auto& lc : im.loops) {
    lc->connections.clear();
    lc->listener.reset();
  }
  im.log(detail::log_line("info", "stopped", {{"protocol", "http"}}));
  return result;
}

}  // namespace myelin::serve
