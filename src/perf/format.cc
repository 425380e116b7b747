#include "myelin/perf/format.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace myelin::perf {

namespace {

// printf("%.*f") with a run-time precision; glibc rounds the exact binary
// value half to even, like Python's format(), which the seed reports used.
std::string fixed_digits(double value, int decimals) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string non_finite(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

}  // namespace

std::string group_int(double value) {
  if (!std::isfinite(value)) return non_finite(value);
  const std::string digits = fixed_digits(value, 0);
  std::string_view body = digits;
  const bool negative = !body.empty() && body.front() == '-';
  if (negative) body.remove_prefix(1);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3 + 1);
  if (negative && body != "0") out.push_back('-');  // -0.4 rounds to "-0": print "0"
  const std::size_t lead = body.size() % 3;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (i != 0 && (i + 3 - lead) % 3 == 0) out.push_back(',');
    out.push_back(body[i]);
  }
  return out;
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return non_finite(value);
  return fixed_digits(value, decimals);
}

std::string param(double value, int min_decimals) {
  if (!std::isfinite(value)) return non_finite(value);
  // The fewest decimals (>= min_decimals) that read back as the same double.
  for (int d = min_decimals; d <= 17; ++d) {
    std::string text = fixed(value, d);
    if (std::strtod(text.c_str(), nullptr) == value) return text;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  return buf;
}

std::string duration_ns(double ns) {
  if (!std::isfinite(ns)) return non_finite(ns);
  const double a = std::fabs(ns);
  auto scaled = [](double v, const char* unit) {
    const int decimals = std::fabs(v) >= 100 ? 1 : (std::fabs(v) >= 10 ? 2 : 3);
    return fixed_digits(v, decimals) + " " + unit;
  };
  if (a < 1e3) return fixed_digits(ns, a >= 100 ? 0 : 1) + " ns";
  if (a < 1e6) return scaled(ns / 1e3, "us");
  if (a < 1e9) return scaled(ns / 1e6, "ms");
  return scaled(ns / 1e9, "s");
}

std::string byte_rate(double bps) {
  if (!std::isfinite(bps)) return non_finite(bps);
  const double a = std::fabs(bps);
  if (a >= 1e9) return fixed_digits(bps / 1e9, 2) + " GB/s";
  if (a >= 1e6) return fixed_digits(bps / 1e6, 1) + " MB/s";
  if (a >= 1e3) return fixed_digits(bps / 1e3, 1) + " kB/s";
  return fixed_digits(bps, 0) + " B/s";
}

}  // namespace myelin::perf
