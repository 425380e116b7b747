// Renders one harness::Results as the report `myelin bench` writes.
//
// Markdown and JSON come from the same structure: each table is shown as a
// Markdown table and carried in JSON as rows of {column key: number, text
// or null}; figures become bullets and a {key: value} object; checks become
// a "Target | Goal | Measured | Verdict" table whose verdicts judge()
// computes, and a list with the goal, unit, source, direction, measurement
// and verdict of each; charts are listed for bench/render/charts.py (the
// Markdown references the ones drawn, see bench/main.cc). The JSON's "data"
// member is
//   {"part", "tables": {key: [row...]}, "figures": {key: value},
//    "targets": [{what, goal, unit, source, better, measured, met, verdict}],
//    "charts": [{key, title, table, x, series, y_label, kind, log}]}
#pragma once

#include <nlohmann/json.hpp>

#include "bench/harness/results.h"
#include "myelin/base/result.h"
#include "myelin/perf/report.h"

namespace myelin::bench::harness {

// An error names the table (or key) that is malformed: a row whose width
// differs from its columns, or a table or figure key used twice.
Result<perf::Report> to_report(const Results& results);

// The "data" member of the JSON report, on its own.
Result<nlohmann::json> to_json(const Results& results);

}  // namespace myelin::bench::harness
