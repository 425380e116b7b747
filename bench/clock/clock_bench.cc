// `myelin bench clock`: what a timestamp costs and how fine it is.
//
// Measure -> results -> render: the measurement fills LatencyRecorders, the
// harness Results describe each figure once, and the harness renders the
// Markdown and JSON from them.
//
// Every other benchmark brackets work with mono_now(); a figure below a few
// times this cost, or below the clock's resolution, is noise. This part
// measures that floor on the machine at hand, beside the alternatives a
// benchmark could have used, in the same run.
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bench/bench_part.h"
#include "bench/harness/render.h"
#include "bench/harness/results.h"
#include "myelin/base/clock.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/perf/format.h"
#include "myelin/perf/report.h"

namespace myelin::bench {
namespace {

struct Contender {
  std::string name;
  std::string what;
  // Reads the clock `n` times; returns a value derived from the reads so the
  // compiler cannot drop them.
  std::uint64_t (*read_n)(std::uint64_t n);
  // One reading in nanoseconds (for resolution); null when not in ns.
  std::int64_t (*read_ns)();
};

template <clockid_t Id>
std::int64_t clock_ns() {
  timespec ts{};
  clock_gettime(Id, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

template <clockid_t Id>
std::uint64_t clock_n(std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += static_cast<std::uint64_t>(clock_ns<Id>());
  return acc;
}

std::int64_t mono_ns() { return mono_now().time_since_epoch().count(); }

std::uint64_t mono_n(std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += static_cast<std::uint64_t>(mono_ns());
  return acc;
}

std::uint64_t system_clock_n(std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    acc += static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return acc;
}

std::uint64_t rdtsc_n(std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += __rdtsc();
  return acc;
}

std::uint64_t rdtscp_n(std::uint64_t n) {
  std::uint64_t acc = 0;
  unsigned aux = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += __rdtscp(&aux);
  return acc;
}

volatile std::uint64_t g_sink;  // keeps results observable

std::int64_t system_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Smallest positive step between consecutive readings, watching for up to
// 10,000 steps or 50 ms (a coarse clock ticks only every few ms). 0 if the
// clock never moved in the window.
std::int64_t resolution_ns(std::int64_t (*read)()) {
  constexpr int kSteps = 10000;
  const MonoTime until = mono_now() + std::chrono::milliseconds(50);
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  std::int64_t prev = read();
  for (int steps = 0; steps < kSteps;) {
    const std::int64_t now = read();
    if (now > prev) {
      best = std::min(best, now - prev);
      ++steps;
    }
    prev = now;
    if ((steps & 63) == 0 && mono_now() > until) break;
  }
  return best == std::numeric_limits<std::int64_t>::max() ? 0 : best;
}

}  // namespace

Result<perf::Report> run_clock_bench(const BenchOptions& options) {
  const std::vector<Contender> contenders = {
      {"mono_now()", "myelin's interval clock: steady_clock (vDSO clock_gettime MONOTONIC)", mono_n,
       mono_ns},
      {"clock_gettime(MONOTONIC)", "the syscall interface directly", clock_n<CLOCK_MONOTONIC>,
       clock_ns<CLOCK_MONOTONIC>},
      {"clock_gettime(MONOTONIC_COARSE)", "tick-granular, cheaper", clock_n<CLOCK_MONOTONIC_COARSE>,
       clock_ns<CLOCK_MONOTONIC_COARSE>},
      {"system_clock::now()", "wall clock (not monotonic)", system_clock_n, system_ns},
      {"rdtsc", "raw cycle counter, not serialising", rdtsc_n, nullptr},
      {"rdtscp", "cycle counter, waits for earlier instructions", rdtscp_n, nullptr},
  };
  const int repetitions = options.quick ? 51 : 501;
  const std::uint64_t reads_per_rep = 10'000;

  // --- measure ---------------------------------------------------------------
  std::vector<LatencyRecorder> per_read(contenders.size(), LatencyRecorder(repetitions));
  for (const Contender& c : contenders) g_sink = c.read_n(reads_per_rep);  // warm up
  for (int rep = 0; rep < repetitions; ++rep) {
    for (std::size_t c = 0; c < contenders.size(); ++c) {
      const MonoTime start = mono_now();
      g_sink = contenders[c].read_n(reads_per_rep);
      const double ns = static_cast<double>((mono_now() - start).count());
      per_read[c].record_value(ns / static_cast<double>(reads_per_rep));
    }
  }
  std::vector<std::int64_t> resolution(contenders.size(), -1);
  for (std::size_t c = 0; c < contenders.size(); ++c) {
    if (contenders[c].read_ns) resolution[c] = resolution_ns(contenders[c].read_ns);
  }
  // What that means for a recorded latency sample: two reads and one record().
  LatencyRecorder overhead(static_cast<std::size_t>(repetitions) * 1000);
  LatencyRecorder scratch(1000);
  for (int rep = 0; rep < repetitions; ++rep) {
    for (int i = 0; i < 1000; ++i) {
      const MonoTime a = mono_now();
      scratch.record_since(a);
      const MonoTime b = mono_now();
      overhead.record(b - a);
    }
    scratch.clear();
  }

  // --- results ---------------------------------------------------------------
  using harness::Value;
  harness::Results results;
  results.part = "clock";
  results.title = "myelin Benchmark: clock";
  results.generated = perf::utc_timestamp_now();
  results.machine = perf::MachineInfo::detect();
  results.method = std::to_string(repetitions) + " repetitions of " +
                   std::to_string(reads_per_rep) +
                   " back-to-back reads per contender, interleaved; ns/read per repetition, "
                   "percentiles from sorted samples (nearest rank)" +
                   (options.quick ? "; --quick" : "");

  harness::Table cost{"cost",
                      {{"clock", "Clock", perf::Align::kLeft},
                       {"p50_ns", "p50 (ns/read)"},
                       {"p95_ns", "p95"},
                       {"p99_ns", "p99"},
                       {"min_ns", "min"},
                       {"resolution_ns", "Resolution (ns)"},
                       {"vs_mono_now_p50", "vs mono_now() p50"},
                       {"what", "What it is", perf::Align::kLeft}},
                      {}};
  MYELIN_ASSIGN_OR_RETURN(const harness::Samples base, harness::Samples::of(per_read[0]));
  for (std::size_t c = 0; c < contenders.size(); ++c) {
    MYELIN_ASSIGN_OR_RETURN(const harness::Samples s, harness::Samples::of(per_read[c]));
    const double p50 = s.percentile(50);
    cost.add_row({Value::str(contenders[c].name), Value::fixed(p50, 2),
                  Value::fixed(s.percentile(95), 2), Value::fixed(s.percentile(99), 2),
                  Value::fixed(s.min(), 2),
                  resolution[c] < 0 ? Value::none("n/a (counts cycles)")
                                    : Value::count(static_cast<double>(resolution[c])),
                  Value::fixed(p50 / base.percentile(50), 2, "x"), Value::str(contenders[c].what)});
  }
  results.add_section("Cost of one reading")
      .paragraph(
          "Time per read, from timing a block of back-to-back reads; the loop overhead is "
          "included and is the same for every contender.")
      .table(std::move(cost))
      .chart({"cost",
              "Cost of one reading (log scale)",
              "cost",
              "clock",
              {"p50_ns", "p99_ns"},
              "ns per read",
              harness::Chart::Kind::kBar,
              true});

  MYELIN_ASSIGN_OR_RETURN(const harness::Samples o, harness::Samples::of(overhead));
  const auto duration = [](double ns) { return Value::num(ns, perf::duration_ns(ns)); };
  results.add_section("Floor of one latency sample")
      .paragraph(
          "An empty timed region (start read, record_since, next read): the smallest latency "
          "any myelin benchmark can report on this machine.")
      .figures({{"sample_floor_p50_ns", "p50", duration(o.percentile(50))},
                {"sample_floor_p99_ns", "p99", duration(o.percentile(99))},
                {"sample_floor_p999_ns", "p99.9", duration(o.percentile(99.9))},
                {"sample_floor_samples", "samples", Value::count(static_cast<double>(o.count()))}});
  return harness::to_report(results);
}

}  // namespace myelin::bench
