// The packed GEMM of every kernel family this CPU runs, against a naive
// double-precision reference, over shapes that are not multiples of any
// block (rows vs the 6- and 8-row micro-kernels, n vs the 16-column panels,
// k vs the 256-deep cache blocks), with and without bias and ReLU. Guard
// values after Y catch a store past the last row or column. Then the
// Dense+ReLU fusion through Model: fused where it may be, not where the
// ReLU's input is also read elsewhere.
#include "src/model/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "myelin/model/model.h"
#include "src/model/kernels.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model::detail {
namespace {

namespace mt = ::myelin::model::testing;

std::vector<float> randoms(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

struct Case {
  std::size_t rows, n, k;
  bool bias, relu;
};

std::string describe(const Case& c, Isa isa) {
  return std::string(to_string(isa)) + " rows=" + std::to_string(c.rows) +
         " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) + (c.bias ? " bias" : "") +
         (c.relu ? " relu" : "");
}

// Returns the number of mismatching elements (and reports the first few).
int check(const Kernels& kern, Isa isa, const Case& c, std::mt19937& rng) {
  const std::vector<float> x = randoms(c.rows * c.k, rng);
  const std::vector<float> w = randoms(c.n * c.k, rng);
  const std::vector<float> b = randoms(c.n, rng);
  auto packed = pack_weights(w.data(), c.k, c.n, c.bias ? b.data() : nullptr);
  if (!packed) {
    ADD_FAILURE() << "pack_weights failed";
    return 1;
  }
  constexpr std::size_t kGuard = 40;
  const float sentinel = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y(c.rows * c.n + kGuard, sentinel);
  kern.gemm(x.data(), c.rows, *packed, c.relu, y.data());
  int bad = 0;
  for (std::size_t r = 0; r < c.rows; ++r) {
    for (std::size_t j = 0; j < c.n; ++j) {
      double ref = c.bias ? b[j] : 0.0, mag = std::fabs(ref);
      for (std::size_t p = 0; p < c.k; ++p) {
        const double t = double{x[r * c.k + p]} * w[j * c.k + p];
        ref += t;
        mag += std::fabs(t);
      }
      if (c.relu && ref < 0) ref = 0;
      const float got = y[r * c.n + j];
      if (!(std::fabs(got - ref) <= 1e-5 * mag + 1e-6) || (c.relu && got < 0)) {
        if (++bad <= 3)
          ADD_FAILURE() << describe(c, isa) << ": y[" << r << "][" << j << "] = " << got
                        << ", expected " << ref;
      }
    }
  }
  for (std::size_t g = c.rows * c.n; g < y.size(); ++g) {
    if (!std::isnan(y[g])) {
      ADD_FAILURE() << describe(c, isa) << ": wrote past Y at element " << g;
      return bad + 1;
    }
  }
  return bad;
}

std::vector<std::pair<Isa, const Kernels*>> families() {
  std::vector<std::pair<Isa, const Kernels*>> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (const Kernels* k = kernels_for(isa, nullptr)) out.push_back({isa, k});
  }
  return out;
}

TEST(Gemm, MatchesTheReferenceOnOddShapes) {
  const std::size_t rows_list[] = {1, 2, 3, 5, 6, 7, 8, 9, 12, 13, 17, 64, 70};
  const std::size_t n_list[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40};
  const std::size_t k_list[] = {1, 3, 17, 255, 256, 257, 600};
  for (const auto& [isa, kern] : families()) {
    std::mt19937 rng(42);
    int bad = 0, cases = 0;
    for (std::size_t rows : rows_list) {
      for (std::size_t n : n_list) {
        for (std::size_t k : k_list) {
          // Every combination of bias and ReLU, rotated over the shapes.
          const int combo = cases++ % 4;
          bad += check(*kern, isa, {rows, n, k, (combo & 1) != 0, (combo & 2) != 0}, rng);
        }
      }
    }
    EXPECT_EQ(bad, 0) << to_string(isa) << ": " << cases << " shapes";
  }
}

TEST(Gemm, EveryBiasAndReluCombinationOnTheMlpShape) {
  for (const auto& [isa, kern] : families()) {
    std::mt19937 rng(7);
    for (int combo = 0; combo < 4; ++combo)
      EXPECT_EQ(check(*kern, isa, {64, 128, 784, (combo & 1) != 0, (combo & 2) != 0}, rng), 0);
  }
}

TEST(Gemm, RandomShapesUpTo70Rows40Columns600Deep) {
  for (const auto& [isa, kern] : families()) {
    std::mt19937 rng(2026);
    std::uniform_int_distribution<std::size_t> rows(1, 70), n(1, 40), k(1, 600);
    int bad = 0;
    for (int i = 0; i < 60; ++i)
      bad += check(*kern, isa, {rows(rng), n(rng), k(rng), i % 2 == 0, i % 3 == 0}, rng);
    EXPECT_EQ(bad, 0) << to_string(isa);
  }
}

TEST(Gemm, ReluMapsNegativesAndNanToZeroLikeTheReluStep) {
  // One output, bias -5: every pre-activation is negative.
  const std::vector<float> x(4 * 3, 1.0f), w = {1.0f, 1.0f, 1.0f}, b = {-5.0f};
  auto packed = pack_weights(w.data(), 3, 1, b.data());
  ASSERT_TRUE(packed);
  for (const auto& [isa, kern] : families()) {
    std::vector<float> y(4, 1.0f);
    kern->gemm(x.data(), 4, *packed, true, y.data());
    for (float v : y) EXPECT_EQ(v, 0.0f) << to_string(isa);
    std::vector<float> xn = x;
    xn[0] = std::numeric_limits<float>::quiet_NaN();
    kern->gemm(xn.data(), 4, *packed, true, y.data());
    EXPECT_EQ(y[0], 0.0f) << to_string(isa);  // the Relu step maps NaN to 0 too
  }
}

// The MLP of test_models.cc (Gemm, Relu, Gemm, Relu, Gemm, no softmax),
// recomputed from the same random weights in double.
std::vector<double> mlp_reference(const std::vector<std::size_t>& layers, std::uint64_t seed,
                                  const std::vector<float>& x, std::size_t rows) {
  std::vector<double> cur(x.begin(), x.end());
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    const std::size_t k = layers[l], n = layers[l + 1];
    const float scale = 1.0f / static_cast<float>(k);
    const auto w = mt::random_floats(n * k, seed + l, -scale * 3, scale * 3);
    const auto b = mt::random_floats(n, seed + 100 + l, -0.1f, 0.1f);
    std::vector<double> next(rows * n);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t j = 0; j < n; ++j) {
        double v = b[j];
        for (std::size_t p = 0; p < k; ++p) v += cur[r * k + p] * w[j * k + p];
        next[r * n + j] = l + 2 < layers.size() && v < 0 ? 0.0 : v;
      }
    }
    cur = std::move(next);
  }
  return cur;
}

TEST(DenseReluFusion, TheFusedMlpDropsItsReluStepsAndMatchesTheReference) {
  const std::vector<std::size_t> layers = {37, 33, 17, 5};
  const std::string onnx = mt::mlp(layers, 4, /*softmax=*/false);
  for (const auto& [isa, kern] : families()) {
    auto m = Model::load(mt::as_bytes(onnx), LoadOptions{isa});
    ASSERT_TRUE(m) << m.error().to_string();
    // Gemm, Relu, Gemm, Relu, Gemm, Identity -> dense, dense, dense, unary.
    std::vector<std::string> ops;
    for (const StepInfo& st : m->steps()) ops.push_back(st.op);
    EXPECT_EQ(ops, (std::vector<std::string>{"dense", "dense", "dense", "unary"}));
    for (std::size_t rows : {1u, 2u, 7u, 64u}) {
      const auto x = mt::random_floats(rows * 37, 50 + rows);
      auto y = m->predict(
          std::vector<TensorView>{mt::view_of(x, {static_cast<std::int64_t>(rows), 37})});
      ASSERT_TRUE(y) << y.error().to_string();
      const auto ref = mlp_reference(layers, 4, x, rows);
      const auto got = (*y)[0].as<float>();
      ASSERT_EQ(got.size(), ref.size());
      for (std::size_t i = 0; i < ref.size(); ++i)
        EXPECT_NEAR(got[i], ref[i], 1e-5 * (1 + std::fabs(ref[i])))
            << to_string(isa) << " rows=" << rows << " i=" << i;
    }
  }
}

TEST(DenseReluFusion, AReluInputThatIsAlsoAGraphOutputIsNotFused) {
  // Gemm -> h (a graph output) -> Relu -> Y: h must keep its negatives.
  const std::vector<float> w = {1.0f, -1.0f, -2.0f, 0.5f};  // [n=2][k=2]
  const std::string onnx =
      mt::GraphBuilder()
          .input("X", {-1, 2})
          .initializer("W", {2, 2}, w)
          .node("Gemm", {"X", "W"}, {"h"}, {mt::Attr::of("transB", std::int64_t{1})})
          .node("Relu", {"h"}, {"Y"})
          .output("h", {-1, 2})
          .output("Y", {-1, 2})
          .bytes();
  auto m = Model::load(mt::as_bytes(onnx));
  ASSERT_TRUE(m) << m.error().to_string();
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 1.0f};  // two rows: the GEMM path
  auto y = m->predict(std::vector<TensorView>{mt::view_of(x, {2, 2})});
  ASSERT_TRUE(y) << y.error().to_string();
  const auto h = (*y)[0].as<float>(), r = (*y)[1].as<float>();
  EXPECT_EQ(std::vector<float>(h.begin(), h.end()),
            (std::vector<float>{-1.0f, -1.0f, 2.0f, -5.5f}));
  EXPECT_EQ(std::vector<float>(r.begin(), r.end()), (std::vector<float>{0.0f, 0.0f, 2.0f, 0.0f}));
}

}  // namespace
}  // namespace myelin::model::detail
