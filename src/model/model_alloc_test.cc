// Zero heap allocations per predict, proved by counting every operator new
// in this test binary while predict() runs on warm workspaces.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "myelin/model/model.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

// The sanitizers own operator new (and check new/delete pairing), so the
// counting replacement is compiled only in plain builds; the tests skip
// themselves under ASan/TSan (CI runs them in release).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MYELIN_COUNTING_NEW 0
#else
#define MYELIN_COUNTING_NEW 1
#endif

namespace {
std::atomic<long> g_allocs{0};
}  // namespace

#if MYELIN_COUNTING_NEW
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace myelin::model {
namespace {

using testing::as_bytes;

#define MYELIN_SKIP_UNDER_SANITIZERS() \
  if (!MYELIN_COUNTING_NEW) GTEST_SKIP() << "operator new is the sanitizer's here"

long allocations_per_predict(const std::string& onnx, std::size_t features, std::size_t batch) {
  auto m = Model::load(as_bytes(onnx));
  EXPECT_TRUE(m) << m.error().to_string();
  auto ws = m->make_workspace(batch);
  std::vector<float> x = testing::random_floats(features * batch, 1);
  std::vector<Tensor> outs(m->outputs().size());
  std::vector<MutableTensorView> views;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    outs[i].dtype = m->outputs()[i].dtype;
    outs[i].shape = m->output_shape(i, batch);
    outs[i].bytes.resize(static_cast<std::size_t>(*outs[i].shape.element_count()) *
                         dtype_size(outs[i].dtype));
    views.push_back({outs[i].dtype, outs[i].shape, outs[i].bytes});
  }
  const TensorView in =
      testing::view_of(x, {static_cast<std::int64_t>(batch), static_cast<std::int64_t>(features)});
  EXPECT_TRUE(m->predict({&in, 1}, views, *ws).ok());  // warm
  const long before = g_allocs.load();
  for (int i = 0; i < 100; ++i) {
    if (!m->predict({&in, 1}, views, *ws).ok()) ADD_FAILURE();
  }
  return g_allocs.load() - before;
}

TEST(ModelAlloc, LinearPredictAllocatesNothing) {
  MYELIN_SKIP_UNDER_SANITIZERS();
  EXPECT_EQ(allocations_per_predict(testing::linear_regressor(1000, 1), 1000, 1), 0);
  EXPECT_EQ(allocations_per_predict(testing::linear_regressor(10, 1), 10, 100), 0);
}

TEST(ModelAlloc, MlpPredictAllocatesNothing) {
  MYELIN_SKIP_UNDER_SANITIZERS();
  EXPECT_EQ(allocations_per_predict(testing::mlp({784, 128, 10}, 1), 784, 1), 0);
  EXPECT_EQ(allocations_per_predict(testing::mlp({784, 128, 10}, 1), 784, 64), 0);
}

TEST(ModelAlloc, TreePredictAllocatesNothing) {
  MYELIN_SKIP_UNDER_SANITIZERS();
  const std::string onnx = testing::tree_regressor(testing::random_trees(20, 6, 30, 1));
  EXPECT_EQ(allocations_per_predict(onnx, 30, 1), 0);
  EXPECT_EQ(allocations_per_predict(onnx, 30, 64), 0);
}

TEST(ModelAlloc, CounterSeesAllocations) {  // the harness itself works
  MYELIN_SKIP_UNDER_SANITIZERS();
  const long before = g_allocs.load();
  void* volatile p = ::operator new(64);  // volatile: the call may not be elided
  ::operator delete(p);
  EXPECT_EQ(g_allocs.load() - before, 1);
}

}  // namespace
}  // namespace myelin::model
