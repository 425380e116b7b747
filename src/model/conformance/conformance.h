// Runs ONNX-style test cases (a dir with model.onnx and
// test_data_set_N/{input,output}_K.pb) through myelin and compares outputs.
// Used by the ONNX backend node tests and the scikit-learn cross-checks.
#pragma once

#include <string>

namespace myelin::model::conformance {

struct CaseResult {
  bool loaded = false;
  std::string load_error;    // when !loaded
  std::string mismatch;      // empty when every output matched
  std::size_t compared = 0;  // output elements compared
};

// rtol/atol: |got - want| <= atol + rtol * |want| for floats; ints exact.
CaseResult run_case(const std::string& dir, double rtol, double atol);

}  // namespace myelin::model::conformance
