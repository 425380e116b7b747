// Untrusted sizes never exhaust memory, and every refusal says what and
// where (issue 21, section 3): memory budgets, shape checks before any
// allocation, opsets, and the messages of bad models.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "myelin/model/model.h"
#include "src/model/format.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define MYELIN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MYELIN_ASAN 1
#endif
#endif

namespace myelin::model {
namespace {

using testing::as_bytes;
using testing::Attr;
using testing::GraphBuilder;

constexpr std::int64_t kWide = std::int64_t{1} << 15;  // 32768

// The three reproducers.
// 1. A tiny model whose input row is 2^28 floats (1 GiB per sample).
std::string huge_input_dim() {
  return GraphBuilder()
      .input("X", {-1, std::int64_t{1} << 28})
      .output("Y", {-1, std::int64_t{1} << 28})
      .node("Relu", {"X"}, {"Y"})
      .bytes();
}
// 2. 256 KB of constants whose broadcast makes a 4 GiB intermediate per
//    sample ([32768, 1] + [32768] -> [32768, 32768]), reduced by a MatMul.
std::string huge_workspace() {
  return GraphBuilder()
      .input("X", {-1, kWide, 1})
      .initializer("B", {kWide}, std::vector<float>(static_cast<std::size_t>(kWide), 1.0f))
      .initializer("W", {kWide, 1}, std::vector<float>(static_cast<std::size_t>(kWide), 1.0f))
      .output("Y", {-1, kWide, 1})
      .node("Add", {"X", "B"}, {"T"})
      .node("MatMul", {"T", "W"}, {"Y"})
      .bytes();
}
// 3. The same broadcast as a graph output: 4 GiB of output per sample.
std::string huge_broadcast_output() {
  return GraphBuilder()
      .input("X", {-1, kWide, 1})
      .initializer("B", {kWide}, std::vector<float>(static_cast<std::size_t>(kWide), 1.0f))
      .output("Y", {-1, kWide, kWide})
      .node("Add", {"X", "B"}, {"Y"})
      .bytes();
}

LoadOptions unlimited() {
  LoadOptions o;
  o.max_model_bytes = 0;
  o.max_request_bytes = 0;
  return o;
}

void expect_error(const Status& s, ErrorCode code, std::initializer_list<std::string> needles) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  for (const std::string& n : needles)
    EXPECT_NE(s.to_string().find(n), std::string::npos)
        << "want '" << n << "' in " << s.to_string();
}

template <typename T>
Status error_of(const Result<T>& r) {
  return r ? Status() : r.error();
}

TEST(ModelLimits, HugeWorkspaceModelIsRefusedAtLoadNamingTheBudget) {
  auto m = Model::load(as_bytes(huge_workspace()), {}, "ws.onnx");
  expect_error(error_of(m), ErrorCode::kOutOfRange,
               {"ws.onnx", "workspace per sample", "max_model_bytes = 2147483648"});
}

TEST(ModelLimits, HugeBroadcastOutputModelIsRefusedAtLoad) {
  auto m = Model::load(as_bytes(huge_broadcast_output()), {}, "bcast.onnx");
  expect_error(error_of(m), ErrorCode::kOutOfRange, {"bcast.onnx", "max_model_bytes"});
}

TEST(ModelLimits, PredictChecksTheRequestShapeBeforeAllocating) {
  // Loads without a budget: the shape error must come before the 2 GiB of
  // workspace and outputs a [1, 2^28] batch would need.
  auto m = Model::load(as_bytes(huge_input_dim()), unlimited(), "wide.onnx");
  ASSERT_TRUE(m) << m.error().to_string();
  const std::vector<float> x = {1, 2, 3, 4};
  auto out = m->predict(std::vector<TensorView>{testing::view_of(x, {1, 4})});
  expect_error(error_of(out), ErrorCode::kInvalidArgument,
               {"wide.onnx", "input 'X' has shape [1, 4], expected [N, 268435456]"});
}

TEST(ModelLimits, RequestOverBudgetIsRefusedBeforeAllocating) {
  LoadOptions o;
  o.max_request_bytes = 1 << 20;
  auto m = Model::load(as_bytes(GraphBuilder()
                                    .input("X", {-1, 1024})
                                    .output("Y", {-1, 1024})
                                    .node("Relu", {"X"}, {"Y"})
                                    .bytes()),
                       o, "relu.onnx");
  ASSERT_TRUE(m) << m.error().to_string();
  const std::vector<float> small(4 * 1024, 1.0f), big(256 * 1024, 1.0f);
  EXPECT_TRUE(m->predict(std::vector<TensorView>{testing::view_of(small, {4, 1024})}));
  auto out = m->predict(std::vector<TensorView>{testing::view_of(big, {256, 1024})});
  expect_error(error_of(out), ErrorCode::kOutOfRange,
               {"relu.onnx", "batch 256", "max_request_bytes = 1048576"});
  // A workspace is a request's worth of scratch too.
  expect_error(error_of(m->make_workspace(256)), ErrorCode::kOutOfRange,
               {"relu.onnx", "max_request_bytes = 1048576"});
  EXPECT_TRUE(m->make_workspace(64));
}

TEST(ModelLimits, MylmOverTheModelBudgetIsRefusedBeforeMapping) {
  auto image = Model::compile_onnx(as_bytes(testing::linear_regressor(64, 1)));
  ASSERT_TRUE(image) << image.error().to_string();
  LoadOptions o;
  o.max_model_bytes = 1024;
  auto m = Model::load(*image, o, "lr.mylm");
  expect_error(error_of(m), ErrorCode::kOutOfRange, {"lr.mylm", "max_model_bytes = 1024"});
}

#ifndef MYELIN_ASAN
// With the address space capped at 512 MiB above what the process uses, any
// allocation beyond the budget fails: the three reproducers must be refused
// by the budget or the shape check, never reach the allocator, and an
// allocation that does fail is an error, not an escaping std::bad_alloc.
// (ASan reserves terabytes of shadow memory, so this runs in release only.)
// Exits with `code`, saying why on stderr (a death test shows it on failure).
template <typename T>
void expect_code(int code, const Result<T>& r, ErrorCode want) {
  if (r || r.error().code() != want) {
    std::fprintf(stderr, "check %d: %s\n", code, r ? "succeeded" : r.error().to_string().c_str());
    std::_Exit(code);
  }
}

[[noreturn]] void run_reproducers_under_a_capped_address_space() {
  rlimit now{};
  std::size_t vm_kb = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long pages = 0;
    if (std::fscanf(f, "%lu", &pages) == 1)
      vm_kb = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
    std::fclose(f);
  }
  now.rlim_cur = now.rlim_max = (vm_kb + 512 * 1024) * 1024;
  if (::setrlimit(RLIMIT_AS, &now) != 0) std::_Exit(10);
  LoadOptions small;
  small.max_model_bytes = 256 << 20;
  small.max_request_bytes = 256 << 20;
  for (const std::string& onnx : {huge_input_dim(), huge_workspace(), huge_broadcast_output()}) {
    expect_code(11, Model::load(as_bytes(onnx), small), ErrorCode::kOutOfRange);
  }
  auto wide = Model::load(as_bytes(huge_input_dim()), unlimited());
  if (!wide) std::_Exit(12);
  const std::vector<float> x = {1, 2, 3, 4};
  expect_code(13, wide->predict(std::vector<TensorView>{testing::view_of(x, {1, 4})}),
              ErrorCode::kInvalidArgument);
  // No budget at all: the 4 GiB allocation fails, and says so.
  auto bcast = Model::load(as_bytes(huge_broadcast_output()), unlimited());
  if (!bcast) std::_Exit(14);
  const std::vector<float> row(static_cast<std::size_t>(kWide), 1.0f);
  expect_code(15, bcast->predict(std::vector<TensorView>{testing::view_of(row, {1, kWide, 1})}),
              ErrorCode::kResourceExhausted);
  std::_Exit(0);
}

TEST(ModelLimitsDeathTest, ThreeReproducersAllocateNothingBeyondTheBudget) {
  EXPECT_EXIT(run_reproducers_under_a_capped_address_space(), ::testing::ExitedWithCode(0), "");
}
#endif

// --- opsets ---

std::string with_opsets(const std::string& onnx,
                        std::vector<std::pair<std::string, std::int64_t>> opsets) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(onnx));
  m.clear_opset_import();
  for (const auto& [domain, version] : opsets) {
    auto* o = m.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
  return m.SerializeAsString();
}

std::string relu() {
  return GraphBuilder().input("X", {-1, 4}).output("Y", {-1, 4}).node("Relu", {"X"}, {"Y"}).bytes();
}

TEST(ModelLimits, UnsupportedOpsetsAreRefusedNamingDomainAndVersion) {
  for (std::int64_t v : {std::int64_t{99}, std::int64_t{0}}) {
    auto m = Model::load(as_bytes(with_opsets(relu(), {{"", v}})), {}, "op.onnx");
    expect_error(error_of(m), ErrorCode::kUnimplemented,
                 {"op.onnx", "opset " + std::to_string(v) + " of domain ai.onnx is not supported"});
  }
  auto ml = Model::load(
      as_bytes(with_opsets(testing::linear_regressor(4, 1), {{"", 15}, {"ai.onnx.ml", 99}})), {},
      "ml.onnx");
  expect_error(error_of(ml), ErrorCode::kUnimplemented,
               {"ml.onnx", "opset 99 of domain ai.onnx.ml is not supported"});
  EXPECT_TRUE(Model::load(as_bytes(with_opsets(relu(), {{"", 13}}))));
}

TEST(ModelLimits, MissingOpsetImportIsRefused) {
  auto m = Model::load(as_bytes(with_opsets(relu(), {})), {}, "none.onnx");
  expect_error(error_of(m), ErrorCode::kUnimplemented,
               {"none.onnx", "domain ai.onnx, which the model's opset_import does not list"});
  auto ml = Model::load(as_bytes(with_opsets(testing::linear_regressor(4, 1), {{"", 15}})), {},
                        "noml.onnx");
  expect_error(error_of(ml), ErrorCode::kUnimplemented, {"noml.onnx", "domain ai.onnx.ml"});
}

// --- graphs ---

TEST(ModelLimits, ZipMapWhoseLabelCountDiffersFromItsInputIsRefused) {
  const std::string onnx =
      GraphBuilder()
          .input("X", {-1, 3})
          .output("Z", {-1, 3})
          .node("ZipMap", {"X"}, {"Z"},
                {Attr::of("classlabels_int64s", std::vector<std::int64_t>{0, 1})}, "ai.onnx.ml")
          .bytes();
  auto m = Model::load(as_bytes(onnx), {}, "zip.onnx");
  expect_error(error_of(m), ErrorCode::kInvalidArgument,
               {"zip.onnx", "ZipMap", "has shape [N, 3] but 2 class labels"});
}

TEST(ModelLimits, NegativeDimensionIsNotCalledSymbolic) {
  auto m = Model::load(as_bytes(
      GraphBuilder().input("X", {-1, 4}).output("Y", {-1, 4}).node("Relu", {"X"}, {"Y"}).bytes()));
  ASSERT_TRUE(m);
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(relu()));
  p.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(-5);
  auto bad = Model::load(as_bytes(p.SerializeAsString()), {}, "neg.onnx");
  expect_error(error_of(bad), ErrorCode::kInvalidArgument,
               {"neg.onnx", "input 'X': dimension 1 is negative (-5)"});
  EXPECT_EQ(bad.error().to_string().find("symbolic"), std::string::npos);
}

TEST(ModelLimits, NegativeNTargetsIsPrintedAsNegative) {
  testing::TreeSpec spec = testing::random_trees(1, 2, 4, 1);
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(testing::tree_regressor(spec)));
  for (auto& a : *p.mutable_graph()->mutable_node(0)->mutable_attribute()) {
    if (a.name() == "n_targets") a.set_i(-1);
  }
  auto m = Model::load(as_bytes(p.SerializeAsString()), {}, "trees.onnx");
  expect_error(error_of(m), ErrorCode::kInvalidArgument, {"trees.onnx", "n_targets -1"});
  EXPECT_EQ(m.error().to_string().find("4294967295"), std::string::npos);
}

TEST(ModelLimits, GraphWithoutInputsIsRefused) {
  const std::string onnx = GraphBuilder()
                               .initializer("C", {2}, {1, 2})
                               .output("Y", {2})
                               .node("Relu", {"C"}, {"Y"})
                               .bytes();
  auto m = Model::load(as_bytes(onnx), {}, "const.onnx");
  expect_error(error_of(m), ErrorCode::kInvalidArgument, {"const.onnx", "has no inputs"});
}

// --- .mylm ---

std::vector<std::byte> compiled() {
  auto image = Model::compile_onnx(as_bytes(testing::linear_regressor(4, 1)));
  EXPECT_TRUE(image);
  return image ? *image : std::vector<std::byte>{};
}

// The header is not covered by the checksum, so these edits reach validation.
template <typename F>
std::vector<std::byte> patched(F&& edit) {
  std::vector<std::byte> image = compiled();
  detail::FileHeader h;
  std::memcpy(&h, image.data(), sizeof(h));
  edit(h);
  std::memcpy(image.data(), &h, sizeof(h));
  return image;
}

TEST(ModelLimits, MylmWithoutInputsOrOutputsIsRefused) {
  auto no_out =
      Model::load(patched([](detail::FileHeader& h) { h.num_outputs = 0; }), {}, "a.mylm");
  expect_error(error_of(no_out), ErrorCode::kDataLoss, {"a.mylm", "1 inputs and 0 outputs"});
  auto no_in = Model::load(patched([](detail::FileHeader& h) { h.num_inputs = 0; }), {}, "b.mylm");
  expect_error(error_of(no_in), ErrorCode::kDataLoss, {"b.mylm", "0 inputs and 1 outputs"});
}

TEST(ModelLimits, MylmTableErrorsNameTheFile) {
  // Errors of the I/O and step tables were returned without the file name.
  auto io = Model::load(patched([](detail::FileHeader& h) { h.io.len += 4; }), {}, "io.mylm");
  expect_error(error_of(io), ErrorCode::kDataLoss, {"io.mylm", "I/O table"});
  auto steps = Model::load(patched([](detail::FileHeader& h) { h.steps.off += 1u << 20; }), {},
                           "steps.mylm");
  expect_error(error_of(steps), ErrorCode::kDataLoss, {"steps.mylm", "step table"});
}

}  // namespace
}  // namespace myelin::model
