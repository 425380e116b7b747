// ONNX's own backend node tests (generated at build time by Debian's
// python3-onnx, see gen_node_tests.py) for every standard op myelin
// supports. A case either runs and matches ONNX's reference outputs, or is
// on the list below of cases myelin refuses on purpose, with the reason —
// and then it must be refused with an error, not run wrongly.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "src/model/conformance/conformance.h"

namespace myelin::model {
namespace {

namespace fs = std::filesystem;

// Case -> why myelin refuses it.
const std::map<std::string, std::string>& refused() {
  static const std::map<std::string, std::string> m = {
      {"test_add_uint8", "uint8 tensors (myelin computes in float32)"},
      {"test_sub_uint8", "uint8 tensors"},
      {"test_mul_uint8", "uint8 tensors"},
      {"test_div_uint8", "uint8 tensors"},
      {"test_cast_BFLOAT16_to_FLOAT", "bfloat16 tensors"},
      {"test_cast_FLOAT_to_BFLOAT16", "bfloat16 tensors"},
      {"test_cast_DOUBLE_to_FLOAT16", "float16 tensors"},
      {"test_cast_FLOAT16_to_DOUBLE", "float16 tensors"},
      {"test_cast_FLOAT16_to_FLOAT", "float16 tensors"},
      {"test_cast_FLOAT_to_FLOAT16", "float16 tensors"},
      {"test_cast_FLOAT_to_STRING", "string tensors"},
      {"test_cast_STRING_to_FLOAT", "string tensors"},
      {"test_identity_opt", "optional types"},
      {"test_identity_sequence", "sequence types"},
  };
  return m;
}

TEST(OnnxNodeConformance, EverySupportedOpMatchesOnnxReferenceOutputs) {
  const fs::path root = MYELIN_ONNX_NODE_TESTS;
  ASSERT_TRUE(fs::is_directory(root)) << root << " missing: the build generates it";
  std::size_t passed = 0, refused_ok = 0;
  std::set<std::string> ops_passed;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;  // the build's .stamp
    const std::string name = entry.path().filename().string();
    const auto r = conformance::run_case(entry.path().string(), 1e-4, 1e-6);
    const auto it = refused().find(name);
    if (it != refused().end()) {
      EXPECT_FALSE(r.loaded && r.mismatch.empty())
          << name << " now passes: drop it from the refused list";
      EXPECT_FALSE(r.loaded && !r.mismatch.empty())
          << name << " loads but computes wrongly: " << r.mismatch;
      ++refused_ok;
      continue;
    }
    EXPECT_TRUE(r.loaded) << name << ": " << r.load_error;
    EXPECT_TRUE(r.mismatch.empty()) << name << ": " << r.mismatch;
    if (r.loaded && r.mismatch.empty()) {
      ++passed;
      std::string op = name.substr(5);
      ops_passed.insert(op.substr(0, op.find('_')));
    }
  }
  // Every supported standard op has at least one passing ONNX case.
  for (const char* op :
       {"gemm", "matmul", "add", "sub", "mul", "div", "relu", "leakyrelu", "sigmoid", "tanh",
        "softmax", "logsoftmax", "argmax", "flatten", "reshape", "identity", "cast", "concat"}) {
    EXPECT_TRUE(ops_passed.count(op)) << "no passing ONNX node test for " << op;
  }
  std::printf("ONNX node tests: %zu passed, %zu refused as documented\n", passed, refused_ok);
  EXPECT_GT(passed, 90u);
}

}  // namespace
}  // namespace myelin::model
