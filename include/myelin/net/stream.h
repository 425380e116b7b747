// Stream transports: non-blocking byte streams for the secure channel and
// the servers, over TCP (TCP_NODELAY), Unix domain sockets, and an
// in-process duplex pair (a connected AF_UNIX socketpair, so both ends are
// ordinary fds that an EventLoop can watch).
//
// A Stream owns its fd and closes it when destroyed. Its I/O calls never
// block: read/writev return how much they moved and say when the kernel had
// nothing (would_block), so a caller waits for readiness through
// EventLoop::register_fd (Stream::watch does that for it). A Stream is used
// on one thread at a time (its loop's thread once watched).
//
// Listener accepts connections on its loop's thread and hands each one to a
// callback as a Stream. connect_tcp/connect_unix connect synchronously (with
// a timeout) and return a non-blocking Stream: connection setup is rare, and
// this keeps the API small.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/loop/event_loop.h"

namespace myelin::net {

struct IoResult {
  std::size_t bytes = 0;
  bool would_block = false;  // nothing moved because the kernel had nothing / no room
  bool eof = false;          // read only: the peer closed its write half
};

class Stream {
 public:
  // Takes ownership of a connected socket; makes it non-blocking.
  static Result<std::unique_ptr<Stream>> adopt(int fd, std::string peer);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Result<IoResult> read(std::span<std::byte> into);
  Result<IoResult> write(std::span<const std::byte> bytes);
  Result<IoResult> writev(std::span<const iovec> iov);
  // Half-close: the peer reads end-of-stream after what was written.
  Status shutdown_write();

  // Registers with `loop` (on its thread, or before it runs): `on_io` gets
  // the readiness bits. set_interest changes which bits are watched.
  Status watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io);
  Status set_interest(std::uint32_t interest);
  // Unregisters (if watched) and closes the fd; safe to call twice.
  void close();

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] const std::string& peer() const noexcept { return peer_; }

 private:
  Stream(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}
  int fd_ = -1;
  std::string peer_;
  EventLoop* loop_ = nullptr;
  std::uint32_t interest_ = 0;
};

// Two connected in-process streams.
Result<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>> duplex_pair();

Result<std::unique_ptr<Stream>> connect_tcp(const std::string& host, std::uint16_t port,
                                            Nanos timeout = std::chrono::seconds(5));
Result<std::unique_ptr<Stream>> connect_unix(const std::string& path,
                                             Nanos timeout = std::chrono::seconds(5));

class Listener {
 public:
  using AcceptCallback = std::function<void(std::unique_ptr<Stream>)>;

  // Binds and listens; accepts run on `loop`'s thread once it runs. Call on
  // the loop thread or before the loop starts. Port 0 picks a free port.
  static Result<std::unique_ptr<Listener>> tcp(EventLoop& loop, const std::string& host,
                                               std::uint16_t port, AcceptCallback on_accept);
  // Removes a stale socket file at `path` first.
  static Result<std::unique_ptr<Listener>> unix_socket(EventLoop& loop, const std::string& path,
                                                       AcceptCallback on_accept);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // Stops accepting (loop thread).
  void close();

 private:
  Listener(EventLoop& loop, int fd, AcceptCallback cb, std::string unix_path)
      : loop_(loop), fd_(fd), on_accept_(std::move(cb)), unix_path_(std::move(unix_path)) {}
  Status arm();
  void accept_ready();
  EventLoop& loop_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  AcceptCallback on_accept_;
  std::string unix_path_;
};

}  // namespace myelin::net
