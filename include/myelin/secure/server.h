// The server side of MSC1: accept connections (TCP, Unix socket, or
// streams handed in), run one responder SecureChannel per connection, and
// give each connection its own handler.
//
// A Server lives on one EventLoop. It owns its listeners and every open
// Connection; a Connection is shared (std::shared_ptr) so that work that
// answers later, such as an inference on another thread, can hold a
// std::weak_ptr to it and reply through EventLoop::submit only if the
// connection still exists. The server drops its reference once the
// connection's stream is closed (the handler has seen on_closed by then),
// so closed connections do not pile up until shutdown.
//
// Lifetimes: a handler callback may drop the last reference to anything,
// the Server included (destroying it from inside a callback is allowed);
// what the Server owns is then released after the callback's call stack
// has unwound, never under it. Handlers are owned by their Connection: a
// handler that keeps its Connection must keep a weak_ptr (Connection::weak),
// or it keeps itself alive.
//
// Threading: the Server and every Connection are used on the loop thread
// only (create the Server there or before the loop runs; destroy it there,
// or after the loop has stopped). Handler callbacks run on the loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "myelin/base/result.h"
#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"
#include "myelin/secure/channel.h"
#include "myelin/secure/session.h"

namespace myelin::secure {

namespace detail {
struct ServerState;
}  // namespace detail

class Connection;

// One connection's events. on_established and on_message run only between
// the handshake and the close; on_closed runs exactly once per connection
// whose handler was created, with ok for a normal close by either side, or
// why the channel failed (the handshake included).
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_established(Connection& /*conn*/, const SessionInfo& /*info*/) {}
  // The message lives only during the call.
  virtual void on_message(Connection& conn, std::span<const std::byte> message) = 0;
  virtual void on_closed(Connection& /*conn*/, const Status& /*reason*/) {}
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends one message (fails before the handshake completes and after the
  // close). Loop thread only.
  Status send(std::span<const std::byte> message);
  Status send_parts(std::span<const std::span<const std::byte>> parts);
  // Clean close: Close(normal); the handler's on_closed follows.
  Status close();

  // The peer's address as the transport reports it ("127.0.0.1:51234",
  // "[::1]:51234", "unix:/run/x.sock (pid 42)").
  [[nodiscard]] const std::string& peer() const noexcept { return peer_; }
  [[nodiscard]] bool established() const noexcept;
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  // What the handshake agreed (mode, suite, the client's evidence in mutual
  // mode); meaningful once established.
  [[nodiscard]] const SessionInfo& info() const noexcept;
  [[nodiscard]] EventLoop& loop() const noexcept { return loop_; }
  [[nodiscard]] std::weak_ptr<Connection> weak() { return weak_from_this(); }

 private:
  friend class Server;
  friend struct detail::ServerState;
  Connection(EventLoop& loop, std::string peer) : loop_(loop), peer_(std::move(peer)) {}

  EventLoop& loop_;
  std::string peer_;
  std::unique_ptr<ConnectionHandler> handler_;
  std::unique_ptr<SecureChannel> channel_;
  std::weak_ptr<detail::ServerState> server_;
  bool closed_ = false;
  bool detached_ = false;  // the server is gone: no more handler calls
};

struct ServerOptions {
  // The responder's session configuration (role is set to kResponder).
  SessionConfig session;
  // Period of each channel's timer (handshake timeout, idle timeout,
  // heartbeats).
  Nanos tick_period = std::chrono::milliseconds(100);
  // Connections beyond this many are closed as soon as they are accepted.
  std::size_t max_connections = 4096;
};

class Server {
 public:
  // Makes the handler of a new connection (before its handshake), or
  // returns null to refuse the connection.
  using HandlerFactory = std::function<std::unique_ptr<ConnectionHandler>(Connection&)>;

  static Result<std::unique_ptr<Server>> create(EventLoop& loop, ServerOptions options,
                                                HandlerFactory make_handler);
  // Closes the listeners and every connection (Close(normal)); the
  // connections are released right after the current callback (or at once
  // off the loop thread), without lingering for the peers' answers. The
  // handlers hear nothing more.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts on an IPv4 address; port 0 picks one. Returns the port.
  Result<std::uint16_t> listen_tcp(const std::string& host, std::uint16_t port);
  // Accepts on a Unix socket at `path` (a stale socket file is replaced).
  Status listen_unix(const std::string& path);
  // Serves a stream accepted elsewhere (an in-process duplex pair, say).
  Status adopt(std::unique_ptr<net::Stream> stream);

  // Open connections, counting those whose close is not yet complete.
  [[nodiscard]] std::size_t connections() const noexcept;
  // Stops accepting and closes every connection cleanly; the handlers see
  // on_closed as each completes.
  void close_all();

 private:
  explicit Server(std::shared_ptr<detail::ServerState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ServerState> state_;
};

}  // namespace myelin::secure
