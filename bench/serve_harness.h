// Process and load-generator plumbing of `myelin bench serve`: child
// processes in their own process group (servers, wrk, the open-loop
// generator), their CPU time and RSS, readiness polling, and parsing of
// the load generators' JSON and of Prometheus histograms.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"

namespace myelin::bench::serve_harness {

// A child in a process group of its own (so a server's workers are counted
// and stopped with it). Stopped (SIGTERM, then SIGKILL) on destruction.
class Process {
 public:
  // stdout and stderr go to `log_path` (appended). `env` entries are
  // "NAME=value" added to this process's environment.
  static Result<Process> spawn(const std::vector<std::string>& argv, const std::string& log_path,
                               const std::vector<std::string>& env = {});
  Process() = default;
  Process(Process&& o) noexcept : pid_(o.pid_), name_(std::move(o.name_)) { o.pid_ = -1; }
  Process& operator=(Process&& o) noexcept;
  ~Process() { stop(); }

  // SIGTERM to the group, SIGKILL after `grace`; returns the exit status
  // (as waitpid's) or -1 when it had to be killed.
  int stop(Nanos grace = std::chrono::seconds(5));
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool running() const;
  // User + system CPU seconds of every live process in the group.
  [[nodiscard]] double cpu_seconds() const;
  // Resident set of the group leader (VmRSS), in bytes.
  [[nodiscard]] std::optional<double> rss_bytes() const;
  // Resident set summed over the group (several worker processes).
  [[nodiscard]] double group_rss_bytes() const;

 private:
  pid_t pid_ = -1;
  std::string name_;
};

// CPU seconds (user + system) and resident bytes of every live process in
// process group `pgid` (for daemons that are not our children, like nginx).
double group_cpu_seconds(pid_t pgid);
double group_rss_bytes(pid_t pgid);

// Pins every thread of every process in group `pgid` to `cpu` (-1: all CPUs).
void pin_group(pid_t pgid, int cpu);
// Pins the calling thread to `cpu` (-1: all CPUs).
void pin_self(int cpu);

// Runs argv to completion (bounded by `timeout`), returning its stdout.
Result<std::string> run_capture(const std::vector<std::string>& argv, Nanos timeout,
                                const std::vector<std::string>& env = {});

// A free TCP port on 127.0.0.1 (bound and released: good enough for a bench).
Result<std::uint16_t> free_port();

// Polls GET `path` on 127.0.0.1:port until it answers 200; the time it took.
Result<Nanos> wait_ready(std::uint16_t port, const std::string& path, Nanos timeout);

// The last line of `text` that parses as a JSON object.
Result<nlohmann::json> last_json_line(const std::string& text);

// One Prometheus histogram (cumulative bucket counts by upper bound).
struct PromHistogram {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count); +Inf last
  double sum = 0;
  double count = 0;
};
// Scrapes http://127.0.0.1:port/metrics.
Result<std::string> scrape(std::uint16_t port);
// The histogram `name` with the label set `labels` (e.g. model="mlp").
std::optional<PromHistogram> find_histogram(const std::string& text, const std::string& name,
                                            const std::string& labels);
// A counter or gauge sample's value.
std::optional<double> find_value(const std::string& text, const std::string& name,
                                 const std::string& labels);
// after - before, bucket by bucket.
PromHistogram subtract(const PromHistogram& after, const PromHistogram& before);
// histogram_quantile: linear interpolation inside the bucket that holds q.
double quantile(const PromHistogram& h, double q);

}  // namespace myelin::bench::serve_harness
