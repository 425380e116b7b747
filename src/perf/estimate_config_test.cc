#include "myelin/perf/estimate_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace myelin::perf {
namespace {

TEST(EstimateConfig, TomlSetsEveryKind) {
  EstimatorParams p;
  Status s = apply_estimate_config(R"(
cores = 4
parallel-fraction = 0.75
t-control-us = 2
t-data-us = 0.25
io-cap = 1_000_000
target-ops = "none"
batch-max = 4096
powers-of-two = false
scaling = "split"
)",
                                   ConfigSyntax::kToml, "c.toml", p);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(p.cores, 4);
  EXPECT_DOUBLE_EQ(p.parallel_fraction, 0.75);
  EXPECT_DOUBLE_EQ(p.t_control_us, 2);
  EXPECT_DOUBLE_EQ(p.t_data_us, 0.25);
  EXPECT_EQ(p.io_cap, 1e6);
  EXPECT_FALSE(p.target_ops.has_value());
  EXPECT_EQ(p.batch_max, 4096u);
  EXPECT_FALSE(p.powers_of_two);
  EXPECT_EQ(p.scaling, Scaling::kSplit);
  EXPECT_DOUBLE_EQ(p.t_bridge_us, 50);  // untouched keys keep their values
}

TEST(EstimateConfig, JsonSetsAndUnsets) {
  EstimatorParams p;
  p.io_cap = 5;
  Status s = apply_estimate_config(R"({"cores": 2, "io-cap": null, "offered-load": 1e6})",
                                   ConfigSyntax::kJson, "c.json", p);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(p.cores, 2);
  EXPECT_FALSE(p.io_cap.has_value());
  EXPECT_EQ(p.offered_load, 1e6);
}

TEST(EstimateConfig, ErrorsNameFileAndKey) {
  struct Case {
    const char* text;
    ConfigSyntax syntax;
    const char* expect;
  };
  const Case cases[] = {
      {"colors = 3", ConfigSyntax::kToml, "c: 'colors': unknown key"},
      {"cores = \"eight\"", ConfigSyntax::kToml, "c: 'cores': expected a number, got a string"},
      {"cores = 2.5", ConfigSyntax::kToml, "c: 'cores': expected a whole number"},
      {"batch-min = -1", ConfigSyntax::kToml, "c: 'batch-min': expected a whole number"},
      {"scaling = \"linear\"", ConfigSyntax::kToml,
       "c: 'scaling': expected \"amdahl\" or \"split\""},
      {"powers-of-two = 1", ConfigSyntax::kToml, "c: 'powers-of-two': expected true or false"},
      {"[section]\ncores = 1", ConfigSyntax::kToml, "c: 'section': expected a scalar value"},
      {"cores = = 1", ConfigSyntax::kToml, "c:1:"},
      {"{\"cores\": [1]}", ConfigSyntax::kJson, "c: 'cores': expected a scalar value"},
      {"{\"cores\": ", ConfigSyntax::kJson, "c: not valid JSON"},
      {"[1, 2]", ConfigSyntax::kJson, "c: the top level must be an object"},
      {"{\"io-cap\": true}", ConfigSyntax::kJson, "c: 'io-cap': expected a number or \"none\""},
  };
  for (const Case& c : cases) {
    EstimatorParams p;
    Status s = apply_estimate_config(c.text, c.syntax, "c", p);
    EXPECT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << c.text << " -> " << s.to_string();
  }
}

TEST(EstimateConfig, LoadPicksSyntaxByExtensionAndReportsMissingFiles) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("myelin_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "a.json") << R"({"cores": 3})";
  std::ofstream(dir / "a.toml") << "cores = 5\n";
  auto j = load_estimate_config((dir / "a.json").string(), EstimatorParams{});
  auto t = load_estimate_config((dir / "a.toml").string(), EstimatorParams{});
  auto missing = load_estimate_config((dir / "nope.toml").string(), EstimatorParams{});
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(j.has_value()) << j.error().to_string();
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  EXPECT_EQ(j->cores, 3);
  EXPECT_EQ(t->cores, 5);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kIoError);
  EXPECT_NE(missing.error().message().find("nope.toml"), std::string::npos);
}

}  // namespace
}  // namespace myelin::perf
