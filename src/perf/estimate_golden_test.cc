// Golden test: `myelin estimate` with the default parameters reproduces every
// line and table row of seed report 000, sections 2-7, exactly and in order.
// The only differences allowed are myelin's names for the seed's terms.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "myelin/perf/estimate_report.h"
#include "myelin/perf/estimator.h"

namespace myelin::perf {
namespace {

std::string read_seed() {
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  const std::string path = std::string(src ? src : ".") + "/src/perf/testdata/seed_000_report.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

// Section number -> its non-empty, non-heading lines.
std::map<int, std::vector<std::string>> sections(const std::string& text) {
  std::map<int, std::vector<std::string>> out;
  std::istringstream in(text);
  std::string line;
  int current = 0;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      current = std::atoi(line.c_str() + 3);
      continue;
    }
    if (current > 0 && !line.empty()) out[current].push_back(line);
  }
  return out;
}

TEST(EstimateGolden, SeedSectionsTwoToSevenReproducedExactly) {
  std::string seed = read_seed();
  ASSERT_FALSE(seed.empty());
  // myelin's names for the seed's terms.
  replace_all(seed, "T_py:", "T_control:");
  replace_all(seed, "T_rust/msg:", "T_data/msg:");
  replace_all(seed, "Rust ceiling", "data-plane ceiling");

  auto est = estimate(EstimatorParams{});
  ASSERT_TRUE(est.has_value()) << est.error().to_string();
  const std::string ours =
      render_markdown(make_estimate_report(*est, "2026-02-13T04:44:44.434347Z"));

  const auto seed_sections = sections(seed);
  const auto our_sections = sections(ours);
  int lines_checked = 0;
  for (int n = 2; n <= 7; ++n) {
    ASSERT_TRUE(seed_sections.count(n)) << "seed section " << n;
    ASSERT_TRUE(our_sections.count(n)) << "our section " << n;
    const auto& want = seed_sections.at(n);
    const auto& have = our_sections.at(n);
    // Every seed line must appear, in the seed's order (ours may add lines).
    std::size_t at = 0;
    for (const std::string& line : want) {
      while (at < have.size() && have[at] != line) ++at;
      EXPECT_LT(at, have.size()) << "section " << n << " lacks, in order: " << line;
      if (at < have.size()) ++at;
      ++lines_checked;
    }
  }
  // 9 parameters, 1 speedup, 2 ceilings, 3 + 1 + 7 batch result and
  // frontier, 9 curve rows (header and rule included), 3 constraints.
  EXPECT_EQ(lines_checked, 35);
}

TEST(EstimateGolden, KeyNumbersAsData) {
  auto est = estimate(EstimatorParams{});
  ASSERT_TRUE(est.has_value());
  EXPECT_NEAR(est->speedup, 4.705882, 1e-6);
  EXPECT_DOUBLE_EQ(est->ceiling_1core, 1e7);
  EXPECT_NEAR(est->ceiling_scaled, 47058823.5, 1);
  ASSERT_TRUE(est->best.has_value());
  EXPECT_EQ(est->candidates[*est->best].n, 65536u);
  EXPECT_NEAR(est->candidates[*est->best].r, 46667177, 1);
  ASSERT_EQ(est->frontier.size(), 5u);
  const std::uint64_t want[] = {65536, 32768, 16384, 8192, 4096};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(est->candidates[est->frontier[i]].n, want[i]);
}

}  // namespace
}  // namespace myelin::perf
