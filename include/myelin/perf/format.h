// Number formatting shared by every report, so that all of myelin's tables
// read alike: integers comma-grouped, fixed decimals where a column has a
// precision, parameters printed as given (never rounded away).
#pragma once

#include <string>

namespace myelin::perf {

// Rounds to the nearest integer (ties to even, as printf does) and groups
// thousands with commas: 46667177.4 -> "46,667,177". Non-finite -> "inf"/"nan".
std::string group_int(double value);

// Fixed decimals: fixed(0.100839, 4) -> "0.1008".
std::string fixed(double value, int decimals);

// A parameter as the user gave it: at least `min_decimals` decimals, more when
// the value needs them to round-trip (0.9 -> "0.90" with 2; 0.125 -> "0.125").
std::string param(double value, int min_decimals);

// A duration in nanoseconds with a unit chosen for 3-4 significant digits:
// 35.8 -> "35.8 ns", 123800 -> "123.8 us", 1620000 -> "1.62 ms".
std::string duration_ns(double ns);

// A rate in bytes per second: "411.2 MB/s", "3.04 GB/s" (decimal units).
std::string byte_rate(double bytes_per_second);

}  // namespace myelin::perf
