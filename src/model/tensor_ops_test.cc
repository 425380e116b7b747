// The ops added for torch-exported networks (issue 21 §1), each checked
// against a direct reading of the ONNX spec, and the batch-shape folding
// rule: a shape computed from the batch may only be consumed as a shape.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "myelin/model/model.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::as_bytes;
using testing::Attr;
using testing::GraphBuilder;
using testing::view_of;

// Loads `g` and runs it on x of shape dims; fails the test on any error.
std::vector<float> run(const GraphBuilder& g, const std::vector<float>& x,
                       std::vector<std::int64_t> dims, std::vector<std::int64_t>* out_dims = {}) {
  auto m = Model::load(as_bytes(g.bytes()));
  EXPECT_TRUE(m) << m.error().to_string();
  if (!m) return {};
  auto shape = Shape::from(dims);
  EXPECT_TRUE(shape);
  auto out = m->predict(std::vector<TensorView>{view_of(x, *shape)});
  EXPECT_TRUE(out) << out.error().to_string();
  if (!out) return {};
  const auto v = (*out)[0].as<float>();
  if (out_dims) out_dims->assign((*out)[0].shape.dims().begin(), (*out)[0].shape.dims().end());
  return {v.begin(), v.end()};
}

std::string load_error(const GraphBuilder& g) {
  auto m = Model::load(as_bytes(g.bytes()));
  return m ? std::string() : m.error().to_string();
}

// x.view(x.size(0), -1) as torch exports it at opset 13.
GraphBuilder view_flatten(std::int64_t c, std::int64_t l) {
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, c, l})
      .output("y")
      .initializer_i64("zero", {}, {0})
      .initializer_i64("axes", {1}, {0})
      .initializer_i64("minus1", {1}, {-1})
      .node("Shape", {"x"}, {"shape"})
      .node("Gather", {"shape", "zero"}, {"n"}, {Attr::of("axis", std::int64_t{0})})
      .node("Unsqueeze", {"n", "axes"}, {"n1"})
      .node("Concat", {"n1", "minus1"}, {"target"}, {Attr::of("axis", std::int64_t{0})})
      .node("Reshape", {"x", "target"}, {"y"});
  return g;
}

TEST(TensorOps, ViewWithADynamicBatchFoldsTheShapeSubgraphForAnyBatch) {
  const GraphBuilder g = view_flatten(2, 3);
  for (std::int64_t n : {1, 4}) {
    const auto x = testing::random_floats(static_cast<std::size_t>(n) * 6, 3);
    std::vector<std::int64_t> dims;
    EXPECT_EQ(run(g, x, {n, 2, 3}, &dims), x);
    EXPECT_EQ(dims, (std::vector<std::int64_t>{n, 6}));
  }
}

TEST(TensorOps, UsingTheBatchSizeAsDataIsRefused) {
  // x * float(x.size(0)): one batch's size would be baked into the plan.
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, 3})
      .output("y")
      .initializer_i64("zero", {}, {0})
      .node("Shape", {"x"}, {"shape"})
      .node("Gather", {"shape", "zero"}, {"n"}, {Attr::of("axis", std::int64_t{0})})
      .node("Cast", {"n"}, {"nf"}, {Attr::of("to", std::int64_t{1})})
      .node("Mul", {"x", "nf"}, {"y"});
  EXPECT_NE(load_error(g).find("depends on the batch size"), std::string::npos) << load_error(g);
  // Arithmetic on it, even as a shape.
  GraphBuilder h;
  h.opset(13)
      .input("x", {-1, 4})
      .output("y")
      .initializer_i64("two", {1}, {2})
      .node("Shape", {"x"}, {"shape"})
      .node("Mul", {"shape", "two"}, {"s2"})
      .node("Reshape", {"x", "s2"}, {"y"});
  EXPECT_NE(load_error(h).find("depends on the batch size"), std::string::npos) << load_error(h);
}

// Gemm -> BatchNormalization, with the Gemm output also a graph output
// (two readers: BatchNorm runs as an op) or not (folded into the weights).
GraphBuilder gemm_bn(bool second_reader) {
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, 3})
      .output("y")
      .initializer("w", {2, 3}, {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f})
      .initializer("b", {2}, {0.1f, -0.2f})
      .initializer("scale", {2}, {1.5f, 0.5f})
      .initializer("bias", {2}, {0.3f, -0.4f})
      .initializer("mean", {2}, {0.2f, -1.0f})
      .initializer("var", {2}, {2.0f, 0.5f})
      .node("Gemm", {"x", "w", "b"}, {"h"}, {Attr::of("transB", std::int64_t{1})})
      .node("BatchNormalization", {"h", "scale", "bias", "mean", "var"}, {"y"},
            {Attr::of("epsilon", 1e-3f)});
  if (second_reader) g.output("h");
  return g;
}

TEST(TensorOps, BatchNormFoldedOrNotMatchesTheSpec) {
  const std::vector<float> x = {1.0f, 2.0f, -1.0f, 0.5f, -0.5f, 3.0f};
  const float w[2][3] = {{0.5f, -1.0f, 2.0f}, {1.5f, 0.25f, -0.75f}};
  const float b[2] = {0.1f, -0.2f}, sc[2] = {1.5f, 0.5f}, bi[2] = {0.3f, -0.4f},
              mu[2] = {0.2f, -1.0f}, var[2] = {2.0f, 0.5f};
  for (bool second : {false, true}) {
    // Folded: one dense step; with a second reader: dense, then x * s + t.
    auto m = Model::load(as_bytes(gemm_bn(second).bytes()));
    ASSERT_TRUE(m) << m.error().to_string();
    std::vector<std::string> ops;
    for (const auto& st : m->steps()) ops.push_back(st.op);
    const std::vector<std::string> want_ops =
        second ? std::vector<std::string>{"dense", "binary", "binary"}
               : std::vector<std::string>{"dense"};
    EXPECT_EQ(ops, want_ops);
    const auto y = run(gemm_bn(second), x, {2, 3});
    ASSERT_EQ(y.size(), 4u);
    for (int r = 0; r < 2; ++r) {
      for (int j = 0; j < 2; ++j) {
        double h = b[j];
        for (int k = 0; k < 3; ++k) h += double{w[j][k]} * x[static_cast<std::size_t>(r * 3 + k)];
        const double want = (h - mu[j]) / std::sqrt(var[j] + 1e-3) * sc[j] + bi[j];
        EXPECT_NEAR(y[static_cast<std::size_t>(r * 2 + j)], want, 1e-5) << second;
      }
    }
  }
}

GraphBuilder unary(const std::string& op, std::vector<Attr> attrs = {}, std::int64_t opset = 13) {
  GraphBuilder g;
  g.opset(opset).input("x", {-1, 5}).output("y").node(op, {"x"}, {"y"}, std::move(attrs));
  return g;
}

TEST(TensorOps, ElementwiseMathsMatchesTheFormulas) {
  const std::vector<float> x = {-100.0f, -1.5f, 0.0f, 0.75f, 100.0f};
  struct Case {
    GraphBuilder g;
    float (*f)(float);
  };
  const std::vector<Case> cases = {
      {unary("Erf"), [](float v) { return std::erf(v); }},
      {unary("Elu", {Attr::of("alpha", 0.5f)}),
       [](float v) { return v > 0 ? v : 0.5f * std::expm1(v); }},
      {unary("Softplus"), [](float v) { return v > 50 ? v : std::log1p(std::exp(v)); }},
      {unary("Clip", {Attr::of("min", -1.0f), Attr::of("max", 0.5f)}, 6),
       [](float v) { return std::min(std::max(v, -1.0f), 0.5f); }},
      {unary("HardSigmoid", {Attr::of("alpha", 0.25f), Attr::of("beta", 0.4f)}),
       [](float v) { return std::max(0.0f, std::min(1.0f, 0.25f * v + 0.4f)); }},
      {unary("Softsign"), [](float v) { return v / (1 + std::fabs(v)); }},
      {unary("HardSwish", {}, 14),
       [](float v) { return v * std::max(0.0f, std::min(1.0f, v / 6 + 0.5f)); }},
      {unary("Neg"), [](float v) { return -v; }},
      {unary("Abs"), [](float v) { return std::fabs(v); }},
  };
  for (const auto& c : cases) {
    const auto y = run(c.g, x, {1, 5});
    ASSERT_EQ(y.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(y[i], c.f(x[i])) << i;
  }
}

TEST(TensorOps, ClipTakesItsBoundsAsInputsFromOpset11) {
  GraphBuilder g;
  g.opset(11)
      .input("x", {-1, 4})
      .output("y")
      .initializer("lo", {}, {0.0f})
      .node("Clip", {"x", "lo", ""}, {"y"});  // ReLU-like: no max
  EXPECT_EQ(run(g, {-2.0f, -0.0f, 3.0f, 1e30f}, {1, 4}),
            (std::vector<float>{0.0f, 0.0f, 3.0f, 1e30f}));
  GraphBuilder h;  // a bound that is not a constant is refused
  h.opset(11).input("x", {-1, 4}).input("hi", {1}).output("y").node("Clip", {"x", "", "hi"}, {"y"});
  EXPECT_NE(load_error(h).find("constant scalar"), std::string::npos) << load_error(h);
}

TEST(TensorOps, ReduceOverAMiddleAxisAndNotOverTheBatch) {
  const auto x = testing::random_floats(2 * 3 * 4, 9);
  for (const char* op : {"ReduceMean", "ReduceL2", "ReduceMax", "ReduceSumSquare"}) {
    GraphBuilder g;
    g.opset(13)
        .input("x", {-1, 3, 4})
        .output("y")
        .node(op, {"x"}, {"y"},
              {Attr::of("axes", std::vector<std::int64_t>{1}),
               Attr::of("keepdims", std::int64_t{0})});
    std::vector<std::int64_t> dims;
    const auto y = run(g, x, {2, 3, 4}, &dims);
    ASSERT_EQ(y.size(), 8u) << op;
    EXPECT_EQ(dims, (std::vector<std::int64_t>{2, 4}));
    for (std::size_t n = 0; n < 2; ++n) {
      for (std::size_t i = 0; i < 4; ++i) {
        double sum = 0, sq = 0, mx = -INFINITY;
        for (std::size_t j = 0; j < 3; ++j) {
          const double v = x[(n * 3 + j) * 4 + i];
          sum += v;
          sq += v * v;
          mx = std::max(mx, v);
        }
        const std::string o = op;
        const double want = o == "ReduceMean"  ? sum / 3
                            : o == "ReduceL2"  ? std::sqrt(sq)
                            : o == "ReduceMax" ? mx
                                               : sq;
        EXPECT_NEAR(y[n * 4 + i], want, 1e-6) << op;
      }
    }
  }
  GraphBuilder b;
  b.opset(13)
      .input("x", {-1, 3})
      .output("y")
      .node("ReduceMean", {"x"}, {"y"}, {Attr::of("axes", std::vector<std::int64_t>{0})});
  EXPECT_NE(load_error(b).find("batch dimension"), std::string::npos) << load_error(b);
}

TEST(TensorOps, TransposeKeepsTheBatchFirst) {
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, 2, 3})
      .output("y")
      .node("Transpose", {"x"}, {"y"}, {Attr::of("perm", std::vector<std::int64_t>{0, 2, 1})});
  const std::vector<float> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  EXPECT_EQ(run(g, x, {2, 2, 3}), (std::vector<float>{0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}));
  GraphBuilder h;
  h.opset(13).input("x", {-1, 2}).output("y").node("Transpose", {"x"}, {"y"});
  EXPECT_NE(load_error(h).find("batch dimension"), std::string::npos) << load_error(h);
}

TEST(TensorOps, GatherOnConstantIndicesWithNegativeIndex) {
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, 4})
      .output("y")
      .initializer_i64("idx", {3}, {3, -4, 1})
      .node("Gather", {"x", "idx"}, {"y"}, {Attr::of("axis", std::int64_t{1})});
  EXPECT_EQ(run(g, {0, 1, 2, 3, 4, 5, 6, 7}, {2, 4}), (std::vector<float>{3, 0, 1, 7, 4, 5}));
  GraphBuilder h;  // along the batch: refused
  h.opset(13)
      .input("x", {-1, 4})
      .output("y")
      .initializer_i64("idx", {1}, {0})
      .node("Gather", {"x", "idx"}, {"y"});
  EXPECT_NE(load_error(h).find("batch dimension"), std::string::npos) << load_error(h);
}

TEST(TensorOps, MatMulOfTwoPerSampleOperands) {
  // y = x @ transpose(x): both operands come from the batch.
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, 2, 3})
      .output("y")
      .node("Transpose", {"x"}, {"xt"}, {Attr::of("perm", std::vector<std::int64_t>{0, 2, 1})})
      .node("MatMul", {"x", "xt"}, {"y"});
  const auto x = testing::random_floats(3 * 6, 4);
  const auto y = run(g, x, {3, 2, 3});
  ASSERT_EQ(y.size(), 12u);
  for (std::size_t n = 0; n < 3; ++n) {
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t j = 0; j < 2; ++j) {
        double acc = 0;
        for (std::size_t k = 0; k < 3; ++k)
          acc += double{x[n * 6 + i * 3 + k]} * x[n * 6 + j * 3 + k];
        EXPECT_NEAR(y[n * 4 + i * 2 + j], acc, 1e-5);
      }
    }
  }
}

TEST(TensorOps, LayerNormalizationOverTheLastAxis) {
  GraphBuilder g;
  g.opset(17)
      .input("x", {-1, 4})
      .output("y")
      .initializer("s", {4}, {1.0f, 2.0f, 0.5f, -1.0f})
      .initializer("b", {4}, {0.0f, 0.1f, 0.2f, 0.3f})
      .node("LayerNormalization", {"x", "s", "b"}, {"y"}, {Attr::of("epsilon", 1e-5f)});
  const std::vector<float> x = {1, 2, 3, 4, -1, 0.5f, 0.25f, 8};
  const auto y = run(g, x, {2, 4});
  const float s[4] = {1.0f, 2.0f, 0.5f, -1.0f}, b[4] = {0.0f, 0.1f, 0.2f, 0.3f};
  ASSERT_EQ(y.size(), 8u);
  for (std::size_t r = 0; r < 2; ++r) {
    double mean = 0, var = 0;
    for (std::size_t j = 0; j < 4; ++j) mean += x[r * 4 + j] / 4.0;
    for (std::size_t j = 0; j < 4; ++j) var += (x[r * 4 + j] - mean) * (x[r * 4 + j] - mean) / 4;
    for (std::size_t j = 0; j < 4; ++j)
      EXPECT_NEAR(y[r * 4 + j], (x[r * 4 + j] - mean) / std::sqrt(var + 1e-5) * s[j] + b[j], 1e-5);
  }
}

TEST(TensorOps, ConstantOfShapeAndExpandOfTheBatchShape) {
  // y = x + ConstantOfShape(Shape(x), 2) * Expand(row, Shape(x))
  GraphBuilder g;
  g.opset(13)
      .input("x", {-1, 3})
      .output("y")
      .initializer("row", {1, 3}, {1.0f, -1.0f, 0.5f})
      .node("Shape", {"x"}, {"shape"})
      .node("ConstantOfShape", {"shape"}, {"twos"})
      .node("Expand", {"row", "shape"}, {"rows"})
      .node("Add", {"x", "twos"}, {"x0"})
      .node("Mul", {"x0", "rows"}, {"y"});
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  // ConstantOfShape's default value is 0.
  EXPECT_EQ(run(g, x, {2, 3}), (std::vector<float>{1, -2, 1.5f, 4, -5, 3}));
}

TEST(TensorOps, HugeFoldedOrExpandedShapesAreRefusedBeforeAllocating) {
  // 2^32 x 2^32 wraps a 64-bit element count to 0; it must not pass a limit.
  GraphBuilder c;
  c.opset(13)
      .input("x", {-1, 1})
      .output("y")
      .initializer_i64("shape", {2}, {std::int64_t{1} << 32, std::int64_t{1} << 32})
      .node("ConstantOfShape", {"shape"}, {"big"})
      .node("Add", {"x", "big"}, {"y"});
  EXPECT_NE(load_error(c).find("2^24"), std::string::npos) << load_error(c);
  GraphBuilder e;  // Expand of the batch to 2^40 elements per sample
  e.opset(13)
      .input("x", {-1, 1})
      .output("y")
      .initializer_i64("tail", {1}, {std::int64_t{1} << 40})
      .initializer_i64("zero", {1}, {0})
      .node("Shape", {"x"}, {"s"})
      .node("Gather", {"s", "zero"}, {"n"})
      .node("Concat", {"n", "tail"}, {"target"}, {Attr::of("axis", std::int64_t{0})})
      .node("Expand", {"x", "target"}, {"y"});
  EXPECT_NE(load_error(e).find("2^28"), std::string::npos) << load_error(e);
}

}  // namespace
}  // namespace myelin::model
