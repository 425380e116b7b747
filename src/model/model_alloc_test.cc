// Zero heap allocations per predict, proved by counting every operator new
// in this test binary while predict() runs on warm workspaces.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>

#include "myelin/model/model.h"
#include "src/base/testing/counting_new.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::as_bytes;

#define MYELIN_SKIP_UNDER_SANITIZERS() \
  if (!myelin::testing::kCountingNew) GTEST_SKIP() << "operator new is the sanitizer's here"

long allocations_per_predict(const std::string& onnx, std::size_t features, std::size_t batch) {
  auto m = Model::load(as_bytes(onnx));
  EXPECT_TRUE(m) << m.error().to_string();
  auto ws = m->make_workspace(batch);
  std::vector<float> x = testing::random_floats(features * batch, 1);
  std::vector<Tensor> outs(m->outputs().size());
  std::vector<MutableTensorView> views;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    outs[i].dtype = m->outputs()[i].dtype;
    outs[i].shape = m->output_shape(i, batch).value();
    outs[i].bytes.resize(static_cast<std::size_t>(*outs[i].shape.element_count()) *
                         dtype_size(outs[i].dtype));
    views.push_back({outs[i].dtype, outs[i].shape, outs[i].bytes});
  }
  const TensorView in =
      testing::view_of(x, {static_cast<std::int64_t>(batch), static_cast<std::int64_t>(features)});
  EXPECT_TRUE(m->predict({&in, 1}, views, *ws).ok());  // warm
  const long before = static_cast<long>(myelin::testing::allocation_count());
  for (int i = 0; i < 100; ++i) {
    if (!m->predict({&in, 1}, views, *ws).ok()) ADD_FAILURE();
  }
  return static_cast<long>(myelin::testing::allocation_count()) - before;
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
  const long before = static_cast<long>(myelin::testing::allocation_count());
  void* volatile p = ::operator new(64);  // volatile: the call may not be elided
  ::operator delete(p);
  EXPECT_EQ(static_cast<long>(myelin::testing::allocation_count()) - before, 1);
}

// Fails each allocation of `load` in turn (1st, 2nd, ...) until one call
// runs without reaching the failure: every failed run must come back as an
// error naming `origin`, never as an exception. Returns the runs made.
template <typename Load>
int fail_each_allocation(const std::string& origin, Load load) {
  int runs = 0;
  for (std::uint64_t n = 1; n < 1'000'000; ++n, ++runs) {
    Result<Model> m = invalid_argument("not run");
    myelin::testing::fail_nth_allocation(n);
    try {
      m = load();
    } catch (const std::exception& e) {
      myelin::testing::fail_nth_allocation(0);
      ADD_FAILURE() << "allocation " << n << " of loading " << origin << " threw: " << e.what();
      return runs;
    }
    const bool failed = myelin::testing::injected_failure_happened();
    myelin::testing::fail_nth_allocation(0);  // disarm: a run that finished early left it armed
    if (!failed) {
      EXPECT_TRUE(m) << m.error().to_string();  // nothing failed: it must have loaded
      return runs + 1;
    }
    // Some failures are absorbed (a cache that is only an optimisation);
    // the ones that are not must say so as an error.
    if (!m) {
      EXPECT_EQ(m.error().code(), ErrorCode::kResourceExhausted)
          << "allocation " << n << ": " << m.error().to_string();
      EXPECT_NE(m.error().message().find(origin), std::string::npos)
          << "allocation " << n << ": " << m.error().to_string();
    }
  }
  myelin::testing::fail_nth_allocation(0);
  ADD_FAILURE() << "loading " << origin << " never finished";
  return runs;
}

TEST(ModelAlloc, EveryAllocationFailureWhileLoadingBecomesAnError) {
  MYELIN_SKIP_UNDER_SANITIZERS();
  const std::string onnx = testing::mlp({16, 8, 4}, 1);
  EXPECT_GT(fail_each_allocation("mlp-bytes",
                                 [&] { return Model::load(as_bytes(onnx), {}, "mlp-bytes"); }),
            10);

  const std::string dir = ::testing::TempDir();
  const std::string onnx_path = dir + "myelin_alloc_mlp.onnx";
  const std::string mylm_path = dir + "myelin_alloc_mlp.mylm";
  {
    std::ofstream(onnx_path, std::ios::binary) << onnx;
    auto compiled = Model::compile_onnx(as_bytes(onnx));
    ASSERT_TRUE(compiled) << compiled.error().to_string();
    std::ofstream(mylm_path, std::ios::binary)
        .write(reinterpret_cast<const char*>(compiled->data()),
               static_cast<std::streamsize>(compiled->size()));
  }
  EXPECT_GT(fail_each_allocation(onnx_path, [&] { return Model::load(onnx_path); }), 10);
  EXPECT_GT(fail_each_allocation(mylm_path, [&] { return Model::load(mylm_path); }), 2);
  std::remove(onnx_path.c_str());
  std::remove(mylm_path.c_str());
}

}  // namespace
}  // namespace myelin::model
