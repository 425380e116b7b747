#include "myelin/amqp/channel_pool.h"

#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace myelin::amqp {
namespace detail {

struct PoolState {
  std::shared_ptr<Connection> connection;
  ChannelPoolOptions options;
  mutable std::mutex mu;
  std::condition_variable freed;
  std::vector<std::shared_ptr<Channel>> idle;
  std::size_t open = 0;  // idle + leased + being opened
  ChannelPoolStats stats;

  // Opens and configures one channel (no lock held).
  Result<std::shared_ptr<Channel>> open_one() const {
    // Not recoverable: a lease never moves to another connection under its
    // holder; after a recovery its channel fails with kConnectionLost and
    // the pool opens fresh ones on the recovered connection.
    MYELIN_ASSIGN_OR_RETURN(
        auto ch, connection->open_channel(std::chrono::seconds(10), /*recoverable=*/false));
    if (options.prefetch != 0) MYELIN_RETURN_IF_ERROR(ch->qos(options.prefetch).get());
    if (options.confirm_window != 0) {
      MYELIN_RETURN_IF_ERROR(ch->confirm_select(options.confirm_window).get());
    }
    return ch;
  }

  bool usable(const Channel& ch) const { return ch.is_open() && ch.epoch() == connection->epoch(); }

  void give_back(std::shared_ptr<Channel> ch) {
    {
      std::lock_guard lock(mu);
      --stats.in_use;
      if (usable(*ch)) {
        idle.push_back(std::move(ch));
      } else {
        --open;
        ++stats.replaced;
      }
    }
    freed.notify_one();
  }
};

}  // namespace detail

ChannelPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::move(other.pool_)), channel_(std::move(other.channel_)) {}

ChannelPool::Lease& ChannelPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::move(other.pool_);
    channel_ = std::move(other.channel_);
  }
  return *this;
}

void ChannelPool::Lease::reset() noexcept {
  if (!channel_) return;
  pool_->give_back(std::move(channel_));
  channel_.reset();
  pool_.reset();
}

Result<std::unique_ptr<ChannelPool>> ChannelPool::create(std::shared_ptr<Connection> connection,
                                                         ChannelPoolOptions options) {
  if (!connection) return invalid_argument("channel pool: no connection");
  if (options.size == 0) return invalid_argument("channel pool: size must be at least 1");
  if (options.open_eagerly > options.size) {
    return invalid_argument("channel pool: open_eagerly (" + std::to_string(options.open_eagerly) +
                            ") exceeds size (" + std::to_string(options.size) + ")");
  }
  auto state = std::make_shared<detail::PoolState>();
  state->connection = std::move(connection);
  state->options = options;
  state->stats.size = options.size;
  for (std::size_t i = 0; i < options.open_eagerly; ++i) {
    MYELIN_ASSIGN_OR_RETURN(auto ch, state->open_one());
    state->idle.push_back(std::move(ch));
    ++state->open;
  }
  return std::unique_ptr<ChannelPool>(new ChannelPool(std::move(state)));
}

ChannelPool::~ChannelPool() = default;

Result<ChannelPool::Lease> ChannelPool::acquire(Nanos timeout) {
  detail::PoolState& s = *state_;
  if (s.connection->in_loop_thread()) {
    // Waiting here would stall the only thread that can free a channel,
    // answer an open or send a heartbeat.
    return failed_precondition(
        "channel pool: acquire blocks, so it cannot be called from a callback on the "
        "connection's loop thread (a publish callback, on_closed, on_blocked); use try_acquire "
        "there, or acquire from another thread");
  }
  return acquire_for(timeout);
}

Result<ChannelPool::Lease> ChannelPool::acquire_for(Nanos timeout) {
  detail::PoolState& s = *state_;
  const MonoTime start = mono_now();
  const MonoTime deadline = start + timeout;
  bool waited = false;
  std::unique_lock lock(s.mu);
  for (;;) {
    while (!s.idle.empty()) {
      std::shared_ptr<Channel> ch = std::move(s.idle.back());
      s.idle.pop_back();
      if (!s.usable(*ch)) {  // closed by the broker while idle: replace it
        --s.open;
        ++s.stats.replaced;
        continue;
      }
      ++s.stats.in_use;
      ++s.stats.acquired;
      if (waited) {
        const Nanos w = mono_now() - start;
        s.stats.wait_total += w;
        if (w > s.stats.wait_max) s.stats.wait_max = w;
      }
      return Lease(state_, std::move(ch));
    }
    if (s.connection->is_recovering()) {
      return unavailable(
          "channel pool: the connection is recovering; leases from its lost epoch fail, new ones "
          "are handed out once it has recovered");
    }
    if (!s.connection->is_open()) {
      Status why = s.connection->close_reason();
      return why.ok() ? closed("channel pool: the connection is closed") : why;
    }
    if (s.open < s.options.size) {
      ++s.open;
      lock.unlock();
      auto ch = s.open_one();
      lock.lock();
      if (!ch) {
        --s.open;
        s.freed.notify_one();
        return std::move(ch).error().with_context("channel pool: opening a channel");
      }
      ++s.stats.in_use;
      ++s.stats.acquired;
      return Lease(state_, std::move(*ch));
    }
    if (!waited) {
      waited = true;
      ++s.stats.waited;
    }
    if (s.freed.wait_until(lock, deadline) == std::cv_status::timeout && s.idle.empty() &&
        s.open >= s.options.size) {
      ++s.stats.timed_out;
      return deadline_exceeded("channel pool: all " + std::to_string(s.options.size) +
                               " channels stayed in use for " +
                               std::to_string(timeout.count() / 1'000'000) + " ms");
    }
  }
}

Result<ChannelPool::Lease> ChannelPool::try_acquire() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->idle.empty() && state_->open >= state_->options.size) {
      return resource_exhausted("channel pool: all " + std::to_string(state_->options.size) +
                                " channels are in use");
    }
  }
  // Never waits for a release; on the loop thread, opening a channel is
  // refused by open_channel itself.
  return acquire_for(Nanos(0));
}

ChannelPoolStats ChannelPool::stats() const {
  std::lock_guard lock(state_->mu);
  ChannelPoolStats s = state_->stats;
  s.open = state_->open;
  return s;
}

}  // namespace myelin::amqp
