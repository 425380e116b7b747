#include "bench/eventloop/alloc_check.h"

#include <nlohmann/json.hpp>
#include <string>

#include "bench/harness/process.h"
#include "myelin/perf/format.h"

namespace myelin::bench {

harness::Check measure_task_allocations(bool quick) {
  harness::Check check;
  check.target = {"zero allocations per task (steady state)", 0, "allocations per task", "issue 3",
                  harness::Better::kLower};
  auto dir = harness::executable_directory();
  if (!dir) {
    check.note = dir.error().to_string();
    return check;
  }
  const std::uint64_t tasks = quick ? 100'000 : 1'000'000;
  const std::string probe = *dir + "/myelin-bench-alloc-probe";
  harness::CommandOptions options;
  options.timeout = std::chrono::minutes(2);
  auto run =
      harness::run_command(harness::shell_quote(probe) + " " + std::to_string(tasks), options);
  if (!run) {
    check.note = run.error().to_string();
    return check;
  }
  const std::string& out = run->output;
  const auto j = nlohmann::json::parse(out.substr(0, out.find('\n')), nullptr, false);
  const bool counted = j.is_object() && j.contains("allocations") && j["allocations"].is_number() &&
                       j.contains("tasks") && j["tasks"].is_number() && j.contains("modes") &&
                       j["modes"].is_number() && j["tasks"].get<double>() > 0 &&
                       j["modes"].get<double>() > 0;
  if (run->exit_code != 0 || !counted) {
    const std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                                ? j["error"].get<std::string>()
                                : out.substr(0, 200);
    check.note = probe + " (exit " + std::to_string(run->exit_code) +
                 (run->timed_out ? ", timed out" : "") + "): " + why;
    return check;
  }
  const double allocations = j["allocations"].get<double>();
  const double submitted = j["tasks"].get<double>() * j["modes"].get<double>();
  check.measured = allocations / submitted;
  check.note = perf::group_int(allocations) + " allocations over " + perf::group_int(submitted) +
               " tasks after warm-up, the loop parking and spinning (counting operator new in "
               "myelin-bench-alloc-probe)";
  return check;
}

}  // namespace myelin::bench
