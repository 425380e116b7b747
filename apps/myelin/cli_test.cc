// Runs the real `myelin` binary: exit codes, one-line errors that name the
// flag, and no output file written when the input is bad.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "src/model/test_models.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("myelin_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Outcome run(std::vector<std::string> args, const std::string& input = {}) {
    return run_binary(MYELIN_BINARY, std::move(args), input);
  }

  Outcome run_binary(std::string bin, std::vector<std::string> args,
                     const std::string& input = {}) {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr", in = dir_ / "stdin";
    std::ofstream(in, std::ios::binary) << input;
    const pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      argv.push_back(bin.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      if (!std::freopen(in.c_str(), "r", stdin) || !std::freopen(out.c_str(), "w", stdout) ||
          !std::freopen(err.c_str(), "w", stderr))
        _exit(127);
      ::chdir(dir_.c_str());
      ::execv(bin.c_str(), argv.data());
      _exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    Outcome r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  // A usage error: exit 2, exactly one line on stderr naming `needle`, nothing on stdout.
  void expect_usage_error(std::vector<std::string> args, const std::string& needle) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const Outcome r = run(std::move(args));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }

  fs::path dir_;
};

TEST_F(Cli, VersionAndHelp) {
  Outcome v = run({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("myelin ", 0), 0u) << v.out;
  Outcome h = run({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("estimate"), std::string::npos);
  EXPECT_NE(h.out.find("bench"), std::string::npos);
  Outcome eh = run({"estimate", "--help"});
  EXPECT_EQ(eh.exit_code, 0);
  EXPECT_NE(eh.out.find("--wait-budget-us"), std::string::npos);
}

TEST_F(Cli, NoSubcommandIsAUsageError) { expect_usage_error({}, "subcommand"); }

TEST_F(Cli, UnknownFlagIsNamed) { expect_usage_error({"estimate", "--colour", "red"}, "--colour"); }

TEST_F(Cli, BadValueIsNamed) {
  expect_usage_error({"estimate", "--cores", "eight"}, "--cores");
  expect_usage_error({"estimate", "--t-data-us", "fast"}, "--t-data-us");
}

TEST_F(Cli, EstimatePrintsTheSeedNumbers) {
  Outcome r = run({"estimate", "--now", "2026-02-13T04:44:44.434347Z"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("_Generated: 2026-02-13T04:44:44.434347Z_"), std::string::npos);
  EXPECT_NE(r.out.find("- Speedup S(cores=8, P=0.90) = **4.71x**"), std::string::npos);
  EXPECT_NE(r.out.find("| 65536 | 46,667,177 | 0.1008 |"), std::string::npos);
  EXPECT_NE(r.out.find("| 1 | 85,406 | 18,149 | 55.1000 |"), std::string::npos);
}

TEST_F(Cli, JsonCarriesTheSameNumbers) {
  Outcome r = run({"estimate", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["data"]["best"]["n"], 65536);
  EXPECT_NEAR(j["data"]["best"]["throughput_ops"].get<double>(), 46667177, 1);
  EXPECT_NEAR(j["data"]["speedup"].get<double>(), 4.7058823529, 1e-9);
  EXPECT_EQ(j["data"]["frontier"].size(), 5u);
  EXPECT_EQ(j["data"]["curve"].size(), 7u);
}

TEST_F(Cli, FlagsOverrideConfigWhichOverridesDefaults) {
  std::ofstream(dir_ / "c.toml") << "cores = 4\nparallel-fraction = 0.5\n";
  Outcome r = run({"estimate", "--config", "c.toml", "--cores", "2", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["data"]["parameters"]["cores"], 2);
  EXPECT_EQ(j["data"]["parameters"]["parallel_fraction"], 0.5);
}

TEST_F(Cli, WritesTheOutputFile) {
  Outcome r = run({"estimate", "-o", "out/estimate.md"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(slurp(dir_ / "out" / "estimate.md").find("## 9) Final Recommendation"),
            std::string::npos);
}

TEST_F(Cli, BadInputsNameTheValueAndWriteNoFile) {
  std::ofstream(dir_ / "bad.toml") << "cores = \n";
  std::ofstream(dir_ / "bad.json") << "{\"cores\": 1,";
  std::ofstream(dir_ / "unknown.toml") << "speed = 3\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--t-control-us", "-1"}, "--t-control-us"},
      {{"--t-persist-us", "-0.5"}, "--t-persist-us"},
      {{"--parallel-fraction", "1.2"}, "--parallel-fraction"},
      {{"--cores", "0"}, "--cores"},
      {{"--batch-min", "-5"}, "--batch-min: must be >= 1, got -5"},
      {{"--batch-min", "100", "--batch-max", "10"}, "--batch-min"},
      {{"--t-data-us", "0"}, "--t-data-us"},
      {{"--config", "missing.toml"}, "missing.toml"},
      {{"--config", "bad.toml"}, "bad.toml:1"},
      {{"--config", "bad.json"}, "bad.json: not valid JSON"},
      {{"--config", "unknown.toml"}, "'speed': unknown key"},
      {{"--format", "yaml"}, "--format"},
      {{"--scaling", "linear"}, "--scaling"},
      {{"--now", "yesterday"}, "--now"},
  };
  for (const auto& [extra, needle] : cases) {
    std::vector<std::string> args{"estimate", "-o", "report.md"};
    args.insert(args.end(), extra.begin(), extra.end());
    expect_usage_error(args, needle);
    EXPECT_FALSE(fs::exists(dir_ / "report.md")) << needle;
  }
}

// A bench serve report's calibration: T(n) = 10 + 2n µs, one model.
constexpr const char* kServeJson = R"({"data": {"calibration": {"cores": 2, "workers": 1,
  "models": {"mlp": {"frontend_us": 4, "frontend_cpu_us": 9, "client_cpu_us": 6,
    "batch_compute": [{"batch": 1, "us": 12}, {"batch": 4, "us": 18}, {"batch": 16, "us": 42}]}}}}})";

TEST_F(Cli, EstimateCalibratesFromABenchServeReportOrAConfigSection) {
  std::ofstream(dir_ / "serve.json") << kServeJson;
  const Outcome r = run(
      {"estimate", "--calibrate", "serve.json", "--latency-budget-us", "1000", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["data"]["fit"]["fixed_us"].get<double>(), 10, 1e-9);
  EXPECT_NEAR(j["data"]["fit"]["per_row_us"].get<double>(), 2, 1e-9);
  EXPECT_EQ(j["data"]["predictions"].size(), 7u);  // batch 1, then 4, 16, 64 at two delays
  EXPECT_TRUE(j["data"]["recommendation"].is_object()) << r.out;
  std::ofstream(dir_ / "est.toml") << "[calibration]\nfile = \"serve.json\"\n"
                                      "latency-budget-us = 1000\n";
  const Outcome c = run({"estimate", "--config", "est.toml", "--format", "json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(nlohmann::json::parse(c.out)["data"], j["data"]);
}

TEST_F(Cli, EstimateCalibrationErrorsNameTheFileAndField) {
  expect_usage_error({"estimate", "--calibrate", "missing.json"}, "missing.json: cannot open");
  expect_usage_error({"estimate", "--model", "mlp"}, "--model: only with --calibrate");
  std::string bad = kServeJson;
  bad.replace(bad.find("\"frontend_us\": 4, "), 18, "");
  std::ofstream(dir_ / "bad.json") << bad;
  expect_usage_error({"estimate", "--calibrate", "bad.json"},
                     "bad.json: data.calibration.models.mlp.frontend_us: missing");
  std::ofstream(dir_ / "bad.toml") << "[calibration]\nmax-batch = [4, 0]\n";
  expect_usage_error({"estimate", "--config", "bad.toml"}, "bad.toml: calibration.max-batch[1]");
}

TEST_F(Cli, ServeMaxBatchAutoNeedsABudgetAndACalibration) {
  expect_usage_error({"serve", "--max-batch", "auto"}, "needs --latency-budget-us");
  expect_usage_error({"serve", "--max-batch", "auto", "--latency-budget-us", "500"},
                     "reports/serve.json does not exist");
  expect_usage_error({"serve", "--max-batch", "12x"}, "--max-batch: expected a number");
  expect_usage_error({"serve", "--latency-budget-us", "500"}, "only with --max-batch auto");
  std::ofstream(dir_ / "serve.json") << kServeJson;
  expect_usage_error(
      {"serve", "--max-batch", "auto", "--latency-budget-us", "1", "--calibration", "serve.json"},
      "no batcher setting keeps the predicted wait within 1.0 us");
}

TEST_F(Cli, BenchOnlyIsForTheServePart) {
  expect_usage_error({"bench", "--only", "sweep", "clock"}, "--only");
}

TEST_F(Cli, ZeroDataCostWithACapIsAccepted) {
  Outcome r = run({"estimate", "--t-data-us", "0", "--nic-cap", "1000000"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Cli, BenchListsPartsAndRequiresOne) {
  expect_usage_error({"bench"}, "subcommand");
  Outcome h = run({"bench", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("clock"), std::string::npos);
}

// The shared libraries an executable names (readelf -d, NEEDED entries).
std::vector<std::string> needed_libraries(const std::string& binary) {
  std::vector<std::string> libs;
  const std::string cmd = "readelf -d '" + binary + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return libs;
  char line[512];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    const std::string l = line;
    if (l.find("(NEEDED)") == std::string::npos) continue;
    const std::size_t open = l.find('['), close = l.find(']', open);
    if (open != std::string::npos && close != std::string::npos)
      libs.push_back(l.substr(open + 1, close - open - 1));
  }
  ::pclose(p);
  return libs;
}

bool names_any(const std::vector<std::string>& libs, const std::vector<std::string>& stems) {
  for (const std::string& lib : libs)
    for (const std::string& stem : stems)
      if (lib.rfind(stem, 0) == 0) return true;
  return false;
}

// The peers the benchmarks compare against; none belongs in the deployed CLI.
const std::vector<std::string> kPeerLibraries = {"libuv.", "libxgboost.", "libonnxruntime.",
                                                 "libboost_"};

TEST(CliLinks, MyelinNeedsNoPeerLibraryButTheBenchExecutableDoes) {
  const std::vector<std::string> cli = needed_libraries(MYELIN_BINARY);
  ASSERT_TRUE(names_any(cli, {"libc.so"})) << "readelf found no NEEDED entries";
  EXPECT_FALSE(names_any(cli, kPeerLibraries)) << ::testing::PrintToString(cli);
  // The same check on the executable that does link the peers: it must see them.
  const std::vector<std::string> bench = needed_libraries(MYELIN_BENCH_BINARY);
  EXPECT_TRUE(names_any(bench, {"libuv."})) << ::testing::PrintToString(bench);
  EXPECT_TRUE(names_any(bench, {"libxgboost."})) << ::testing::PrintToString(bench);
}

// `myelin bench` hands its arguments to myelin-bench, found next to the
// `myelin` binary; without it the error says what is missing and where.
TEST_F(Cli, BenchWithoutTheBenchExecutableSaysWhereItLooked) {
  fs::create_directories(dir_ / "lonely");
  const fs::path copy = dir_ / "lonely" / "myelin";
  fs::copy_file(MYELIN_BINARY, copy);
  Outcome r = run_binary(copy.string(), {"bench", "--help"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find((dir_ / "lonely" / "myelin-bench").string() + " not found"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(Cli, BenchPassesFlagsBeforeAndAfterThePartThrough) {
  expect_usage_error({"bench", "--no-such-flag", "clock"}, "--no-such-flag");
  expect_usage_error({"bench", "clock", "--no-such-flag"}, "--no-such-flag");
  expect_usage_error({"bench", "no-such-part"}, "subcommand is required");
  Outcome h = run({"bench", "clock", "--help"});
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find("clock"), std::string::npos) << h.out;
}

// Several parts run in the order given; a failed one (amqp, pointed at a
// port where no broker listens) does not stop the next, and the summary
// says which failed; the exit status says that one did.
TEST_F(Cli, BenchRunsSeveralPartsAndSummarises) {
  ::setenv("MYELIN_AMQP_URI", "amqp://127.0.0.1:1/", 1);
  Outcome r = run({"bench", "--quick", "--out-dir", "r", "amqp", "clock"});
  ::unsetenv("MYELIN_AMQP_URI");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
  const std::size_t amqp = r.err.find("myelin bench amqp       FAILED");
  const std::size_t clock = r.err.find("myelin bench clock      ok");
  EXPECT_NE(amqp, std::string::npos) << r.err;
  EXPECT_NE(clock, std::string::npos) << r.err;
  EXPECT_LT(amqp, clock) << "in the order given";
  EXPECT_NE(r.err.find("2 parts, 1 failed"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "r" / "clock.md"));
  EXPECT_FALSE(fs::exists(dir_ / "r" / "amqp.md"));
}

TEST_F(Cli, BenchClockWritesMarkdownAndJson) {
  Outcome r = run({"bench", "--quick", "--out-dir", "r", "clock"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = slurp(dir_ / "r" / "clock.md");
  EXPECT_NE(md.find("## 1) Machine and method"), std::string::npos);
  EXPECT_NE(md.find("| mono_now() |"), std::string::npos);
  const auto j = nlohmann::json::parse(slurp(dir_ / "r" / "clock.json"));
  const auto& cost = j["data"]["tables"]["cost"];
  ASSERT_EQ(cost.size(), 6u) << j.dump();
  EXPECT_EQ(cost[0]["clock"], "mono_now()");
  EXPECT_GT(cost[0]["p50_ns"].get<double>(), 0);
  EXPECT_TRUE(cost[4]["resolution_ns"].is_null());  // rdtsc counts cycles
  EXPECT_GT(j["data"]["figures"]["sample_floor_p50_ns"].get<double>(), 0);
}

// The secure bench's plumbing end to end: MSC1, plaintext and TLS 1.3 (the
// latter through a BIO over the memory pipe) each move data over both
// transports. Figures are not judged here; the report is where they count.
TEST_F(Cli, BenchSecureQuickMeasuresEveryPeerOverBothTransports) {
  Outcome r = run({"bench", "--quick", "--out-dir", "r", "secure"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = slurp(dir_ / "r" / "secure-channel.md");
  EXPECT_NE(md.find("Sustained one-way throughput, duplex pair (memory pipe)"), std::string::npos);
  EXPECT_NE(md.find("Sustained one-way throughput, loopback TCP"), std::string::npos);
  const auto j = nlohmann::json::parse(slurp(dir_ / "r" / "secure-channel.json"));
  std::vector<std::string> transports;
  for (const auto& row : j["data"]["throughput"]) {
    transports.push_back(row["transport"].get<std::string>());
    for (const char* col : {"plaintext_mb_s", "secure_mb_s", "tls13_mb_s", "raw_aead_mb_s"}) {
      EXPECT_GT(row[col].get<double>(), 0) << col << " " << row.dump();
    }
  }
  EXPECT_EQ(std::count(transports.begin(), transports.end(), "duplex pair"), 6);
  EXPECT_EQ(std::count(transports.begin(), transports.end(), "loopback TCP"), 6);
}

std::string models_dir() {
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  return std::string(src ? src : ".") + "/models";
}

TEST_F(Cli, PredictRunsAShippedModel) {
  Outcome r = run({"predict", "--model", models_dir() + "/logistic_regression.onnx", "--input",
                   models_dir() + "/logistic_regression.input.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("probabilities")) << r.out;
  double sum = 0;
  for (const auto& p : j["probabilities"]["data"]) sum += p.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-5);  // softmax output of a real model
}

TEST_F(Cli, CompileThenInspectAndPredictFromTheCompiledFile) {
  const std::string onnx = models_dir() + "/mlp.onnx";
  Outcome c = run({"compile", onnx, "-o", "mlp.mylm"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  Outcome i = run({"inspect", "mlp.mylm"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_NE(i.out.find("[N, 64]"), std::string::npos) << i.out;
  const std::string input = models_dir() + "/mlp.input.json";
  Outcome from_onnx = run({"predict", "--model", onnx, "--input", input});
  Outcome from_mylm = run({"predict", "--model", "mlp.mylm", "--input", input});
  ASSERT_EQ(from_onnx.exit_code, 0) << from_onnx.err;
  EXPECT_EQ(from_mylm.out, from_onnx.out);
}

TEST_F(Cli, PredictRejectsBadModelsAndInputsInOneLine) {
  std::ofstream(dir_ / "bad.onnx") << "garbage";
  std::ofstream(dir_ / "short.json") << R"({"X": [[1, 2]]})";
  expect_usage_error({"predict", "--model", "bad.onnx", "--input", "short.json"},
                     "bad.onnx: not a valid ONNX model");
  expect_usage_error({"predict", "--model", models_dir() + "/mlp.onnx", "--input", "short.json"},
                     "input 'X' has shape [1, 2], expected [N, 64]");
  Outcome missing = run({"predict", "--model", "missing.onnx", "--input", "short.json"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("missing.onnx"), std::string::npos) << missing.err;
}

TEST_F(Cli, CompileRefusesDevicesBeforeReading) {
  // /dev/zero used to be read until std::bad_alloc.
  expect_usage_error({"compile", "/dev/zero", "-o", "zero.mylm"}, "/dev/zero: not a regular file");
  expect_usage_error({"compile", ".", "-o", "dir.mylm"}, ".: not a regular file");
  EXPECT_FALSE(fs::exists(dir_ / "zero.mylm"));
}

TEST_F(Cli, CompileNamesTheInputAndExitsTwoForABadModel) {
  std::ofstream(dir_ / "bad.onnx") << "garbage";
  expect_usage_error({"compile", "bad.onnx", "-o", "out.mylm"}, "bad.onnx: not a valid ONNX model");
  // A model refused when the compiled plan is bound (here: over the memory
  // budget) names the input, not the output it was about to write.
  const std::string wide = myelin::model::testing::GraphBuilder()
                               .input("X", {-1, std::int64_t{1} << 28})
                               .output("Y", {-1, std::int64_t{1} << 28})
                               .node("Relu", {"X"}, {"Y"})
                               .bytes();
  std::ofstream(dir_ / "wide.onnx", std::ios::binary) << wide;
  expect_usage_error({"compile", "wide.onnx", "-o", "out.mylm"}, "wide.onnx: the plan needs");
  EXPECT_FALSE(fs::exists(dir_ / "out.mylm"));
}

TEST_F(Cli, PredictEscapesANonUtf8OutputName) {
  // nlohmann::json threw on the name, which surfaced as "internal error".
  const std::string onnx = myelin::model::testing::GraphBuilder()
                               .input("X", {-1, 2})
                               .output("Y\xff", {-1, 2})
                               .node("Relu", {"X"}, {"Y\xff"})
                               .bytes();
  std::ofstream(dir_ / "name.onnx", std::ios::binary) << onnx;
  std::ofstream(dir_ / "in.json") << R"({"X": [[1, -2]]})";
  const Outcome r = run({"predict", "--model", "name.onnx", "--input", "in.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("Y\\xff")) << r.out;
  EXPECT_EQ(j["Y\\xff"]["data"], nlohmann::json::parse("[1.0, 0.0]"));
}

// myelin faultproxy: one answer line per stdin command; a bad line is an
// error line and the proxy keeps running; end of input stops it.
TEST_F(Cli, AmqpFrontEndFlags) {
  expect_usage_error({"infer", "--model", "m", "--secure", "127.0.0.1:1", "--attestation", "none",
                      "--amqp", "amqp://127.0.0.1:1/"},
                     "choose one");
  expect_usage_error({"serve", "--http-port", "0", "--amqp", "http://nowhere/"}, "--amqp");
  expect_usage_error({"serve", "--http-port", "0", "--amqp-prefetch", "0"}, "--amqp-prefetch");
  // No broker there: serve exits 1 with one line that names where it tried.
  const Outcome r = run({"serve", "--http-port", "0", "--amqp", "amqp://127.0.0.1:1/"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
}

TEST_F(Cli, FaultProxyAnswersEachStdinCommand) {
  const Outcome r = run({"faultproxy", "--upstream", "127.0.0.1:9"},
                        "blackhole on\nlatency abc\n\nstats\nheal\nquit\nreset\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::istringstream out(r.out);
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0].rfind("listening 127.0.0.1:", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("ok blackhole ", 0), 0u) << lines[1];
  EXPECT_GT(std::stoll(lines[1].substr(13)), 0);
  EXPECT_EQ(lines[2], "error latency: 'abc' is not a number of milliseconds in [0, 3600000]");
  EXPECT_EQ(lines[3],
            "stats accepted=0 active=0 refused=0 resets=0 upstream_failures=0 up_bytes=0 "
            "down_bytes=0");
  EXPECT_EQ(lines[4].rfind("ok heal ", 0), 0u) << lines[4];  // nothing after quit
}

TEST_F(Cli, FaultProxyUsageErrors) {
  expect_usage_error({"faultproxy"}, "--upstream");
  expect_usage_error({"faultproxy", "--upstream", "nohost"}, "--upstream");
  expect_usage_error({"faultproxy", "--upstream", "127.0.0.1:70000"}, "--upstream");
  expect_usage_error({"faultproxy", "--upstream", "127.0.0.1:5672", "--listen", "x:y"}, "--listen");
}
}  // namespace

// `myelin attest verify` on the real evidence of src/secure/attestation/testdata.
class AttestCli : public Cli {
 protected:
  static std::string data(const std::string& rel) {
    const char* src = std::getenv("MYELIN_SOURCE_DIR");
    return std::string(src != nullptr ? src : ".") + "/src/secure/attestation/testdata/" + rel;
  }
};

TEST_F(AttestCli, RealSnpReportVerifies) {
  const Outcome r = run({"attest", "verify", data("sev-snp/report.hex"), "--platform", "snp",
                         "--collateral", data("sev-snp"), "--at", "2026-12-07"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("product Milan"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reported_tcb: bootloader=3 tee=0 snp=8 microcode=115"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  measurement "), std::string::npos) << r.out;
}

TEST_F(AttestCli, RealTdxQuoteVerifiesIn2023AndExpiresBy2053) {
  const Outcome r = run({"attest", "verify", data("tdx/quote.dat"), "--platform", "tdx",
                         "--collateral", data("tdx"), "--at", "2023-07-01T01:00:00Z"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  mrtd "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  rtmr3 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tcb status: not evaluated"), std::string::npos) << r.out;
  const Outcome late = run({"attest", "verify", data("tdx/quote.dat"), "--platform", "tdx",
                            "--collateral", data("tdx"), "--at", "2053-07-01"});
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_NE(late.err.find("expired"), std::string::npos) << late.err;
}

TEST_F(AttestCli, RejectionsNameTheReason) {
  // The TCB info names levels this quote's PCK TCB is below.
  fs::copy_file(data("tdx/sample_tcbInfo_response"), dir_ / "tcb_info.json");
  const Outcome tcb = run({"attest", "verify", data("tdx/quote.dat"), "--platform", "tdx",
                           "--collateral", dir_.string(), "--at", "2023-07-01T01:00:00Z"});
  EXPECT_EQ(tcb.exit_code, 1);
  EXPECT_NE(tcb.err.find("no TCB level matches"), std::string::npos) << tcb.err;
  const Outcome binding =
      run({"attest", "verify", data("sev-snp/report.hex"), "--platform", "snp", "--collateral",
           data("sev-snp"), "--at", "2026-12-07", "--report-data", std::string(64, '0')});
  EXPECT_EQ(binding.exit_code, 1);
  EXPECT_NE(binding.err.find("REPORT_DATA does not carry the expected binding"), std::string::npos)
      << binding.err;
  const Outcome wrong = run({"attest", "verify", data("tdx/quote.dat"), "--platform", "snp",
                             "--collateral", data("sev-snp"), "--at", "2026-12-07"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("4935 bytes, expected 1184"), std::string::npos) << wrong.err;
  const Outcome missing = run({"attest", "verify", data("sev-snp/report.hex"), "--platform", "snp",
                               "--collateral", dir_.string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("vcek.pem"), std::string::npos) << missing.err;
}

TEST_F(AttestCli, BadFlagsAreUsageErrors) {
  expect_usage_error({"attest", "verify", "x", "--platform", "sgx", "--collateral", "d"},
                     "--platform");
  expect_usage_error({"attest", "verify", "x", "--platform", "snp"}, "--collateral");
  expect_usage_error(
      {"attest", "verify", "x", "--platform", "snp", "--collateral", "d", "--at", "yesterday"},
      "--at");
  expect_usage_error(
      {"attest", "verify", "x", "--platform", "snp", "--collateral", "d", "--report-data", "abc"},
      "--report-data");
}

TEST_F(AttestCli, PolicyFileDecides) {
  const std::string measurement =
      "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81"
      "841f";  // the report's MEASUREMENT
  const auto policy = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  };
  // The policy names the collateral (absolute here); --collateral is not needed.
  const std::string good =
      policy("good.toml", "platforms = [\"sev-snp\"]\ncollateral = \"" + data("sev-snp") +
                              "\"\n[sev-snp]\nmeasurement = \"" + measurement +
                              "\"\nminimum_tcb = { snp = 8 }\n");
  const Outcome ok = run({"attest", "verify", data("sev-snp/report.hex"), "--platform", "snp",
                          "--policy", good, "--at", "2026-12-07"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("policy: " + good + " accepts it"), std::string::npos) << ok.out;

  const Outcome wrong =
      run({"attest", "verify", data("sev-snp/report.hex"), "--platform", "snp", "--collateral",
           data("sev-snp"), "--at", "2026-12-07", "--policy",
           policy("m.toml", "platforms = [\"sev-snp\"]\n[sev-snp]\nmeasurement = \"" +
                                std::string(96, '0') + "\"\n")});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("measurement 'measurement'"), std::string::npos) << wrong.err;

  const Outcome tcb = run({"attest", "verify", data("sev-snp/report.hex"), "--platform", "snp",
                           "--collateral", data("sev-snp"), "--at", "2026-12-07", "--policy",
                           policy("t.toml",
                                  "platforms = [\"sev-snp\"]\n[sev-snp]\n"
                                  "minimum_tcb = { microcode = 116 }\n")});
  EXPECT_EQ(tcb.exit_code, 1);
  EXPECT_NE(tcb.err.find("below the policy minimum"), std::string::npos) << tcb.err;

  const Outcome platform =
      run({"attest", "verify", data("tdx/quote.dat"), "--platform", "tdx", "--collateral",
           data("tdx"), "--policy", policy("p.toml", "platforms = [\"sev-snp\"]\n")});
  EXPECT_EQ(platform.exit_code, 1);
  EXPECT_NE(platform.err.find("does not accept tdx"), std::string::npos) << platform.err;

  const Outcome statuses =
      run({"attest", "verify", data("tdx/quote.dat"), "--platform", "tdx", "--collateral",
           data("tdx"), "--at", "2023-07-01T01:00:00Z", "--policy",
           policy("s.toml", "platforms = [\"tdx\"]\n[tdx]\ntcb_statuses = [\"UpToDate\"]\n")});
  EXPECT_EQ(statuses.exit_code, 1);
  EXPECT_NE(statuses.err.find("tcb_info.json: not found"), std::string::npos) << statuses.err;

  const std::string bad = policy("bad.toml", "platforms = [\"tdx\"]\nfreshness = 5\n");
  expect_usage_error({"attest", "verify", "x", "--platform", "tdx", "--policy", bad},
                     bad + ":2: 'freshness': unknown key");
}

// The TEE kinds need the guest's device: on a machine that is not an SEV-SNP
// or TDX guest (this one, CI), `myelin serve` refuses to start with the reason.
TEST_F(Cli, ServeWithoutTeeDeviceRefusesToStart) {
  ASSERT_FALSE(fs::exists("/dev/sev-guest")) << "this test needs a machine without SEV-SNP";
  ASSERT_FALSE(fs::exists("/sys/kernel/config/tsm/report")) << "this test needs no configfs-tsm";
  const Outcome snp =
      run({"serve", "--http-port", "0", "--secure-port", "0", "--attestation", "snp"});
  EXPECT_EQ(snp.exit_code, 1);
  EXPECT_NE(snp.err.find("myelin serve: --attestation snp: SEV-SNP provider: cannot open "
                         "/dev/sev-guest: No such file or directory"),
            std::string::npos)
      << snp.err;
  const Outcome tdx =
      run({"serve", "--http-port", "0", "--secure-port", "0", "--attestation", "tdx"});
  EXPECT_EQ(tdx.exit_code, 1);
  EXPECT_NE(tdx.err.find("myelin serve: --attestation tdx: TDX provider: configfs-tsm report "
                         "interface unavailable: /sys/kernel/config/tsm/report"),
            std::string::npos)
      << tdx.err;
}

TEST_F(Cli, InferTeeAttestationNeedsAPolicy) {
  expect_usage_error({"infer", "--secure", "127.0.0.1:1", "--attestation", "snp", "--model", "m"},
                     "--attestation snp needs --policy FILE");
  expect_usage_error({"infer", "--secure", "127.0.0.1:1", "--attestation", "mock", "--model", "m",
                      "--policy", "p.toml"},
                     "--policy/--collateral apply to --attestation snp|tdx");
}
