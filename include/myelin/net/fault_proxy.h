// FaultProxy: a fault-injecting TCP forwarder for tests and benchmarks.
//
// It listens on a loopback port and forwards every accepted connection to
// one upstream (a broker, an echo server). Faults are switched at run time,
// from any thread, and act on every connection, open or new:
//   reset_all        RST both sides of every open connection (SO_LINGER 0);
//   set_refuse       new connections are accepted and reset at once;
//   set_blackhole    nothing moves either way, sockets stay open (a
//                    partition: a side's FIN or RST is held too, and the
//                    other side learns of it only at heal);
//   set_latency      each chunk read is delivered base + U[0, jitter] later,
//                    in order;
//   set_bandwidth    each direction of each connection moves at most this
//                    many bytes a second (a token bucket of 20 ms);
//   cut_after        a connection forwards N more bytes in a direction, then
//                    is reset (both sides);
//   set_half_open    one direction stops: kSilent holds its bytes (the
//                    socket stays open), kClosed sends its receiver a FIN and
//                    discards what its sender writes afterwards;
//   heal             clears every fault; held bytes flow again.
// A fault call returns once the fault is in effect, with the steady-clock
// instant it took effect (also kept as last_fault_at()), so a benchmark can
// measure detection and recovery from that instant.
//
// Threading: the proxy runs on an EventLoop thread of its own. Every public
// method is thread-safe; fault calls wait for the proxy thread (bounded by
// `control_timeout`) and must not be called from a callback running on it
// (there are none: the proxy calls no user code). stats() reads atomics.
// The destructor stops the thread and closes every socket (with a FIN).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"

namespace myelin::net {

// kUpstream: client -> upstream; kDownstream: upstream -> client.
enum class FlowDirection : std::uint8_t { kUpstream, kDownstream, kBoth };
std::string_view to_string(FlowDirection direction) noexcept;

enum class HalfOpenMode : std::uint8_t { kOff, kSilent, kClosed };
std::string_view to_string(HalfOpenMode mode) noexcept;

struct FaultProxyOptions {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;  // 0 picks a free port
  std::string upstream_host = "127.0.0.1";
  std::uint16_t upstream_port = 0;
  // Bytes a direction holds (read but not yet written) before the proxy
  // stops reading that side: back-pressure reaches the sender.
  std::size_t buffer_bytes = 256 * 1024;
  Nanos connect_timeout = std::chrono::seconds(5);  // to the upstream
  Nanos control_timeout = std::chrono::seconds(5);  // a fault call's wait
  std::uint64_t seed = 1;                           // latency jitter
};

// Counters since start; each read is atomic, the set is not a snapshot.
struct FaultProxyStats {
  std::uint64_t accepted = 0;           // client connections accepted
  std::uint64_t active = 0;             // connections open now
  std::uint64_t refused = 0;            // reset at accept (set_refuse)
  std::uint64_t resets_injected = 0;    // connections reset by a fault
  std::uint64_t upstream_failures = 0;  // upstream connect failed
  std::uint64_t bytes_upstream = 0;     // written to the upstream
  std::uint64_t bytes_downstream = 0;   // written to clients
};

namespace detail {
class FaultProxyImpl;
}

class FaultProxy {
 public:
  // Binds, resolves the upstream and starts the proxy thread.
  static Result<std::unique_ptr<FaultProxy>> start(FaultProxyOptions options);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;

  Result<MonoTime> reset_all();
  Result<MonoTime> set_refuse(bool on);
  Result<MonoTime> set_blackhole(bool on);
  // base and jitter >= 0; both zero turns latency off.
  Result<MonoTime> set_latency(Nanos base, Nanos jitter);
  // 0 = unlimited.
  Result<MonoTime> set_bandwidth(std::uint64_t bytes_per_second);
  // Applies to connections open now and opened later, until heal().
  Result<MonoTime> cut_after(FlowDirection direction, std::uint64_t bytes);
  Result<MonoTime> set_half_open(FlowDirection direction, HalfOpenMode mode);
  Result<MonoTime> heal();

  // The instant of the last fault call other than heal(); nullopt before any.
  [[nodiscard]] std::optional<MonoTime> last_fault_at() const noexcept;
  [[nodiscard]] FaultProxyStats stats() const noexcept;

 private:
  explicit FaultProxy(std::unique_ptr<detail::FaultProxyImpl> impl);
  std::unique_ptr<detail::FaultProxyImpl> impl_;
};

}  // namespace myelin::net
