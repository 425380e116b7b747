// `myelin bench <part>`: runs one part's benchmark and writes its report as
// Markdown and JSON under --out-dir (default: reports/).
#include <cstdio>
#include <memory>
#include <string>

#include "apps/myelin/commands.h"
#include "bench/bench_part.h"
#include "myelin/perf/report.h"

namespace myelin::cli {
namespace {

struct BenchFlags {
  bool quick = false;
  std::string out_dir = "reports";
  bool print = false;
};

int run_part(const bench::BenchPart& part, const BenchFlags& f) {
  std::fprintf(stderr, "myelin bench %s: running%s...\n", part.name.c_str(),
               f.quick ? " (--quick)" : "");
  auto report = part.run(bench::BenchOptions{f.quick});
  if (!report) {
    std::fprintf(stderr, "myelin bench %s: %s\n", part.name.c_str(),
                 report.error().to_string().c_str());
    return kExitFailure;
  }
  const std::string md = perf::render_markdown(*report);
  const std::string stem = f.out_dir + "/" + part.report_stem;
  for (const auto& [path, text] :
       {std::pair{stem + ".md", md}, std::pair{stem + ".json", perf::render_json(*report)}}) {
    if (Status s = perf::write_file_atomic(path, text); !s.ok()) {
      std::fprintf(stderr, "myelin bench %s: %s\n", part.name.c_str(), s.to_string().c_str());
      return kExitFailure;
    }
  }
  if (f.print) std::fwrite(md.data(), 1, md.size(), stdout);
  std::fprintf(stderr, "myelin bench %s: wrote %s.md and %s.json\n", part.name.c_str(),
               stem.c_str(), stem.c_str());
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* bench = app.add_subcommand(
      "bench", "Measure a part of myelin beside its peers and write reports/<part>.md");
  bench->require_subcommand(1);
  bench->add_flag("--quick", flags->quick, "Reduced run (CI-sized)");
  bench->add_option("--out-dir", flags->out_dir, "Directory for the .md and .json reports")
      ->capture_default_str();
  bench->add_flag("--print", flags->print, "Also print the Markdown report to stdout");
  for (bench::BenchPart& part : bench::all_parts()) {
    CLI::App* sub = bench->add_subcommand(part.name, part.summary);
    auto shared_part = std::make_shared<bench::BenchPart>(std::move(part));
    sub->callback([shared_part, flags, &ctx] { ctx.exit_code = run_part(*shared_part, *flags); });
  }
}

}  // namespace myelin::cli
