// The peers `myelin bench secure` measures myelin's channel against, and the
// plumbing they share: connected fd pairs (duplex = AF_UNIX socketpair,
// tcp = loopback TCP with TCP_NODELAY), a server worker thread, plaintext
// framing over the same fds, and OpenSSL's TLS 1.3 with a throwaway
// self-signed certificate generated in-process.
#pragma once

#include <openssl/ssl.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "myelin/base/result.h"

namespace myelin::bench::secure_peers {

enum class Transport { kDuplex, kTcp };
std::string to_string(Transport t);

// Connected blocking sockets; both ends close on destruction unless taken.
struct FdPair {
  int client = -1;
  int server = -1;
  FdPair() = default;
  FdPair(FdPair&& o) noexcept : client(o.client), server(o.server) { o.client = o.server = -1; }
  FdPair& operator=(FdPair&&) = delete;
  ~FdPair();
};

class PairFactory {
 public:
  static Result<PairFactory> create(Transport t);
  PairFactory(PairFactory&& o) noexcept : t_(o.t_), listen_fd_(o.listen_fd_), port_(o.port_) {
    o.listen_fd_ = -1;
  }
  ~PairFactory();
  Result<FdPair> make();

 private:
  explicit PairFactory(Transport t) : t_(t) {}
  Transport t_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
};

// One persistent thread that runs jobs in order (the "server" side).
class Worker {
 public:
  Worker();
  ~Worker();
  void post(std::function<void()> job);
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

// Blocking helpers on raw fds.
bool write_all(int fd, const void* data, std::size_t n);
bool read_all(int fd, void* data, std::size_t n);
// Plaintext framing: u32 length (little-endian) + payload, sent with one writev.
bool plain_send(int fd, std::span<const std::byte> payload);
// Reads one framed message into `buf` (grown as needed); returns its size or -1.
long plain_recv(int fd, std::vector<std::byte>& buf);

// The same framing read in 256 KiB gulps, as MSC1's reader does: one read
// system call serves many small messages.
class PlainReader {
 public:
  explicit PlainReader(int fd) : fd_(fd), buf_(256 * 1024) {}
  // The next message (valid until the next call), or false at end/error.
  bool next(std::span<const std::byte>& message);

 private:
  int fd_;
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0, end_ = 0;
};

// Plaintext framing into a user-space buffer, written once 64 KiB wait (the
// plaintext counterpart of BlockingChannel::queue).
class PlainWriter {
 public:
  explicit PlainWriter(int fd) : fd_(fd) { buf_.reserve(80 * 1024); }
  bool queue(std::span<const std::byte> payload);
  bool flush();

 private:
  int fd_;
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
