// RingPool: recycled memory for the rings of duplex_pair() memory pipes.
//
// A new ring maps fresh pages, faults them in on first use and unmaps them
// (a TLB shootdown) when its pipe closes; a program that opens and closes
// many pipes (a handshake per connection, a benchmark) can instead hand
// duplex_pair() a pool, which keeps freed rings, up to max_cached_bytes in
// all, for the next pipe of the same capacity. A reused ring still holds an
// earlier pipe's bytes, but a reader only ever sees bytes written to its
// own pipe.
//
// Ownership: the caller creates the pool and passes it to duplex_pair();
// every pipe made from it holds a reference, so the pool lives until its
// creator and the last of those pipes have let go — a pipe may outlive the
// object that created the pool. There is no process-wide pool.
//
// Thread-safety: all methods are thread-safe; pipes on any thread may take
// rings from and return rings to one pool.
#pragma once

#include <cstddef>
#include <memory>

namespace myelin::net {

namespace detail {
struct RingPoolAccess;
}

class RingPool {
 public:
  static constexpr std::size_t kDefaultMaxCachedBytes = std::size_t{16} << 20;

  static std::shared_ptr<RingPool> create(std::size_t max_cached_bytes = kDefaultMaxCachedBytes);

  ~RingPool();
  RingPool(const RingPool&) = delete;
  RingPool& operator=(const RingPool&) = delete;

  // Bytes and rings waiting for reuse now.
  [[nodiscard]] std::size_t cached_bytes() const;
  [[nodiscard]] std::size_t cached_rings() const;
  [[nodiscard]] std::size_t max_cached_bytes() const noexcept;

 private:
  friend struct detail::RingPoolAccess;
  struct Impl;
  explicit RingPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace myelin::net
