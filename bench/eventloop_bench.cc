// `myelin bench eventloop`: seed report 001's event-loop tournament, redone
// with sorted-sample percentiles, a verified-asleep wake-up, and myelin's
// loop beside four peers (two mutex designs from the seed, libuv, asio), all
// measured in the same run. Scenarios are in eventloop_scenarios.cc.
#include <algorithm>
#include <string>
#include <vector>

#include "bench/bench_part.h"
#include "bench/eventloop/alloc_check.h"
#include "bench/eventloop_contenders.h"
#include "bench/eventloop_scenarios.h"
#include "myelin/perf/format.h"
#include "src/loop/task_queue.h"

namespace myelin::bench {
namespace {

using perf::Cell;

Cell ns_cell(double ns, int decimals = 1) { return Cell::num(ns, perf::fixed(ns, decimals)); }
Cell ratio_cell(double value, double myelin) {
  if (myelin <= 0) return Cell::str("n/a");
  const double r = value / myelin;
  return Cell::num(r, perf::fixed(r, 2) + "x");
}

perf::Table latency_table(const std::vector<std::string>& names,
                          const std::vector<LatencySummary>& s,
                          const std::vector<std::string>& extra_name,
                          const std::vector<std::vector<Cell>>& extra) {
  perf::Table t{{{"Contender", perf::Align::kLeft},
                 {"Mean (ns)"},
                 {"p50 (ns)"},
                 {"p95 (ns)"},
                 {"p99 (ns)"},
                 {"p99.9 (ns)"},
                 {"max (ns)"},
                 {"Samples"},
                 {"p50 vs myelin"}},
                {}};
  for (const std::string& e : extra_name) t.columns.push_back({e});
  for (std::size_t c = 0; c < names.size(); ++c) {
    std::vector<Cell> row{Cell::str(names[c]),
                          ns_cell(s[c].mean, 0),
                          ns_cell(s[c].p50, 0),
                          ns_cell(s[c].p95, 0),
                          ns_cell(s[c].p99, 0),
                          ns_cell(s[c].p999, 0),
                          ns_cell(s[c].max, 0),
                          Cell::num(static_cast<double>(s[c].count),
                                    perf::group_int(static_cast<double>(s[c].count))),
                          ratio_cell(s[c].p50, s[0].p50)};
    if (c < extra.size()) row.insert(row.end(), extra[c].begin(), extra[c].end());
    t.add_row(std::move(row));
  }
  return t;
}

std::string verdict(bool met) { return met ? "met" : "NOT met"; }

}  // namespace

Result<perf::Report> run_eventloop_bench(const BenchOptions& options) {
  const ScenarioSizes sz = options.quick ? ScenarioSizes::quick() : ScenarioSizes::full();
  MYELIN_ASSIGN_OR_RETURN(TournamentResults r, run_tournament(sz));

  perf::Report report;
  report.title = "myelin Benchmark: event loop tournament (seed 001, corrected)";
  report.generated = perf::utc_timestamp_now();
  report.machine = perf::MachineInfo::detect();
  report.method =
      "five loops in one process and one run, each on its own thread, same myelin::Task payload; "
      "the awake scenarios (submit, awake round trip, burst) and the cross-core floor run in " +
      std::to_string(sz.awake_rounds) +
      " interleaved rounds, each giving every contender a slice, and figures are taken over all "
      "rounds' samples; "
      "percentiles by LatencyRecorder (nearest rank on sorted samples); ns/op = wall time / "
      "operations" +
      std::string(options.quick ? "; --quick (reduced sample counts)" : "");

  const std::vector<std::string>& names = r.names;
  const std::size_t n = names.size();

  // --- summary against the targets ---------------------------------
  {
    const double submit1 = r.submit_ns[0][0];
    const double submit_uv = r.submit_ns[3][0], submit_asio = r.submit_ns[4][0];
    const double rt = r.awake[0].p50;
    const double burst = r.burst_ns[0].back();
    perf::Table t{{{"Target", perf::Align::kLeft},
                   {"Measured", perf::Align::kLeft},
                   {"Verdict", perf::Align::kLeft}},
                  {}};
    t.add_row({Cell::str("submit, 1 producer <= 20 ns/op"), ns_cell(submit1),
               Cell::str(verdict(submit1 <= 20))});
    t.add_row({Cell::str("submit, 1 producer >= 3x faster than libuv and asio"),
               Cell::str(perf::fixed(submit_uv / submit1, 1) + "x libuv, " +
                         perf::fixed(submit_asio / submit1, 1) + "x asio"),
               Cell::str(verdict(submit_uv >= 3 * submit1 && submit_asio >= 3 * submit1))});
    t.add_row({Cell::str("round trip awake p50 <= 300 ns"), ns_cell(rt, 0),
               Cell::str(verdict(rt <= 300))});
    t.add_row({Cell::str("round trip awake p50 >= 2x better than libuv and asio"),
               Cell::str(perf::fixed(r.awake[3].p50 / rt, 1) + "x libuv, " +
                         perf::fixed(r.awake[4].p50 / rt, 1) + "x asio"),
               Cell::str(verdict(r.awake[3].p50 >= 2 * rt && r.awake[4].p50 >= 2 * rt))});
    // A wake-up from a parked thread is the VM scheduler's work and its p50
    // moves by a few percent from run to run for every contender alike, so
    // "no worse" allows 5% on the p50 (and says so); the p99s are shown.
    t.add_row({Cell::str("round trip asleep p50 no worse than libuv's (within 5%); p50/p99 shown"),
               Cell::str(perf::fixed(r.asleep[0].p50, 0) + " / " + perf::fixed(r.asleep[0].p99, 0) +
                         " ns vs libuv " + perf::fixed(r.asleep[3].p50, 0) + " / " +
                         perf::fixed(r.asleep[3].p99, 0) + " ns"),
               Cell::str(verdict(r.asleep[0].p50 <= r.asleep[3].p50 * 1.05))});
    t.add_row(
        {Cell::str("burst 4096 <= 25 ns/op"), ns_cell(burst), Cell::str(verdict(burst <= 25))});
    // Counted in a separate process (see bench/eventloop/alloc_check.h) and
    // judged from the count, never asserted.
    const harness::Check allocs = measure_task_allocations(options.quick);
    t.add_row({Cell::str(allocs.target.what),
               allocs.measured ? Cell::num(*allocs.measured, perf::fixed(*allocs.measured, 3) +
                                                                 " per task: " + allocs.note)
                               : Cell::str("not measured: " + allocs.note),
               Cell::str(allocs.measured ? harness::judge(allocs.target, *allocs.measured).text
                                         : "not measured")});
    t.add_row(
        {Cell::str("zero syscalls per task while awake"),
         Cell::str(perf::group_int(static_cast<double>(r.awake_wakeups)) + " eventfd writes, " +
                   perf::group_int(static_cast<double>(r.awake_polls)) + " epoll calls over " +
                   perf::group_int(static_cast<double>(r.awake[0].count)) + " round trips"),
         Cell::str(verdict(r.awake_wakeups == 0 && r.awake_polls == 0))});
    auto& s = report.add_section("Targets (issue 3) and verdicts");
    s.table(std::move(t));
    s.paragraph(r.explanation);
  }

  // --- submit cost -------------------------------------------------------------
  {
    perf::Table t{{{"Contender", perf::Align::kLeft}}, {}};
    for (int p : sz.producers)
      t.columns.push_back({std::to_string(p) + (p == 1 ? " producer" : " producers")});
    t.columns.push_back({"1-producer vs myelin"});
    for (std::size_t c = 0; c < n; ++c) {
      std::vector<Cell> row{Cell::str(names[c])};
      for (double v : r.submit_ns[c]) row.push_back(ns_cell(v, 1));
      row.push_back(ratio_cell(r.submit_ns[c][0], r.submit_ns[0][0]));
      t.add_row(std::move(row));
    }
    report.add_section("Multi-producer submit-only cost (ns/op, lower is better)")
        .paragraph(
            "P producer threads submit a no-op task as fast as they can while the loop "
            "(spinning, so it is never woken) drains. ns/op = wall time from the start "
            "barrier to the last producer's return / total submits; median of " +
            std::to_string(sz.submit_reps) +
            " repetitions (spread over the rounds, each round's fresh loop first warmed up by "
            "one untimed repetition) of " +
            perf::group_int(static_cast<double>(sz.submit_ops)) +
            " submits. This machine has 2 cores: above 1 producer the threads share "
            "them with the loop, so the figures include preemption, as the seed's did.")
        .table(std::move(t));
  }

  // --- round trips -----------------------------------------------------------
  report.add_section("Round-trip latency, loop awake (ns)")
      .paragraph(
          "One producer: t0, submit a task that sets an atomic flag (alone on its cache "
          "line, like the floor's), spin until the flag is seen, t1. The loop busy-polls when idle "
          "(myelin: spin_before_sleep = 2 s; "
          "Baseline/AlternateThree: spin on a pending flag; libuv: uv_run(NOWAIT) in a "
          "loop; asio: io_context::poll() in a loop). " +
          std::to_string(sz.rt_awake_samples) +
          " samples in all; each round's slice starts "
          "with a tenth as many warm-up round trips.")
      .table(latency_table(names, r.awake, {}, {}))
      .paragraph("Hardware floor, no loop: two threads passing one atomic back and forth: p50 " +
                 perf::fixed(r.floor.p50, 0) + " ns, p99 " + perf::fixed(r.floor.p99, 0) +
                 " ns, p99.9 " + perf::fixed(r.floor.p999, 0) + " ns.");
  {
    std::vector<std::vector<Cell>> extra;
    for (std::size_t c = 0; c < n; ++c) {
      extra.push_back({Cell::num(static_cast<double>(r.asleep_unverified[c]),
                                 perf::group_int(static_cast<double>(r.asleep_unverified[c]))),
                       Cell::str(r.park_checks[c])});
    }
    report.add_section("Round-trip latency, loop verified asleep (ns)")
        .paragraph(
            "Same round trip, but each loop blocks when idle (myelin: spin_before_sleep = "
            "0), and before every sample the producer waits until the loop thread is "
            "verified parked, by the contender's own evidence and by the kernel: "
            "/proc/self/task/<tid>/stat must show state 'S' on two reads 20 us apart. A "
            "sample whose loop could not be verified within 200 ms is skipped and counted. "
            "The figure is the full wake-up path: the producer's syscall, the scheduler "
            "waking the loop thread, and the task hand-off. Measured in the same interleaved "
            "rounds as the awake scenarios (a fresh blocking loop per contender per round).")
        .table(latency_table(names, r.asleep, {"Skipped (not verified)", "How parked was checked"},
                             extra));
  }

  // --- bursts ----------------------------------------------------------------
  {
    perf::Table t{{{"Contender", perf::Align::kLeft}}, {}};
    for (int b : sz.bursts) t.columns.push_back({"Burst=" + std::to_string(b)});
    t.columns.push_back({"4096 vs myelin"});
    for (std::size_t c = 0; c < n; ++c) {
      std::vector<Cell> row{Cell::str(names[c])};
      for (double v : r.burst_ns[c]) row.push_back(ns_cell(v, 1));
      row.push_back(ratio_cell(r.burst_ns[c].back(), r.burst_ns[0].back()));
      t.add_row(std::move(row));
    }
    report.add_section("Burst throughput (ns/op, lower is better)")
        .paragraph(
            "One producer submits a burst of B tasks back to back and waits until the "
            "last has run; ns/op = that time / B, median over bursts (about " +
            perf::group_int(static_cast<double>(sz.burst_tasks)) +
            " tasks per cell, spread over the rounds). Loops spinning when idle, as in the "
            "awake round trip.")
        .table(std::move(t));
  }
  {
    const PacingAblation& p = r.pacing;
    const std::string lag = std::to_string(detail::TaskQueue::kChaseLag);
    perf::Table t{{{"myelin", perf::Align::kLeft}}, {}};
    for (int b : sz.bursts) t.columns.push_back({"Burst=" + std::to_string(b)});
    t.columns.push_back({"Awake RT p50 (ns)"});
    t.columns.push_back({"Awake RT p99 (ns)"});
    t.columns.push_back({"Continuous (ns/op)"});
    const auto add = [&](const std::string& label, const std::vector<double>& bursts,
                         const LatencySummary& rt, double continuous) {
      std::vector<Cell> row{Cell::str(label)};
      for (double v : bursts) row.push_back(ns_cell(v, 1));
      row.push_back(ns_cell(rt.p50, 0));
      row.push_back(ns_cell(rt.p99, 0));
      row.push_back(ns_cell(continuous, 1));
      t.add_row(std::move(row));
    };
    add("pacing on (chase_slip " + std::to_string(p.slip.count()) + " ns, the default)",
        r.burst_ns[0], r.awake[0], r.continuous_ns[0]);
    add("pacing off (chase_slip 0)", p.burst_ns, p.awake, p.continuous_ns);
    const double waits_per_k = p.burst_tasks == 0 ? 0
                                                  : 1000.0 * static_cast<double>(p.burst_slips) /
                                                        static_cast<double>(p.burst_tasks);
    report.add_section("myelin with pacing on and off")
        .paragraph(
            "When the loop drains right behind a producer that is still submitting, it reads "
            "each cache line just before the producer writes the line's next record, and the "
            "line must come back before the producer's next CAS completes. Pacing: once the "
            "loop has run a record and finds the next one already there, it reads the "
            "producers' tail (at most once per " +
            lag + " units or per slip); if they are fewer than " + lag +
            " units ahead, it looks again a quarter of chase_slip later (pauses and clock "
            "reads, no shared memory) and, if the tail moved, waits out the slip for them to "
            "pull ahead. A record found after an empty look runs at once. The pacing-off row "
            "is the same loop with chase_slip = 0, measured in the same interleaved rounds "
            "(bursts and awake round trips) and after the contenders' continuous load. In the "
            "default loop's bursts pacing waited " +
            perf::group_int(static_cast<double>(p.burst_slips)) + " times for " +
            perf::group_int(static_cast<double>(p.burst_tasks)) + " tasks (" +
            perf::fixed(waits_per_k, 1) + " per 1,000).")
        .table(std::move(t));
  }
  {
    perf::Table t{{{"Round"},
                   {"Cross-core floor p50 (ns)"},
                   {"myelin submit, 1 producer (ns/op)"},
                   {"myelin awake round trip p50 (ns)"},
                   {"myelin burst " + std::to_string(sz.bursts.back()) + " (ns/op)"},
                   {"pacing off (ns/op)"}},
                  {}};
    for (std::size_t i = 0; i < r.rounds.size(); ++i) {
      const AwakeRound& row = r.rounds[i];
      t.add_row({Cell::num(static_cast<double>(i + 1), std::to_string(i + 1)),
                 ns_cell(row.floor_p50, 0), ns_cell(row.myelin_submit1, 1),
                 ns_cell(row.myelin_rt_p50, 0), ns_cell(row.myelin_burst_last, 1),
                 ns_cell(row.unpaced_burst_last, 1)});
    }
    report.add_section("The machine per round (awake scenarios)")
        .paragraph(
            "Each round measured the floor first, then each contender in turn. On this VM the "
            "cross-core latency moves between states within seconds, and myelin's figures "
            "move with it; the tables above pool all rounds.")
        .table(std::move(t));
  }
  {
    perf::Table t{{{"Batch budget"},
                   {"Throughput (ns/op)"},
                   {"Timer lateness p50 (ns)"},
                   {"p99 (ns)"},
                   {"max (ns)"},
                   {"Timer fires"},
                   {"Overloaded ticks"}},
                  {}};
    for (const BudgetRow& b : r.budget) {
      t.add_row({Cell::num(static_cast<double>(b.budget), std::to_string(b.budget)),
                 ns_cell(b.ns_per_op, 1), ns_cell(b.lateness.p50, 0), ns_cell(b.lateness.p99, 0),
                 ns_cell(b.lateness.max, 0),
                 Cell::num(static_cast<double>(b.lateness.count),
                           perf::group_int(static_cast<double>(b.lateness.count))),
                 Cell::num(static_cast<double>(b.overloads),
                           perf::group_int(static_cast<double>(b.overloads)))});
    }
    report.add_section("myelin batch budget sweep: throughput vs timer lateness")
        .paragraph("The producer keeps a backlog of at least " + std::to_string(sz.sweep_burst) +
                   " tasks (each does ~" + std::to_string(sz.sweep_task_work) +
                   " multiply-adds, about 100 ns) for " + std::to_string(sz.sweep_ms) +
                   " ms per budget while a chain of one-shot timers (" +
                   std::to_string(sz.sweep_timer_us) +
                   " us apart) records lateness = fire time - deadline. A larger budget "
                   "amortises the per-tick overhead; a smaller one lets timers in sooner.")
        .table(std::move(t));
  }

  // --- continuous and mixed ----------------------------------------------------
  {
    perf::Table t{{{"Contender", perf::Align::kLeft}, {"ns/op"}, {"vs myelin"}}, {}};
    for (std::size_t c = 0; c < n; ++c) {
      t.add_row({Cell::str(names[c]), ns_cell(r.continuous_ns[c], 1),
                 ratio_cell(r.continuous_ns[c], r.continuous_ns[0])});
    }
    report.add_section("Continuous load: 4 producers flat out (ns/op)")
        .paragraph("4 producers each submit " +
                   perf::group_int(static_cast<double>(sz.continuous_per_producer)) +
                   " tasks without pause; ns/op = wall time until the last task ran / all tasks; "
                   "median of " +
                   std::to_string(sz.continuous_reps) +
                   " repetitions. Loops in blocking mode (myelin: spin_before_sleep = 0), so "
                   "a loop that catches up parks and must be woken again.")
        .table(std::move(t));
  }
  {
    perf::Table t{{{"Contender", perf::Align::kLeft}}, {}};
    for (int b : sz.mixed_bursts) t.columns.push_back({"Burst=" + std::to_string(b)});
    t.columns.push_back({"5000 vs myelin"});
    for (std::size_t c = 0; c < n; ++c) {
      std::vector<Cell> row{Cell::str(names[c])};
      for (double v : r.mixed_ns[c]) row.push_back(ns_cell(v, 1));
      row.push_back(ratio_cell(r.mixed_ns[c].back(), r.mixed_ns[0].back()));
      t.add_row(std::move(row));
    }
    report.add_section("Mixed load: bursts with 1 ms pauses (ns/op)")
        .paragraph("A burst, then a 1 ms pause (the loop goes to sleep), repeated " +
                   std::to_string(sz.mixed_reps) +
                   " times per size; ns/op = time from the burst's first submit to its last "
                   "task's run / burst size (pauses excluded), median over bursts. Each burst "
                   "therefore pays one wake-up from sleep.")
        .table(std::move(t));
  }

  // --- contenders --------------------------------------------------------------
  {
    perf::Table t{{{"Contender", perf::Align::kLeft}, {"Design", perf::Align::kLeft}}, {}};
    for (std::size_t c = 0; c < n; ++c) t.add_row({Cell::str(names[c]), Cell::str(r.designs[c])});
    report.add_section("Contenders").table(std::move(t));
  }

  report.data = r.to_json();
  return report;
}

}  // namespace myelin::bench
