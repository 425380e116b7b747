#include "myelin/perf/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace myelin::perf {
namespace {

Report sample_report() {
  Report r;
  r.title = "T";
  r.generated = "2026-01-01T00:00:00Z";
  r.method = "m";
  r.add_section("First").bullets(
      {{"Cores", Cell::num(8, "8")}, {"Note", Cell::str("plain"), false}});
  Table t{{{"N"}, {"Name", Align::kLeft}}, {}};
  t.add_row({Cell::num(1, "1"), Cell::str("one")});
  t.add_row({Cell::num(1000, "1,000")});  // short row
  r.add_section("Second").paragraph("Intro:").table(std::move(t));
  r.footer = "F";
  r.data = {{"k", 1}};
  return r;
}

TEST(RenderMarkdown, SeedLayout) {
  const std::string md = render_markdown(sample_report());
  EXPECT_EQ(md,
            "# T\n"
            "_Generated: 2026-01-01T00:00:00Z_\n"
            "\n## 1) First\n"
            "- Cores: **8**\n"
            "- Note: plain\n"
            "\n## 2) Second\n"
            "Intro:\n"
            "\n"
            "| N | Name |\n"
            "|---:|---|\n"
            "| 1 | one |\n"
            "| 1,000 |  |\n"
            "\n---\nF\n");
}

TEST(RenderMarkdown, MachineSectionComesFirst) {
  Report r = sample_report();
  r.machine = MachineInfo::detect();
  const std::string md = render_markdown(r);
  EXPECT_NE(md.find("## 1) Machine and method"), std::string::npos);
  EXPECT_NE(md.find("| Method | m |"), std::string::npos);
  EXPECT_NE(md.find("| Logical CPUs |"), std::string::npos);
  EXPECT_NE(md.find("## 2) First"), std::string::npos);
}

TEST(RenderJson, NumbersStayNumbers) {
  const auto j = nlohmann::json::parse(render_json(sample_report()));
  EXPECT_EQ(j["title"], "T");
  EXPECT_EQ(j["sections"][0]["blocks"][0]["items"][0]["value"], 8);
  EXPECT_EQ(j["sections"][0]["blocks"][0]["items"][1]["text"], "plain");
  EXPECT_FALSE(j["sections"][0]["blocks"][0]["items"][1].contains("value"));
  EXPECT_EQ(j["sections"][1]["blocks"][1]["rows"][1][0], 1000);
  EXPECT_EQ(j["sections"][1]["blocks"][1]["rows"][0][1], "one");
  EXPECT_EQ(j["data"]["k"], 1);
}

TEST(ParseFormat, KnownNames) {
  EXPECT_EQ(parse_format("md"), Format::kMarkdown);
  EXPECT_EQ(parse_format("markdown"), Format::kMarkdown);
  EXPECT_EQ(parse_format("json"), Format::kJson);
  EXPECT_FALSE(parse_format("yaml").has_value());
}

TEST(Timestamp, NowIsValid) {
  auto ts = validate_timestamp(utc_timestamp_now());
  EXPECT_TRUE(ts.has_value()) << ts.error().to_string();
}

TEST(Timestamp, AcceptsIso8601) {
  EXPECT_TRUE(validate_timestamp("2026-02-13T04:44:44.434347Z").has_value());
  EXPECT_TRUE(validate_timestamp("2026-02-13T04:44:44Z").has_value());
  EXPECT_TRUE(validate_timestamp("2026-02-13T04:44:44+01:00").has_value());
}

TEST(Timestamp, RejectsOthers) {
  for (const char* bad : {"", "yesterday", "2026-02-13", "2026-02-13 04:44:44Z",
                          "2026-13-01T00:00:00Z", "2026-02-13T25:00:00Z", "2026-02-13T04:44:44",
                          "2026-02-13T04:44:44.Z", "2026-02-13T04:44:44+0100"}) {
    auto r = validate_timestamp(bad);
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find("ISO 8601"), std::string::npos);
    }
  }
}

class WriteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("myelin_report_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(WriteFileTest, CreatesDirectoriesAndWrites) {
  const std::string path = (dir_ / "a" / "b.md").string();
  ASSERT_TRUE(write_file_atomic(path, "hello").ok());
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "hello");
  // No temporary file left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_ / "a"), {}), 1);
}

TEST_F(WriteFileTest, FailsCleanlyWhenParentIsAFile) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  Status s = write_file_atomic((dir_ / "file" / "out.md").string(), "hello");
  EXPECT_EQ(s.code(), ErrorCode::kIoError);
  EXPECT_NE(s.message().find("file"), std::string::npos);
}

}  // namespace
}  // namespace myelin::perf
