// A one-line text command language for FaultProxy, so that a process other
// than the one holding the proxy (a Python peer, a human, a shell script)
// can switch its faults: `myelin faultproxy` reads these from stdin.
//
//   reset                          RST every open connection
//   refuse on|off                  reset new connections at accept
//   blackhole on|off               forward nothing, keep sockets open
//   latency MS [JITTER_MS]         add latency (decimal milliseconds)
//   bandwidth BYTES_PER_SECOND     0 = unlimited
//   cut up|down|both BYTES         reset after BYTES more bytes that way
//   halfopen up|down|both silent|closed|off
//   heal                           clear every fault
//   stats                          (no fault; the caller prints the counters)
//   quit
// Words are separated by spaces or tabs; blank lines and lines starting
// with '#' are kind kNone. Parsing never throws and bounds every number.
#pragma once

#include <cstdint>
#include <string_view>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/net/fault_proxy.h"

namespace myelin::net {

struct FaultCommand {
  enum class Kind : std::uint8_t {
    kNone,
    kReset,
    kRefuse,
    kBlackhole,
    kLatency,
    kBandwidth,
    kCut,
    kHalfOpen,
    kHeal,
    kStats,
    kQuit
  };
  Kind kind = Kind::kNone;
  bool on = false;                                 // refuse, blackhole
  Nanos latency{0};                                // latency
  Nanos jitter{0};                                 // latency
  std::uint64_t amount = 0;                        // bandwidth (bytes/s), cut (bytes)
  FlowDirection direction = FlowDirection::kBoth;  // cut, halfopen
  HalfOpenMode mode = HalfOpenMode::kOff;          // halfopen
};

// Errors name the word that was wrong, e.g.
// "latency: 'abc' is not a number of milliseconds".
Result<FaultCommand> parse_fault_command(std::string_view line);

// Applies a fault command (kReset .. kHeal) to `proxy`: the instant it took
// effect. Other kinds are invalid_argument.
Result<MonoTime> apply_fault_command(FaultProxy& proxy, const FaultCommand& command);

}  // namespace myelin::net
