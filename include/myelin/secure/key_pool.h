// KeyPool: ephemeral X25519 key pairs, each with its handshake nonce,
// generated ahead of the handshakes that use them.
//
// Generating a key pair is one X25519 scalar multiplication, as expensive as
// the agreement itself (~45 µs through OpenSSL here), and drawing the nonce
// is a DRBG call (~2 µs). A session that takes both from a pool keeps that
// cost off the handshake's critical path; the owner pays it earlier, when it
// is idle (a server between handshakes, a client while its TCP connect is in
// flight).
//
// Each entry is used by exactly one handshake and its private key wiped when
// that handshake no longer needs it, as with a key generated inline, so
// forward secrecy is unchanged; a pooled private key only lives longer in
// memory before its use (bounded by `capacity` and by how often the owner
// refills). A process that forks must not let parent and child draw from the
// same filled pool: both would use the same keys and nonces. When the pool is
// empty a session generates both inline, so a pool never makes a handshake
// fail.
//
// Thread-safe: refill() and the sessions' take() may run on any threads at
// once (a mutex guards the stack; it is held only to move a pointer).
// Sessions borrow the pool (SessionConfig::key_pool); it must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "myelin/base/result.h"

namespace myelin::secure {

namespace detail {
struct HandshakeRandom;
}  // namespace detail

struct KeyPoolStats {
  std::uint64_t generated = 0;  // by refill()
  std::uint64_t taken = 0;      // handed to a session
  std::uint64_t misses = 0;     // a session found the pool empty and generated inline
};

class KeyPool {
 public:
  // `capacity` >= 1: refill() stops when this many key pairs wait.
  explicit KeyPool(std::size_t capacity);
  ~KeyPool();
  KeyPool(const KeyPool&) = delete;
  KeyPool& operator=(const KeyPool&) = delete;

  // Generates entries (outside the lock) until `capacity` wait, or at most
  // `max` of them; returns how many it added. Fails only if OpenSSL does.
  Result<std::size_t> refill(std::size_t max = SIZE_MAX);

  // How many entries wait now.
  [[nodiscard]] std::size_t available() const;
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] KeyPoolStats stats() const;

  // For sessions: a waiting entry, or null (then counted as a miss).
  std::unique_ptr<detail::HandshakeRandom> take();

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<detail::HandshakeRandom>> keys_;
  KeyPoolStats stats_;
};

}  // namespace myelin::secure
