// TLS (1.3 and 1.2, OpenSSL) as a Stream over another Stream: HTTPS for
// `myelin serve` and its clients.
//
// TlsContext holds what every connection of one side shares: the
// certificate and key (server) or the trust anchors (client), the protocol
// versions, ciphers and ALPN. It is immutable once created and thread-safe;
// streams keep it alive. TlsStream wraps a connected transport (TCP, Unix,
// a duplex pair) and owns it. Its I/O calls never block, like any Stream:
// the handshake runs inside the first read() or write() (or handshake() on
// a stream that is not watched), and OpenSSL reads and writes the inner
// stream directly, with no buffer of this layer in between.
//
// One rule beyond Stream's: a write() that moved fewer bytes than asked
// (or would_block) must be retried with the same unsent bytes at the start
// (they may have moved in memory, and more may follow), because OpenSSL has
// already sealed the record they start. A caller that keeps its unsent bytes
// and retries them, as every writer in this tree does, meets it.
//
// Failures are precise locally (the returned Status names the peer and
// OpenSSL's reason) and counted in the context's TlsStats; the peer sees
// only the TLS alert. Plain HTTP sent to a TLS server is answered with a
// plain-text 400 saying the port speaks HTTPS, then closed (as nginx does).
//
// Thread-safety: a TlsStream is used on one thread at a time (its loop's
// thread once watched), like the stream it wraps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/net/stream.h"

namespace myelin::net {

enum class TlsVersion : std::uint8_t { kTls12, kTls13 };
std::string_view to_string(TlsVersion v) noexcept;

struct TlsServerOptions {
  std::string cert_file;  // PEM: the certificate, then any intermediates
  std::string key_file;   // PEM: its private key (unencrypted)
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  // Protocols the server speaks, in ALPN wire names. A client that offers
  // ALPN but none of these is refused (RFC 7301 3.2, no_application_protocol);
  // one that offers no ALPN is served.
  std::vector<std::string> alpn = {"http/1.1"};
  // Sent, best effort, to a client that spoke plain HTTP to this TLS port
  // before the connection closes (the caller's protocol knows what to say).
  std::string plaintext_reply;
  // Every failed connection (handshake or later): the peer and the reason.
  // Runs on the stream's thread; must not destroy the stream.
  std::function<void(const std::string& peer, const Status& error)> on_failure;
};

struct TlsClientOptions {
  std::string ca_file;    // PEM trust anchors; empty: the system's
  bool insecure = false;  // no certificate or name check (testing only)
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  std::vector<std::string> alpn = {"http/1.1"};  // offered, in order; empty: none
};

// Counters of one context's connections; relaxed atomics.
struct TlsStats {
  std::atomic<std::uint64_t> handshakes{0};  // completed
  // Connections that ended before their handshake completed: bad
  // handshakes, plain text, early closes, closed by us (a timeout).
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> plaintext_requests{
      0};  // plain HTTP sent to the TLS port (in failures)
};

class TlsContext {
 public:
  // Loads and checks the certificate and key: an error names the file and
  // says what is wrong with it (missing, unreadable, not PEM, the key does
  // not match the certificate).
  static Result<std::shared_ptr<TlsContext>> server(const TlsServerOptions& options);
  static Result<std::shared_ptr<TlsContext>> client(const TlsClientOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  [[nodiscard]] bool is_server() const noexcept;
  [[nodiscard]] TlsStats& stats() noexcept { return stats_; }
  [[nodiscard]] const TlsStats& stats() const noexcept { return stats_; }

  struct Impl;

 private:
  explicit TlsContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  TlsStats stats_;
  friend class TlsStream;
};

class TlsStream final : public Stream {
 public:
  // The server side of an accepted connection.
  static Result<std::unique_ptr<TlsStream>> server(std::shared_ptr<TlsContext> context,
                                                   std::unique_ptr<Stream> inner);
  // The client side; `server_name` is sent as SNI (unless it is an IP
  // address) and checked against the certificate (a DNS name or an IP).
  static Result<std::unique_ptr<TlsStream>> client(std::shared_ptr<TlsContext> context,
                                                   std::unique_ptr<Stream> inner,
                                                   const std::string& server_name);
  ~TlsStream() override;

  Result<IoResult> read(std::span<std::byte> into) override;
  Result<IoResult> writev(std::span<const iovec> iov) override;
  // Sends close_notify (best effort), then half-closes the transport.
  Status shutdown_write() override;
  Status watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io) override;
  Status set_interest(std::uint32_t interest) override;
  Status wait(std::uint32_t events, MonoTime deadline) override;
  bool ready_now(std::uint32_t events) override;
  // Sends close_notify once (best effort, never blocks), then closes.
  void close() override;

  // Runs the handshake to its end on a stream that is not watched, waiting
  // on the transport up to `deadline`.
  Status handshake(MonoTime deadline);
  [[nodiscard]] bool handshake_done() const noexcept;
  // After the handshake: the negotiated protocol version, cipher suite and
  // ALPN protocol (empty when none was agreed).
  [[nodiscard]] std::string version() const;
  [[nodiscard]] std::string cipher() const;
  [[nodiscard]] std::string alpn() const;

  struct Impl;

 private:
  explicit TlsStream(std::unique_ptr<Impl> impl, std::string peer);
  std::unique_ptr<Impl> impl_;
};

// connect_tcp, then a client TlsStream over it with its handshake done.
Result<std::unique_ptr<TlsStream>> connect_tls(const std::string& host, std::uint16_t port,
                                               std::shared_ptr<TlsContext> context,
                                               const std::string& server_name,
                                               Nanos timeout = std::chrono::seconds(5));

}  // namespace myelin::net
