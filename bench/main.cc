// myelin-bench: the benchmark executable behind `myelin bench <part>`.
//
// The parts link every peer they measure against (libuv, asio, XGBoost,
// OpenSSL's TLS, the AMQP client, the server), so they live in their own
// executable: the `myelin` binary stays free of those libraries and execs
// this one, found next to itself, with the arguments after `bench`. Run
// directly it behaves exactly like `myelin bench`.
//
// `myelin bench PART [PART...]` runs the parts in the order given, `myelin
// bench all` every part; with more than one, a terminal gets a progress line
// per part (k of n, elapsed, estimated remaining) and the end a summary,
// which is all a non-terminal gets. A failed part does not stop the others;
// the exit status says whether any failed.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_part.h"
#include "bench/harness/process.h"
#include "myelin/perf/report.h"

namespace myelin::bench {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct BenchFlags {
  bool quick = false;
  std::string out_dir = "reports";
  bool print = false;
  std::string only;
};

std::string source_dir() {
  if (const char* env = std::getenv("MYELIN_SOURCE_DIR"); env != nullptr && *env != '\0')
    return env;
  return MYELIN_SOURCE_DIR;
}

// Draws the charts the report's JSON lists (bench/render/charts.py) beside
// it and returns a Markdown section referencing those drawn. Charts are an
// addition: when they cannot be drawn (no matplotlib, no python3) the bench
// says so on stderr and the report goes without them.
std::optional<perf::Section> draw_charts(const perf::Report& report, const std::string& json_path,
                                         const std::string& out_dir, const std::string& stem,
                                         const std::string& part) {
  const auto charts = report.data.is_object() ? report.data.find("charts") : report.data.end();
  if (charts == report.data.end() || !charts->is_array() || charts->empty()) return std::nullopt;
  // Debian's python3 (python3-matplotlib), not whichever is first on PATH.
  const std::string cmd = "/usr/bin/python3 " +
                          harness::shell_quote(source_dir() + "/bench/render/charts.py") + " " +
                          harness::shell_quote(json_path) + " " + harness::shell_quote(out_dir) +
                          " " + harness::shell_quote(stem);
  harness::CommandOptions options;
  options.timeout = std::chrono::minutes(2);
  auto run = harness::run_command(cmd, options);
  if (!run || run->exit_code != 0) {
    std::string why = run ? run->output : run.error().to_string();
    while (!why.empty() && why.back() == '\n') why.pop_back();
    std::fprintf(stderr, "myelin bench %s: warning: no charts: %s\n", part.c_str(),
                 why.empty() ? ("exit " + std::to_string(run->exit_code)).c_str() : why.c_str());
    return std::nullopt;
  }
  perf::Section section{"Charts", {}};
  for (const auto& chart : *charts) {
    const std::string file = stem + "-" + chart.value("key", "") + ".svg";
    if (run->output.find(file + "\n") == std::string::npos) continue;
    section.paragraph("![" + chart.value("title", "") + "](" + file + ")");
  }
  if (section.blocks.empty()) return std::nullopt;
  return section;
}

int run_part(const BenchPart& part, const BenchFlags& f, bool chatty) {
  if (chatty) {
    std::fprintf(stderr, "myelin bench %s: running%s...\n", part.name.c_str(),
                 f.quick ? " (--quick)" : "");
  }
  auto report = part.run(BenchOptions{f.quick, f.only});
  if (!report) {
    std::fprintf(stderr, "myelin bench %s: %s\n", part.name.c_str(),
                 report.error().to_string().c_str());
    return kExitFailure;
  }
  const std::string stem = f.out_dir + "/" + part.report_stem;
  // The JSON first: the charts are drawn from it, and the Markdown then
  // references the ones that were.
  if (Status s = perf::write_file_atomic(stem + ".json", perf::render_json(*report)); !s.ok()) {
    std::fprintf(stderr, "myelin bench %s: %s\n", part.name.c_str(), s.to_string().c_str());
    return kExitFailure;
  }
  if (auto charts = draw_charts(*report, stem + ".json", f.out_dir, part.report_stem, part.name))
    report->sections.push_back(std::move(*charts));
  const std::string md = perf::render_markdown(*report);
  if (Status s = perf::write_file_atomic(stem + ".md", md); !s.ok()) {
    std::fprintf(stderr, "myelin bench %s: %s\n", part.name.c_str(), s.to_string().c_str());
    return kExitFailure;
  }
  if (f.print) std::fwrite(md.data(), 1, md.size(), stdout);
  if (chatty) {
    std::fprintf(stderr, "myelin bench %s: wrote %s.md and %s.json\n", part.name.c_str(),
                 stem.c_str(), stem.c_str());
  }
  return kExitOk;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Runs `parts` in order. One part: as it always did. Several: a progress
// line per part on a terminal, then one summary line per part and a total.
int run_parts(const std::vector<const BenchPart*>& parts, const BenchFlags& f) {
  if (parts.size() == 1) return run_part(*parts.front(), f, true);
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  const auto start = std::chrono::steady_clock::now();
  struct Outcome {
    std::string name, stem;
    int exit_code;
    double seconds;
  };
  std::vector<Outcome> done;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (terminal) {
      const double elapsed = seconds_since(start);
      // The parts differ in length; the mean of those done is the estimate.
      const std::string remaining =
          k == 0 ? std::string("unknown")
                 : std::to_string(static_cast<long>(elapsed / static_cast<double>(k) *
                                                    static_cast<double>(parts.size() - k))) +
                       " s";
      std::fprintf(stderr, "[part %zu of %zu: %s] elapsed %ld s, remaining ~%s\n", k + 1,
                   parts.size(), parts[k]->name.c_str(), static_cast<long>(elapsed),
                   remaining.c_str());
    }
    const auto t = std::chrono::steady_clock::now();
    const int code = run_part(*parts[k], f, terminal);
    done.push_back({parts[k]->name, parts[k]->report_stem, code, seconds_since(t)});
  }
  int failed = 0;
  for (const Outcome& o : done) {
    if (o.exit_code != kExitOk) ++failed;
    std::fprintf(stderr, "myelin bench %-10s %-6s %7.1f s  %s/%s.md\n", o.name.c_str(),
                 o.exit_code == kExitOk ? "ok" : "FAILED", o.seconds, f.out_dir.c_str(),
                 o.stem.c_str());
  }
  std::fprintf(stderr, "myelin bench: %zu parts, %d failed, %.1f s\n", done.size(), failed,
               seconds_since(start));
  return failed == 0 ? kExitOk : kExitFailure;
}

int run(int argc, char** argv) {
  CLI::App app{"Measure a part of myelin beside its peers and write reports/<part>.md",
               "myelin bench"};
  auto flags = std::make_shared<BenchFlags>();
  app.require_subcommand(1, 0);  // one part or several, in the order given
  app.add_flag("--quick", flags->quick, "Reduced run (CI-sized)");
  app.add_option("--out-dir", flags->out_dir, "Directory for the .md and .json reports")
      ->capture_default_str();
  app.add_flag("--print", flags->print, "Also print the Markdown report to stdout");
  app.add_option("--only", flags->only,
                 "Run one stage of a part (serve: sweep, the batch-size sweep and the "
                 "calibration check); the report then holds only that stage");
  const std::vector<BenchPart> parts = all_parts();
  for (const BenchPart& part : parts) app.add_subcommand(part.name, part.summary);
  app.add_subcommand("all", "Every part above, in turn, with a summary at the end");
  std::vector<const BenchPart*> chosen;
  try {
    app.parse(argc, argv);
    for (const CLI::App* sub : app.get_subcommands()) {
      if (sub->get_name() == "all") {
        for (const BenchPart& part : parts) chosen.push_back(&part);
        continue;
      }
      for (const BenchPart& part : parts) {
        if (part.name == sub->get_name()) chosen.push_back(&part);
      }
    }
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "myelin bench: error: %s (see --help)\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "myelin bench: internal error: %s\n", e.what());
    return kExitFailure;
  }
  if (!flags->only.empty()) {
    for (const BenchPart* part : chosen) {
      if (part->name != "serve") {
        std::fprintf(stderr, "myelin bench %s: --only: this part has no stages to run alone\n",
                     part->name.c_str());
        return kExitUsage;
      }
    }
  }
  return run_parts(chosen, *flags);
}

}  // namespace
}  // namespace myelin::bench

int main(int argc, char** argv) { return myelin::bench::run(argc, argv); }
