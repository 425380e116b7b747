// Connection: the public face of a ConnectionCore.
#include "myelin/amqp/connection.h"

#include <utility>

#include "src/amqp/connection_core.h"

namespace myelin::amqp {

Result<std::shared_ptr<Connection>> Connection::connect(ConnectionConfig config) {
  return connect(std::move(config), ConnectionDriver{});
}

Result<std::shared_ptr<Connection>> Connection::connect(ConnectionConfig config,
                                                        ConnectionDriver driver) {
  MYELIN_ASSIGN_OR_RETURN(auto core,
                          detail::ConnectionCore::connect(std::move(config), std::move(driver)));
  return std::shared_ptr<Connection>(new Connection(std::move(core)));
}

Connection::Connection(std::shared_ptr<detail::ConnectionCore> core) : core_(std::move(core)) {}

Connection::~Connection() {
  // A recovering connection stops recovering with its last Connection handle
  // (Channel handles alone do not keep it reconnecting).
  if (core_->is_open() || core_->is_recovering()) {
    (void)core_->close(core_->config().close_timeout_on_destroy);
  }
}

Result<std::shared_ptr<Channel>> Connection::open_channel(Nanos timeout, bool recoverable) {
  return core_->open_channel(timeout, recoverable);
}

Status Connection::close() { return core_->close(core_->config().close_timeout); }
Status Connection::close(Nanos timeout) { return core_->close(timeout); }
bool Connection::is_open() const noexcept { return core_->is_open(); }
bool Connection::is_blocked() const noexcept { return core_->is_blocked(); }
void Connection::on_blocked(std::function<void(bool, const std::string&)> callback) {
  core_->set_on_blocked(std::move(callback));
}
void Connection::on_closed(std::function<void(const Status&)> callback) {
  core_->set_on_closed(std::move(callback));
}
Status Connection::close_reason() const { return core_->close_reason(); }
bool Connection::is_recovering() const noexcept { return core_->is_recovering(); }
void Connection::add_recovery_listener(RecoveryListener listener) {
  core_->add_recovery_listener(std::move(listener));
}
std::uint64_t Connection::epoch() const noexcept { return core_->epoch(); }
std::uint16_t Connection::channel_max() const noexcept { return core_->channel_max(); }
std::uint32_t Connection::frame_max() const noexcept { return core_->frame_max(); }
std::uint16_t Connection::heartbeat_s() const noexcept { return core_->heartbeat_s(); }
ConnectionStats Connection::stats() const { return core_->stats(); }
const ConnectionConfig& Connection::config() const noexcept { return core_->config(); }
bool Connection::in_loop_thread() const noexcept { return core_->in_loop_thread(); }

}  // namespace myelin::amqp
