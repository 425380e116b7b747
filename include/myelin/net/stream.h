// Stream transports: non-blocking byte streams for the secure channel and
// the servers, over TCP (TCP_NODELAY), Unix domain sockets, and an
// in-process duplex pair.
//
// The duplex pair is a memory pipe: two single-producer/single-consumer
// byte rings, one per direction, with no system call on the data path; its
// rings can also be filled and read in place (write_window, read_window). A
// side that finds its ring empty (or full) raises a flag before it parks;
// the peer writes that side's eventfd only when it sees the flag, so a
// stream both of whose ends keep busy costs no system call at all, and an
// EventLoop watches a memory end through its eventfd like any other fd.
// socket_pair() gives the same pair over a connected AF_UNIX socketpair.
//
// A Stream's I/O calls never block: read/writev return how much they moved
// and say when there was nothing to move (would_block), so a caller waits
// for readiness through EventLoop (watch()) or, on a thread of its own,
// with wait(). A Stream is used on one thread at a time (its loop's thread
// once watched); the two ends of a pair may be on different threads.
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
#include "myelin/net/ring_pool.h"

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
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  virtual Result<IoResult> read(std::span<std::byte> into) = 0;
  virtual Result<IoResult> writev(std::span<const iovec> iov) = 0;
  Result<IoResult> write(std::span<const std::byte> bytes);
  // Zero-copy I/O, for a stream whose bytes pass through memory of this
  // process (the memory pipe). write_window() is free room the caller may
  // fill (possibly less than it needs; empty when the stream has no such
  // memory, is full, or can no longer be written), and commit_write(n)
  // sends its first n bytes. read_window() is bytes that arrived, which the
  // caller may read and change in place until consume_read(n) hands their
  // first n back (empty when there are none or the stream has no such
  // memory). Errors and end of stream show up only as empty windows: the
  // caller falls back to read()/writev(), which report them. Sockets return
  // empty windows; n must not exceed the window last returned.
  virtual std::span<std::byte> write_window() { return {}; }
  virtual void commit_write(std::size_t /*n*/) {}
  // Blocks (as wait() does) until write_window() offers at least `n` bytes:
  // true then; false at the deadline, once the stream can no longer be
  // written, or at once when no window of this stream could ever offer `n`.
  virtual bool wait_window(std::size_t /*n*/, MonoTime /*deadline*/) { return false; }
  virtual std::span<std::byte> read_window() { return {}; }
  virtual void consume_read(std::size_t /*n*/) {}
  // Half-close: the peer reads end-of-stream after what was written.
  virtual Status shutdown_write() = 0;

  // Registers with `loop` (on its thread, or before it runs): `on_io` gets
  // the readiness bits (level-triggered). set_interest changes which bits
  // are watched.
  virtual Status watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io) = 0;
  virtual Status set_interest(std::uint32_t interest) = 0;
  // Blocks the calling thread until the stream is ready for one of `events`
  // (kIoReadable, kIoWritable; end of stream and errors count as ready), or
  // fails with deadline_exceeded. For a stream that is not watched.
  virtual Status wait(std::uint32_t events, MonoTime deadline) = 0;
  // Whether wait(events, ...) would return at once (end of stream and errors
  // count as ready). Never blocks, and moves no bytes: a thread that expects
  // bytes soon spins on it before it parks in wait(). On a socket it is
  // poll() with no timeout, which takes no lock, where a read that would
  // block takes the socket's lock against the peer's incoming bytes.
  virtual bool ready_now(std::uint32_t events) = 0;
  // Unregisters (if watched) and closes; safe to call twice. The peer reads
  // end-of-stream after what was written, and its writes fail.
  virtual void close() = 0;

  // Who is at the other end, for logs and errors: the address the kernel
  // reports ("127.0.0.1:8000", "[::1]:8000"), whatever name was dialled;
  // "unix:PATH" for a Unix socket, with "(pid P, uid U)" of the connecting
  // process on the accepting side; a fixed label for in-process pairs.
  [[nodiscard]] const std::string& peer() const noexcept { return peer_; }

 protected:
  explicit Stream(std::string peer) : peer_(std::move(peer)) {}

 private:
  std::string peer_;
};

// Two connected in-process streams over a memory pipe; each direction
// buffers up to `capacity` bytes (rounded up to a power of two). wait()
// first watches for up to `spin` without parking: with the peer on another
// core its next bytes usually come sooner than a park and a wake-up (tens
// of µs on a VM), and a side that is not parked costs its peer no system
// call. Zero parks at once. With a `pool` the rings' memory comes from it
// and goes back to it when the pipe closes (see ring_pool.h); without one
// each pipe maps its own.
Result<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>> duplex_pair(
    std::size_t capacity = 256 * 1024, Nanos spin = std::chrono::microseconds(50),
    std::shared_ptr<RingPool> pool = nullptr);
// Two connected streams over an AF_UNIX socketpair.
Result<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>> socket_pair();

Result<std::unique_ptr<Stream>> connect_tcp(const std::string& host, std::uint16_t port,
                                            Nanos timeout = std::chrono::seconds(5));
Result<std::unique_ptr<Stream>> connect_unix(const std::string& path,
                                             Nanos timeout = std::chrono::seconds(5));

struct ListenOptions {
  // SO_REUSEPORT: several listeners (one per loop) share one port and the
  // kernel spreads incoming connections over them.
  bool reuse_port = false;
  int backlog = 1024;
};

class Listener {
 public:
  using AcceptCallback = std::function<void(std::unique_ptr<Stream>)>;

  // Binds and listens; accepts run on `loop`'s thread once it runs. Call on
  // the loop thread or before the loop starts. Port 0 picks a free port.
  // Accepted TCP streams have TCP_NODELAY set and peer() "ADDRESS:PORT".
  // Accepted Unix streams have peer() "unix:PATH (pid P, uid U)".
  static Result<std::unique_ptr<Listener>> tcp(EventLoop& loop, const std::string& host,
                                               std::uint16_t port, AcceptCallback on_accept,
                                               ListenOptions options = {});
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
