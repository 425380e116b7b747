// ChannelPool: a bounded set of channels on one connection, shared by any
// number of threads.
//
// acquire(timeout) hands out an idle channel, opens a new one while fewer
// than `size` exist, or waits; try_acquire() never waits. A Lease is a
// move-only RAII handle: the channel goes back when the lease dies or
// reset() is called, so a double release cannot be written. A channel that
// the broker closed (a channel error) or that belongs to an earlier
// connection epoch is dropped on return and replaced on a later acquire,
// never handed out again. With automatic recovery on, the pool's channels are
// not recovered (open_channel(.., recoverable = false)): a lease taken before
// the connection died fails every call with kConnectionLost, acquire fails
// with kUnavailable while the connection recovers, and the pool refills
// from the recovered connection. All methods are thread-safe; leases may be moved
// between threads and outlive the pool object (they keep its state alive).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "myelin/amqp/connection.h"
#include "myelin/base/clock.h"
#include "myelin/base/result.h"

namespace myelin::amqp {

struct ChannelPoolOptions {
  std::size_t size = 20;
  // Put every channel in confirm mode with this window (0: no confirms).
  std::size_t confirm_window = 0;
  // basic.qos prefetch for every channel (0: leave the broker's default).
  std::uint16_t prefetch = 0;
  // Channels opened by create(); the rest open on demand.
  std::size_t open_eagerly = 0;
};

struct ChannelPoolStats {
  std::size_t size = 0;    // the bound
  std::size_t open = 0;    // channels that exist (idle + in use)
  std::size_t in_use = 0;  // leased out now
  std::uint64_t acquired = 0;
  std::uint64_t waited = 0;     // acquires that had to wait for a release
  std::uint64_t timed_out = 0;  // acquires that gave up
  std::uint64_t replaced = 0;   // dead or stale channels dropped
  Nanos wait_total{0};
  Nanos wait_max{0};
};

namespace detail {
struct PoolState;
}  // namespace detail

class ChannelPool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { reset(); }

    Channel* operator->() const noexcept { return channel_.get(); }
    Channel& operator*() const noexcept { return *channel_; }
    [[nodiscard]] Channel* get() const noexcept { return channel_.get(); }
    explicit operator bool() const noexcept { return channel_ != nullptr; }
    [[nodiscard]] std::uint64_t epoch() const noexcept { return channel_ ? channel_->epoch() : 0; }
    // Gives the channel back now (no-op on an empty lease).
    void reset() noexcept;

   private:
    friend class ChannelPool;
    Lease(std::shared_ptr<detail::PoolState> pool, std::shared_ptr<Channel> channel)
        : pool_(std::move(pool)), channel_(std::move(channel)) {}
    std::shared_ptr<detail::PoolState> pool_;
    std::shared_ptr<Channel> channel_;
  };

  static Result<std::unique_ptr<ChannelPool>> create(std::shared_ptr<Connection> connection,
                                                     ChannelPoolOptions options = {});
  ~ChannelPool();
  ChannelPool(const ChannelPool&) = delete;
  ChannelPool& operator=(const ChannelPool&) = delete;

  // kDeadlineExceeded when no channel freed up within `timeout`; the
  // connection's error when it is gone. The timeout bounds the wait for a
  // release; opening a new channel (below the bound) takes a broker round
  // trip and is bounded by open_channel's own 10 s. Refused at once
  // (kFailedPrecondition) on the connection's loop thread, where waiting
  // would stall the connection.
  Result<Lease> acquire(Nanos timeout = std::chrono::seconds(5));
  // kResourceExhausted when every channel is leased out. On the loop thread
  // it hands out an idle channel but cannot open one (kFailedPrecondition).
  Result<Lease> try_acquire();

  [[nodiscard]] ChannelPoolStats stats() const;

 private:
  explicit ChannelPool(std::shared_ptr<detail::PoolState> state) : state_(std::move(state)) {}
  Result<Lease> acquire_for(Nanos timeout);
  std::shared_ptr<detail::PoolState> state_;
};

}  // namespace myelin::amqp
