// Model API: load, predict (single and batch), every kernel family, errors
// that name what and where, thread sharing.
#include "myelin/model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::as_bytes;
using testing::view_of;

std::vector<Isa> available_isas() {
  std::vector<Isa> out = {Isa::kScalar};
  for (Isa i : {Isa::kAvx2, Isa::kAvx512}) {
    if (Model::load(as_bytes(testing::linear_regressor(4, 1)), LoadOptions{i})) out.push_back(i);
  }
  return out;
}

TEST(Model, LinearRegressorMatchesDotProductOnEveryIsa) {
  for (std::size_t f : {1u, 7u, 33u, 1000u}) {
    const std::string onnx = testing::linear_regressor(f, 42);
    const std::vector<float> w = testing::random_floats(f, 42);
    const std::vector<float> x = testing::random_floats(f * 3, 7);
    for (Isa isa : available_isas()) {
      auto m = Model::load(as_bytes(onnx), LoadOptions{isa});
      ASSERT_TRUE(m) << m.error().to_string();
      auto out = m->predict(std::vector<TensorView>{view_of(x, {3, static_cast<std::int64_t>(f)})});
      ASSERT_TRUE(out) << out.error().to_string();
      ASSERT_EQ((*out)[0].shape, (Shape{3, 1}));
      for (std::size_t r = 0; r < 3; ++r) {
        double ref = 0.25;
        for (std::size_t i = 0; i < f; ++i) ref += double{w[i]} * x[r * f + i];
        EXPECT_NEAR((*out)[0].as<float>()[r], ref, 1e-4 * (1 + std::fabs(ref)))
            << "f=" << f << " isa=" << to_string(isa);
      }
    }
  }
}

TEST(Model, MetadataDescribesInputsAndOutputs) {
  auto m = Model::load(as_bytes(testing::mlp({5, 4, 3}, 1)));
  ASSERT_TRUE(m) << m.error().to_string();
  ASSERT_EQ(m->inputs().size(), 1u);
  EXPECT_EQ(m->inputs()[0].name, "X");
  EXPECT_TRUE(m->inputs()[0].batched);
  EXPECT_EQ(m->inputs()[0].to_string(), "[N, 5] f32");
  EXPECT_EQ(m->outputs()[0].to_string(), "[N, 3] f32");
  ASSERT_TRUE(m->output_shape(0, 8));
  EXPECT_EQ(*m->output_shape(0, 8), (Shape{8, 3}));
  // Asking for an output the model does not have is an error, not an exception.
  auto missing = m->output_shape(1, 8);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(missing.error().message().find("output 1 does not exist (the model has 1 outputs)"),
            std::string_view::npos)
      << missing.error().to_string();
  EXPECT_FALSE(m->output_shape(SIZE_MAX, 8));
  EXPECT_EQ(m->source(), "onnx");
  ASSERT_FALSE(m->steps().empty());
  EXPECT_EQ(m->steps()[0].op, "dense");
}

TEST(Model, MlpBatchEqualsSingleAndIsasAgree) {
  const std::string onnx = testing::mlp({20, 16, 9, 4}, 3);
  const std::vector<float> x = testing::random_floats(20 * 5, 9);
  std::vector<float> first;
  for (Isa isa : available_isas()) {
    auto m = Model::load(as_bytes(onnx), LoadOptions{isa});
    ASSERT_TRUE(m);
    auto batch = m->predict(std::vector<TensorView>{view_of(x, {5, 20})});
    ASSERT_TRUE(batch) << batch.error().to_string();
    auto y = (*batch)[0].as<float>();
    for (std::size_t r = 0; r < 5; ++r) {
      float sum = 0;
      for (std::size_t j = 0; j < 4; ++j) sum += y[r * 4 + j];
      EXPECT_NEAR(sum, 1.0f, 1e-5f);  // softmax rows
      std::vector<float> row(x.begin() + static_cast<std::ptrdiff_t>(r * 20),
                             x.begin() + static_cast<std::ptrdiff_t>(r * 20 + 20));
      auto single = m->predict(std::vector<TensorView>{view_of(row, {1, 20})});
      ASSERT_TRUE(single);
      for (std::size_t j = 0; j < 4; ++j)
        EXPECT_NEAR((*single)[0].as<float>()[j], y[r * 4 + j], 1e-6f);
    }
    if (first.empty()) first.assign(y.begin(), y.end());
    for (std::size_t i = 0; i < first.size(); ++i)
      EXPECT_NEAR(y[i], first[i], 1e-5f) << to_string(isa);
  }
}

TEST(Model, AcceptsFloat64InputByConversion) {
  auto m = Model::load(as_bytes(testing::linear_regressor(3, 5)));
  ASSERT_TRUE(m);
  const std::vector<double> xd = {0.5, -1.0, 2.0};
  const std::vector<float> xf = {0.5f, -1.0f, 2.0f};
  auto a = m->predict(
      std::vector<TensorView>{TensorView::of<double>(std::span<const double>(xd), {1, 3})});
  auto b = m->predict(std::vector<TensorView>{view_of(xf, {1, 3})});
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_TRUE(b);
  EXPECT_EQ((*a)[0].as<float>()[0], (*b)[0].as<float>()[0]);
}

TEST(Model, PredictErrorsNameTheInputAndTheExpectation) {
  auto m = Model::load(as_bytes(testing::linear_regressor(4, 5)), {}, "lin.onnx");
  ASSERT_TRUE(m);
  const std::vector<float> x(5, 1.0f);
  auto bad_shape = m->predict(std::vector<TensorView>{view_of(x, {1, 5})});
  ASSERT_FALSE(bad_shape);
  EXPECT_EQ(bad_shape.error().message(), "lin.onnx: input 'X' has shape [1, 5], expected [N, 4]");
  const std::vector<std::int64_t> xi(4, 1);
  auto bad_dtype = m->predict(std::vector<TensorView>{
      TensorView::of<std::int64_t>(std::span<const std::int64_t>(xi), {1, 4})});
  ASSERT_FALSE(bad_dtype);
  EXPECT_NE(bad_dtype.error().message().find("input 'X' is i64"), std::string::npos)
      << bad_dtype.error().message();
  auto none = m->predict(std::vector<TensorView>{});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("expected 1 inputs"), std::string::npos);

  auto ws = m->make_workspace(2);
  ASSERT_TRUE(ws);
  const std::vector<float> x3(12, 1.0f);
  std::vector<float> y(3);
  const MutableTensorView out{DType::kF32, {3, 1}, std::as_writable_bytes(std::span<float>(y))};
  const TensorView in = view_of(x3, {3, 4});
  Status s = m->predict({&in, 1}, {&out, 1}, *ws);
  EXPECT_EQ(s.message(), "lin.onnx: batch 3 exceeds the workspace capacity 2");
  const MutableTensorView small{
      DType::kF32, {2, 1}, std::as_writable_bytes(std::span<float>(y).first(2))};
  const TensorView in2 = view_of(x3, {2, 6});
  EXPECT_FALSE(m->predict({&in2, 1}, {&small, 1}, *ws).ok());
  const TensorView in3{DType::kF32, {2, 4}, std::as_bytes(std::span<const float>(x3).first(8))};
  const MutableTensorView wrong{DType::kF32, {3, 1}, std::as_writable_bytes(std::span<float>(y))};
  Status s2 = m->predict({&in3, 1}, {&wrong, 1}, *ws);
  EXPECT_NE(s2.message().find("output 'Y' view is f32 [3, 1]"), std::string::npos) << s2.message();
}

TEST(Model, UnsupportedOpNamesNodeOpDomainAndOpset) {
  const std::string onnx = testing::GraphBuilder()
                               .opset(13)
                               .input("X", {-1, 4})
                               .output("Y", {-1, 4})
                               .node("Einsum", {"X"}, {"Y"}, {}, "", "gemm_3")
                               .bytes();
  auto m = Model::load(as_bytes(onnx), {}, "model.onnx");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(m.error().message(),
            "model.onnx: node 'gemm_3' uses unsupported op 'Einsum' (domain ai.onnx, opset 13)");
}

TEST(Model, MissingInitializerIsNamed) {
  const std::string onnx = testing::GraphBuilder()
                               .input("X", {-1, 4})
                               .output("Y")
                               .node("Gemm", {"X", "W"}, {"Y"}, {}, "", "fc")
                               .bytes();
  auto m = Model::load(as_bytes(onnx), {}, "m.onnx");
  ASSERT_FALSE(m);
  EXPECT_EQ(
      m.error().message(),
      "m.onnx: node 'fc' (Gemm, domain ai.onnx, opset 15): input 'W' is not a graph input, an "
      "initializer or an earlier node's output");
}

TEST(Model, ShapeMismatchInGraphIsRefused) {
  const std::string onnx = testing::GraphBuilder()
                               .input("X", {-1, 4})
                               .output("Y")
                               .initializer("W", {5, 3}, std::vector<float>(15, 1.0f))
                               .node("MatMul", {"X", "W"}, {"Y"}, {}, "", "mm")
                               .bytes();
  auto m = Model::load(as_bytes(onnx), {}, "m.onnx");
  ASSERT_FALSE(m);
  EXPECT_EQ(
      m.error().message(),
      "m.onnx: node 'mm' (MatMul, domain ai.onnx, opset 15): input shape [N, 4] does not end in 5");
}

TEST(Model, MalformedBytesAreAParseError) {
  const std::string junk = "this is not a model at all";
  auto m = Model::load(as_bytes(junk), {}, "junk.onnx");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kParseError);
  EXPECT_NE(m.error().message().find("junk.onnx"), std::string::npos);
  auto missing = Model::load(std::string("/nonexistent/model.onnx"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kIoError);
}

TEST(Model, SharedAcrossThreadsGivesTheSameAnswers) {
  auto m = Model::load(as_bytes(testing::mlp({32, 16, 4}, 11)));
  ASSERT_TRUE(m);
  const std::vector<float> x = testing::random_floats(32 * 4, 2);
  auto ref = m->predict(std::vector<TensorView>{view_of(x, {4, 32})});
  ASSERT_TRUE(ref);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, copy = *m] {
      auto ws = copy.make_workspace(4);
      std::vector<float> y(16);
      const TensorView in = view_of(x, {4, 32});
      const MutableTensorView out{DType::kF32, {4, 4}, std::as_writable_bytes(std::span<float>(y))};
      for (int i = 0; i < 200; ++i) {
        if (!copy.predict({&in, 1}, {&out, 1}, *ws).ok()) ++mismatches;
        for (std::size_t j = 0; j < 16; ++j) {
          if (y[j] != (*ref)[0].as<float>()[j]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace myelin::model
