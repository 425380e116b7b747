#include "bench/bench_part.h"

namespace myelin::bench {

std::vector<BenchPart> all_parts() {
  return {
      {"clock", "clock",
       "Cost and resolution of the timers every other benchmark uses (the measurement floor)",
       run_clock_bench},
      {"eventloop", "eventloop",
       "Event-loop tournament (seed 001): myelin vs mutex designs, libuv and asio, same run",
       run_eventloop_bench},
  };
}

}  // namespace myelin::bench
