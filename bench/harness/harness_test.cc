// The bench harness: percentiles, verdicts in both directions, the renderer
// (Markdown and JSON from one structure, malformed input refused) and the
// subprocess helper (quoting, exit codes, the deadline).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "bench/harness/process.h"
#include "bench/harness/render.h"
#include "bench/harness/results.h"

namespace myelin::bench::harness {
namespace {

TEST(Samples, PercentilesAreNearestRankOnSortedSamples) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  auto s = Samples::of(v);
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->count(), 100u);
  EXPECT_EQ(s->min(), 1);
  EXPECT_EQ(s->max(), 100);
  EXPECT_EQ(s->percentile(50), 50);
  EXPECT_EQ(s->percentile(95), 95);
  EXPECT_EQ(s->percentile(99), 99);
  EXPECT_EQ(s->percentile(100), 100);
  EXPECT_EQ(s->percentile(0), 1);
  EXPECT_DOUBLE_EQ(s->mean(), 50.5);
  auto three = Samples::of({30, 10, 20});
  ASSERT_TRUE(three);
  EXPECT_EQ(three->percentile(50), 20);  // rank ceil(1.5) = 2
  EXPECT_EQ(three->percentile(34), 20);  // rank ceil(1.02) = 2
  EXPECT_EQ(three->percentile(33), 10);  // rank ceil(0.99) = 1
}

TEST(Samples, EmptyOrNaNIsAnError) {
  EXPECT_FALSE(Samples::of(std::vector<double>{}));
  auto nan = Samples::of({1, std::numeric_limits<double>::quiet_NaN()});
  ASSERT_FALSE(nan);
  EXPECT_NE(nan.error().message().find("sample 1 is NaN"), std::string_view::npos);
  LatencyRecorder r;
  r.record_value(3);
  r.record_value(1);
  auto from = Samples::of(r);
  ASSERT_TRUE(from);
  EXPECT_EQ(from->percentile(50), 1);
}

TEST(Judge, LowerIsBetter) {
  const Target t{"round trip p50", 300, "ns", "issue 3", Better::kLower};
  Verdict under = judge(t, 240);
  EXPECT_TRUE(under.met);
  EXPECT_EQ(under.text, "met");
  EXPECT_NEAR(under.margin, 0.2, 1e-12);
  EXPECT_TRUE(judge(t, 300).met);  // the goal itself is met
  Verdict over = judge(t, 330);
  EXPECT_FALSE(over.met);
  EXPECT_EQ(over.text, "missed by 10.0%");
  EXPECT_NEAR(over.margin, -0.1, 1e-12);
}

TEST(Judge, HigherIsBetter) {
  const Target t{"throughput", 1000, "MB/s", "seed 003", Better::kHigher};
  EXPECT_TRUE(judge(t, 1500).met);
  Verdict low = judge(t, 750);
  EXPECT_FALSE(low.met);
  EXPECT_EQ(low.text, "missed by 25.0%");
}

TEST(Judge, ZeroGoalsAndNaN) {
  const Target zero{"allocations per task", 0, "allocations", "issue 3", Better::kLower};
  EXPECT_TRUE(judge(zero, 0).met);
  Verdict some = judge(zero, 2);
  EXPECT_FALSE(some.met);
  EXPECT_EQ(some.text, "missed (2 allocations)");
  Verdict nan = judge(zero, std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(nan.met);
  EXPECT_EQ(nan.text, "not measured");
}

Results sample_results() {
  Results r;
  r.part = "demo";
  r.title = "myelin Benchmark: demo";
  r.generated = "2026-12-07T21:00:00Z";
  r.method = "three runs";
  Table t{
      "cost", {{"clock", "Clock", perf::Align::kLeft}, {"p50_ns", "p50 (ns)"}, {"res", "Res"}}, {}};
  t.add_row({Value::str("a"), Value::fixed(12.345, 2), Value::none("n/a")});
  t.add_row({Value::str("b"), Value::fixed(20, 2), Value::count(1234567)});
  r.add_section("Cost").paragraph("Per read.").table(std::move(t));
  r.add_section("Floor").figures({{"floor_p50_ns", "p50", Value::fixed(41.5, 1, " ns")}});
  r.add_section("Targets").checks(
      {{{"p50 of a", 10, "ns", "issue 9", Better::kLower}, 12.345, ""},
       {{"b count", 1e6, "", "issue 9", Better::kHigher}, 1234567, ""},
       {{"never run", 1, "x", "", Better::kLower}, std::nullopt, "peer missing"}});
  return r;
}

TEST(Render, MarkdownAndJsonCarryTheSameFigures) {
  auto report = to_report(sample_results());
  ASSERT_TRUE(report) << report.error().to_string();
  const std::string md = perf::render_markdown(*report);
  EXPECT_NE(md.find("# myelin Benchmark: demo"), std::string::npos) << md;
  EXPECT_NE(md.find("## 1) Cost"), std::string::npos) << md;
  EXPECT_NE(md.find("| Clock | p50 (ns) | Res |"), std::string::npos) << md;
  EXPECT_NE(md.find("| a | 12.35 | n/a |"), std::string::npos) << md;
  EXPECT_NE(md.find("| b | 20.00 | 1,234,567 |"), std::string::npos) << md;
  EXPECT_NE(md.find("- p50: **41.5 ns**"), std::string::npos) << md;
  EXPECT_NE(md.find("| p50 of a (issue 9) | <= 10 ns | 12.3 ns | **missed by 23.5%** |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| b count (issue 9) | >= 1000000 | 1,234,567 | met |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| never run | <= 1 x | — (peer missing) | **not measured** |"),
            std::string::npos)
      << md;

  const nlohmann::json& d = report->data;
  EXPECT_EQ(d["part"], "demo");
  ASSERT_EQ(d["tables"]["cost"].size(), 2u);
  EXPECT_EQ(d["tables"]["cost"][0]["clock"], "a");
  EXPECT_DOUBLE_EQ(d["tables"]["cost"][0]["p50_ns"].get<double>(), 12.345);  // full precision
  EXPECT_TRUE(d["tables"]["cost"][0]["res"].is_null());
  EXPECT_DOUBLE_EQ(d["tables"]["cost"][1]["res"].get<double>(), 1234567);
  EXPECT_DOUBLE_EQ(d["figures"]["floor_p50_ns"].get<double>(), 41.5);
  ASSERT_EQ(d["targets"].size(), 3u);
  EXPECT_EQ(d["targets"][0]["met"], false);
  EXPECT_EQ(d["targets"][0]["better"], "lower");
  EXPECT_EQ(d["targets"][0]["source"], "issue 9");
  EXPECT_EQ(d["targets"][1]["met"], true);
  EXPECT_TRUE(d["targets"][2]["measured"].is_null());
  EXPECT_EQ(d["targets"][2]["verdict"], "not measured");
  auto alone = to_json(sample_results());
  ASSERT_TRUE(alone);
  EXPECT_EQ(*alone, d);
}

TEST(Render, MalformedResultsAreRefusedWithWhere) {
  Results wide = sample_results();
  std::get<Table>(wide.sections[0].blocks[1]).rows[1].pop_back();
  auto r = to_report(wide);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("table 'cost': row 1 has 2 cells for 3 columns"),
            std::string_view::npos)
      << r.error().to_string();

  Results twice = sample_results();
  twice.add_section("Again").figures({{"floor_p50_ns", "again", Value::str("x")}});
  auto t = to_report(twice);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("figure key 'floor_p50_ns' is used twice"),
            std::string_view::npos)
      << t.error().to_string();
}

TEST(Render, ChartsAreListedForTheirTableAndCheckedAgainstIt) {
  Results r = sample_results();
  r.sections[0].chart({"cost_p50", "p50 per clock", "cost", "clock", {"p50_ns"}, "ns", {}, true});
  auto ok = to_json(r);
  ASSERT_TRUE(ok) << ok.error().to_string();
  ASSERT_EQ((*ok)["charts"].size(), 1u);
  EXPECT_EQ((*ok)["charts"][0]["table"], "cost");
  EXPECT_EQ((*ok)["charts"][0]["series"][0], "p50_ns");
  EXPECT_EQ((*ok)["charts"][0]["kind"], "bar");
  EXPECT_EQ((*ok)["charts"][0]["log"], true);

  Results no_column = sample_results();
  no_column.sections[0].chart({"c", "t", "cost", "clock", {"p51_ns"}, "ns", {}, false});
  auto bad = to_json(no_column);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("chart 'c': table 'cost' has no column 'p51_ns'"),
            std::string_view::npos)
      << bad.error().to_string();

  Results before_table = sample_results();
  before_table.sections[0].blocks.insert(before_table.sections[0].blocks.begin(),
                                         Chart{"c", "t", "cost", "clock", {"p50_ns"}, "", {}, 0});
  EXPECT_FALSE(to_json(before_table));
}

TEST(Process, ShellQuoteSurvivesTheShell) {
  const std::string nasty = "it's a $HOME `x` \"y\" \\ z";
  auto r = run_command("printf '%s' " + shell_quote(nasty));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, nasty);
  EXPECT_EQ(shell_quote("a'b"), "'a'\\''b'");
}

TEST(Process, ExitCodesAndStderrAreCaptured) {
  auto r = run_command("echo out; echo err >&2; exit 3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_NE(r->output.find("out\n"), std::string::npos);
  EXPECT_NE(r->output.find("err\n"), std::string::npos);
}

TEST(Process, TheDeadlineKillsTheWholeGroup) {
  CommandOptions o;
  o.timeout = std::chrono::milliseconds(200);
  // A child that keeps the output open: without the group kill the read
  // would wait for it.
  auto r = run_command("sleep 60 & sleep 60", o);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(Process, OutputIsCappedAndSaysSo) {
  CommandOptions o;
  o.max_output = 10;
  auto r = run_command("printf 0123456789abcdef", o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->output, "0123456789");
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->exit_code, 0);
}

TEST(Process, ExecutableDirectoryHoldsThisTest) {
  auto d = executable_directory();
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_FALSE(d->empty());
  EXPECT_EQ(d->find("/proc"), std::string::npos);
}

}  // namespace
}  // namespace myelin::bench::harness
