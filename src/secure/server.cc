// Server: listeners, one responder SecureChannel per connection, and the
// release of closed connections after the call stack that closed them.
#include "myelin/secure/server.h"

#include <unordered_map>
#include <utility>
#include <vector>

namespace myelin::secure {
namespace detail {

struct ServerState : std::enable_shared_from_this<ServerState> {
  ServerState(EventLoop& l, ServerOptions o, Server::HandlerFactory f)
      : loop(l), options(std::move(o)), make_handler(std::move(f)) {}

  Status serve(std::unique_ptr<net::Stream> stream);
  void retire(Connection* c);
  // Releases what `graveyard` holds from a microtask: never under the call
  // stack of the channel that asked for it.
  void bury(std::shared_ptr<Connection> c);

  EventLoop& loop;
  ServerOptions options;
  Server::HandlerFactory make_handler;
  std::vector<std::unique_ptr<net::Listener>> listeners;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> conns;
  std::vector<std::shared_ptr<Connection>> graveyard;
};

Status ServerState::serve(std::unique_ptr<net::Stream> stream) {
  if (!stream) return invalid_argument("secure server: no stream");
  if (conns.size() >= options.max_connections) {
    const std::string peer = stream->peer();
    stream->close();
    return resource_exhausted("secure server: refused " + peer + ": " +
                              std::to_string(options.max_connections) +
                              " connections are open (max_connections)");
  }
  std::shared_ptr<Connection> conn(new Connection(loop, stream->peer()));
  Connection* const c = conn.get();
  c->server_ = weak_from_this();
  c->detached_ = true;  // until the handler exists
  // The callbacks reach the connection through a raw pointer: the channel
  // that calls them is owned by the connection, and the server's reference
  // (or the graveyard's) keeps it alive until the channel has finished.
  ChannelCallbacks cb;
  cb.on_established = [c](const SessionInfo& info) {
    if (!c->detached_) c->handler_->on_established(*c, info);
  };
  cb.on_message = [c](std::span<const std::byte> m) {
    if (!c->detached_) c->handler_->on_message(*c, m);
  };
  cb.on_closed = [c](const Status& reason) {
    c->closed_ = true;
    if (!c->detached_) c->handler_->on_closed(*c, reason);
  };
  cb.on_finished = [c] {
    if (auto st = c->server_.lock()) st->retire(c);
  };
  SessionConfig config = options.session;
  config.role = Role::kResponder;
  MYELIN_ASSIGN_OR_RETURN(
      c->channel_, SecureChannel::open(loop, std::move(stream), std::move(config), std::move(cb),
                                       options.tick_period));
  c->handler_ = make_handler ? make_handler(*c) : nullptr;
  if (!c->handler_) {
    c->closed_ = true;
    return failed_precondition("secure server: the handler factory refused " + c->peer_);
  }
  c->detached_ = false;
  conns.emplace(c, std::move(conn));
  return ok_status();
}

void ServerState::retire(Connection* c) {
  auto it = conns.find(c);
  if (it == conns.end()) return;
  std::shared_ptr<Connection> keep = std::move(it->second);
  conns.erase(it);
  bury(std::move(keep));
}

void ServerState::bury(std::shared_ptr<Connection> c) {
  graveyard.push_back(std::move(c));
  if (graveyard.size() > 1) return;  // a release is queued already
  std::weak_ptr<ServerState> weak = weak_from_this();
  // If the microtask cannot be queued (the loop is stopping), the graveyard
  // empties when the server goes.
  (void)loop.queue_microtask([weak] {
    if (auto st = weak.lock()) {
      auto dead = std::move(st->graveyard);
      st->graveyard.clear();
    }
  });
}

}  // namespace detail

// --- Connection ----------------------------------------------------------------

Connection::~Connection() = default;

Status Connection::send(std::span<const std::byte> message) {
  if (!channel_) return myelin::closed("secure connection " + peer_ + ": closed");
  return channel_->send(message);
}

Status Connection::send_parts(std::span<const std::span<const std::byte>> parts) {
  if (!channel_) return myelin::closed("secure connection " + peer_ + ": closed");
  return channel_->send_parts(parts);
}

Status Connection::close() {
  if (!channel_) return ok_status();
  return channel_->close();
}

bool Connection::established() const noexcept {
  return channel_ && channel_->session().established();
}

const SessionInfo& Connection::info() const noexcept { return channel_->session().info(); }

// --- Server --------------------------------------------------------------------

Result<std::unique_ptr<Server>> Server::create(EventLoop& loop, ServerOptions options,
                                               HandlerFactory make_handler) {
  if (!make_handler) return invalid_argument("secure server: no handler factory");
  if (options.max_connections == 0) {
    return invalid_argument("secure server: max_connections must be > 0");
  }
  auto state =
      std::make_shared<detail::ServerState>(loop, std::move(options), std::move(make_handler));
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

Server::~Server() {
  // The handlers hear nothing more: their owner is going away.
  for (auto& [c, conn] : state_->conns) conn->detached_ = true;
  close_all();
  // Whatever called us may be a callback of one of these connections or a
  // listener: they are released after its call stack has unwound.
  auto conns = std::move(state_->conns);
  auto graveyard = std::move(state_->graveyard);
  auto listeners = std::move(state_->listeners);
  EventLoop& loop = state_->loop;
  state_.reset();
  if (loop.in_loop_thread()) {
    (void)loop.queue_microtask(
        [c = std::move(conns), g = std::move(graveyard), l = std::move(listeners)] {});
  }
}

Result<std::uint16_t> Server::listen_tcp(const std::string& host, std::uint16_t port) {
  std::weak_ptr<detail::ServerState> weak = state_;
  MYELIN_ASSIGN_OR_RETURN(
      auto l, net::Listener::tcp(state_->loop, host, port, [weak](std::unique_ptr<net::Stream> s) {
        if (auto st = weak.lock()) (void)st->serve(std::move(s));
      }));
  const std::uint16_t bound = l->port();
  state_->listeners.push_back(std::move(l));
  return bound;
}

Status Server::listen_unix(const std::string& path) {
  std::weak_ptr<detail::ServerState> weak = state_;
  MYELIN_ASSIGN_OR_RETURN(auto l, net::Listener::unix_socket(
                                      state_->loop, path, [weak](std::unique_ptr<net::Stream> s) {
                                        if (auto st = weak.lock()) (void)st->serve(std::move(s));
                                      }));
  state_->listeners.push_back(std::move(l));
  return ok_status();
}

Status Server::adopt(std::unique_ptr<net::Stream> stream) {
  return state_->serve(std::move(stream));
}

std::size_t Server::connections() const noexcept { return state_->conns.size(); }

void Server::close_all() {
  for (auto& l : state_->listeners) l->close();
  // close() may finish a channel at once, which retires it from conns.
  std::vector<std::shared_ptr<Connection>> open;
  open.reserve(state_->conns.size());
  for (auto& [c, conn] : state_->conns) open.push_back(conn);
  for (auto& conn : open) (void)conn->close();
}

}  // namespace myelin::secure
