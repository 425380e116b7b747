// The peers `myelin bench secure` measures myelin's channel against, and the
// plumbing they share: connections (duplex = net::duplex_pair's memory pipe,
// tcp = loopback TCP with TCP_NODELAY), a server worker thread, plaintext
// framing over the same connections, and OpenSSL's TLS 1.3 with a throwaway
// self-signed certificate generated in-process.
#pragma once

#include <openssl/ssl.h>
#include <sys/uio.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/net/stream.h"

namespace myelin::bench::secure_peers {

enum class Transport { kDuplex, kTcp };
std::string to_string(Transport t);

// One end of a bench connection, used blocking: a socket (blocking system
// calls, the cheapest way to wait on one) or a memory-pipe Stream (parks in
// Stream::wait). Closes on destruction unless taken.
class End {
 public:
  End() = default;
  explicit End(int fd) : fd_(fd) {}
  explicit End(std::unique_ptr<net::Stream> s) : stream_(std::move(s)) {}
  End(End&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), stream_(std::move(o.stream_)), read_spin_(o.read_spin_) {}
  End& operator=(End&&) = delete;
  ~End();

  // Bytes read (> 0), 0 at end of stream, -1 on error.
  long read_some(void* data, std::size_t n);
  // Makes a socket's reads watch it for up to `spin` before they block, as
  // MSC1's BlockingChannel does on a flowing stream (kStreamSpin, 50 µs). A
  // blocked reader takes a scheduler wake-up per message (tens of µs on a
  // VM): a ping-pong peer that blocks would pay a cost MSC1 avoids. A
  // one-way reader gains nothing from it (its peer keeps it busy) and loses
  // to the polling, so the default is to block at once.
  void set_read_spin(Nanos spin) { read_spin_ = spin; }
  // Bytes written from the front of `iov` (> 0), or -1 on error.
  long writev_some(const iovec* iov, int count);
  // Ends the peer's reads after what was written.
  void shutdown_write();
  // Ends both directions: the peer's reads see end of stream, its writes fail.
  void shutdown();
  // The end as a non-blocking Stream, for MSC1.
  Result<std::unique_ptr<net::Stream>> take_stream();
  // Makes `ssl` read and write through this end (which must outlive it).
  bool attach(SSL* ssl);
  // The socket, or -1 for a memory pipe.
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  std::unique_ptr<net::Stream> stream_;
  Nanos read_spin_{};
};

struct Conn {
  End client;
  End server;
};

// Loopback TCP connections are set (TCP_CONGESTION, both ends) to cubic,
// Linux's default, whatever the machine's default is: this VM defaults to
// bbr, whose per-connection pacing put some MSC1 connections into a
// half-speed mode that cubic never showed (see reports/secure-channel.md).
inline constexpr const char* kBenchTcpCongestion = "cubic";

class PairFactory {
 public:
  static Result<PairFactory> create(Transport t);
  PairFactory(PairFactory&& o) noexcept
      : t_(o.t_), listen_fd_(o.listen_fd_), port_(o.port_), rings_(std::move(o.rings_)) {
    o.listen_fd_ = -1;
  }
  ~PairFactory();
  Result<Conn> make();
  // The congestion control a TCP connection of this factory ends up with
  // (kBenchTcpCongestion, or the machine's default if that was refused).
  Result<std::string> tcp_congestion();

 private:
  explicit PairFactory(Transport t) : t_(t) {}
  Transport t_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  // Duplex pipes reuse their rings, as a server making a pipe per
  // connection would, so a handshake's figures do not include mapping them.
  std::shared_ptr<net::RingPool> rings_ = net::RingPool::create();
};

// Keeps the two threads of a connection on different cores. Left to itself
// the scheduler often wakes a thread on its waker's core, and a pair that
// takes turns (one parked while the other runs) never looks imbalanced
// enough to be split again: a row then measures one core where it meant two.
// Pins the calling thread to the `slot`-th CPU it may run on (modulo their
// count) and restores its previous set when destroyed. With fewer than two
// CPUs allowed it does nothing.
class CpuPin {
 public:
  explicit CpuPin(std::size_t slot);
  ~CpuPin();
  CpuPin(const CpuPin&) = delete;
  CpuPin& operator=(const CpuPin&) = delete;

 private:
  bool pinned_ = false;
  std::vector<int> previous_;
};

// Where CpuPin(0) and CpuPin(1) put a thread, in words ("client on CPU 0,
// server on CPU 1" for `first` = "client", `second` = "server"), or "" when
// fewer than two CPUs are allowed (threads then run unpinned).
std::string describe_pinning(const std::string& first, const std::string& second);

// One persistent thread that runs jobs in order (the "server" side).
class Worker {
 public:
  // Runs on the `slot`-th allowed CPU (see CpuPin), or anywhere if -1.
  explicit Worker(int slot = -1);
  ~Worker();
  void post(std::function<void()> job);
  // Posts `job` and returns once it has begun on the worker, so a timed
  // client meets a server already waiting for it (a busy server's thread)
  // rather than one still being woken for the job (an idle server's).
  void post_started(std::function<void()> job);
  void wait_idle();

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> jobs_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

bool write_all(End& e, const void* data, std::size_t n);
bool read_all(End& e, void* data, std::size_t n);
// Plaintext framing: u32 length (little-endian) + payload, sent with one writev.
bool plain_send(End& e, std::span<const std::byte> payload);
// Reads one framed message into `buf` (grown as needed); returns its size or -1.
long plain_recv(End& e, std::vector<std::byte>& buf);

// The same framing read in 256 KiB gulps, as MSC1's reader does: one read
// serves many small messages.
class PlainReader {
 public:
  explicit PlainReader(End& e) : end_point_(e), buf_(256 * 1024) {}
  // The next message (valid until the next call), or false at end/error.
  bool next(std::span<const std::byte>& message);

 private:
  End& end_point_;
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0, end_ = 0;
};

// Plaintext framing into a user-space buffer, written once 64 KiB wait (the
// plaintext counterpart of BlockingChannel::queue).
class PlainWriter {
 public:
  explicit PlainWriter(End& e) : end_point_(e) { buf_.reserve(80 * 1024); }
  bool queue(std::span<const std::byte> payload);
  bool flush();

 private:
  End& end_point_;
  std::vector<std::byte> buf_;
};

// OpenSSL TLS 1.3 restricted to TLS_CHACHA20_POLY1305_SHA256 and X25519,
// with an Ed25519 self-signed certificate; no session tickets (every
// handshake is a full one), the client does not verify the certificate
// (myelin's mock attestation is equally cheap).
class TlsPeer {
 public:
  static Result<TlsPeer> create();
  TlsPeer(TlsPeer&& o) noexcept : server_(o.server_), client_(o.client_) {
    o.server_ = o.client_ = nullptr;
  }
  ~TlsPeer();
  SSL* new_server() const { return SSL_new(server_); }
  SSL* new_client() const { return SSL_new(client_); }

 private:
  TlsPeer() = default;
  SSL_CTX* server_ = nullptr;
  SSL_CTX* client_ = nullptr;
};

// A full TLS handshake with both ends on the calling thread, through a BIO
// pair (memory). Returns false on failure.
bool tls_handshake_in_memory(const TlsPeer& tls);
bool tls_write_all(SSL* ssl, const void* data, std::size_t n);
bool tls_read_all(SSL* ssl, void* data, std::size_t n);

}  // namespace myelin::bench::secure_peers
