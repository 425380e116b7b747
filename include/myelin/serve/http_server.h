// HttpServer: the Open Inference Protocol (KServe v2 / Triton) REST front
// end of `myelin serve`, on myelin's EventLoop.
//
// Threads: `io_threads` event loops, each with its own SO_REUSEPORT listener
// on the same port, so the kernel spreads connections over them. An I/O
// loop reads, parses (llhttp) and decodes (simdjson) requests and writes
// answers; it never computes: inference goes to the model's Batcher, whose
// worker hands the finished request back to the connection's loop. One
// more thread runs repository changes (load/unload), which block.
//
// HTTP/1.1 with keep-alive and pipelining (answers in request order),
// Content-Length and chunked bodies, Expect: 100-continue, limits on header
// bytes (431) and body bytes (413), a header timeout against slow clients
// (408), an idle timeout, and a connection limit (503 on accept). With a
// certificate and key it serves HTTPS instead: a TLS layer wraps each
// connection's stream, so plain HTTP costs nothing for it; a handshake must
// finish within the header timeout, and failures are logged and counted.
//
// Lifetime: start() once; shutdown() stops accepting, answers everything in
// flight (until its deadline), then stops the repository's batchers and the
// loops. The repository must outlive the server. Thread-safe: port(),
// shutdown(), metrics().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/net/stream.h"
#include "myelin/serve/metrics.h"
#include "myelin/serve/model_repository.h"

namespace myelin::serve {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;   // 0 picks a free port (see port())
  std::size_t io_threads = 0;  // 0: one per core
  std::size_t max_connections = 16384;
  std::size_t max_header_bytes = 16 * 1024;         // request line + headers; over: 431
  std::size_t max_body_bytes = 64 * 1024 * 1024;    // over: 413
  Nanos header_timeout = std::chrono::seconds(10);  // a request begun must be read by then: 408
  Nanos idle_timeout = std::chrono::seconds(60);    // a connection with nothing to do closes
  std::size_t max_pipeline = 128;  // requests of one connection in flight before it stops reading
  // HTTPS: both set, every connection (accepted or adopted) speaks TLS 1.3
  // or 1.2 with ALPN http/1.1 (net/tls.h). create() loads and checks them.
  std::string tls_cert_file;  // PEM certificate chain
  std::string tls_key_file;   // PEM private key
  // One structured log line (JSON) per event; null: stderr.
  std::function<void(const std::string&)> log;
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> create(HttpServerOptions options,
                                                    ModelRepository& repository);
  ~HttpServer();  // shutdown() with no grace period left
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listeners and starts the loops.
  Status start();
  [[nodiscard]] std::uint16_t port() const noexcept;
  // Serves a connection that did not come from the listeners (a Unix
  // socket, an in-process duplex pair for tests and fuzzing), on the next
  // I/O loop in turn. Thread-safe; fails once shutdown began.
  Status adopt(std::unique_ptr<net::Stream> stream);
  // Graceful stop: see the header comment. Returns once everything stopped;
  // deadline_exceeded if connections still had work at `deadline`.
  Status shutdown(MonoTime deadline);
  [[nodiscard]] const ServerMetrics& metrics() const noexcept;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace myelin::serve
