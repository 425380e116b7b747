// The parts `myelin bench <part>` can measure.
//
// Each part lives in bench/<part>_bench.cc and returns a perf::Report; the
// CLI (apps/myelin/bench.cc) runs it and writes reports/<report>.md and .json
// through the shared report writer. The list is explicit (all_parts()), not
// built by static registration, so there is no hidden global state.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/perf/report.h"

namespace myelin::bench {

struct BenchOptions {
  // A reduced run for CI and quick checks; reports say so in their method.
  bool quick = false;
  // One stage of a part, for a smoke run (serve: "sweep"); empty: all of it.
  // A part rejects a stage it does not have.
  std::string only;
};

struct BenchPart {
  std::string name;         // `myelin bench <name>`
  std::string report_stem;  // reports/<report_stem>.md
  std::string summary;      // one line for --help
  std::function<Result<perf::Report>(const BenchOptions&)> run;
};

std::vector<BenchPart> all_parts();

// Each part's entry point (one per *_bench.cc).
Result<perf::Report> run_clock_bench(const BenchOptions& options);
Result<perf::Report> run_eventloop_bench(const BenchOptions& options);
Result<perf::Report> run_secure_bench(const BenchOptions& options);
Result<perf::Report> run_inference_bench(const BenchOptions& options);
Result<perf::Report> run_amqp_bench(const BenchOptions& options);
Result<perf::Report> run_serve_bench(const BenchOptions& options);

}  // namespace myelin::bench
