// Turns an Estimate into the Report that `myelin estimate` prints.
//
// Sections 2-7 carry the seed report's (shared/seeds/000) lines and tables
// with the same numbers and number formats; myelin's names replace the seed's
// (T_control for T_py, T_data/msg for T_rust/msg, data-plane for Rust).
// Section 8 adds what the seed lacked: the time a message really waits.
#pragma once

#include <string>

#include "myelin/perf/estimator.h"
#include "myelin/perf/report.h"

namespace myelin::perf {

// `generated` is the timestamp printed in the header (ISO 8601).
Report make_estimate_report(const Estimate& estimate, std::string generated);

}  // namespace myelin::perf
