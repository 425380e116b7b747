// ONNX Runtime through its C API, called from C++ in this process: the fair
// ORT peer of `myelin bench inference` (the onnxruntime-node figures add
// N-API and promise costs on every call). The library is the
// libonnxruntime.so that npm's onnxruntime-node ships; it is opened with
// dlopen at run time, so the myelin binary links no peer library and the
// bench runs (without this peer) where it is not installed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "myelin/base/result.h"

namespace myelin::bench {

// One session on one model with its input bound to caller memory and its
// output preallocated: operator() is one Run, nothing else.
class OrtCapiSession {
 public:
  virtual ~OrtCapiSession() = default;
  // One Run; false on an ORT error (message in error()).
  virtual bool operator()() = 0;
  [[nodiscard]] virtual const float* output() const = 0;
  [[nodiscard]] virtual const std::string& error() const = 0;
};

// Sessions must not outlive the OrtCapi that made them.
class OrtCapi {
 public:
  // Opens the library (MYELIN_ORT_LIB, else the onnxruntime-node package under
  // `npm_root`); an error says what is missing.
  static Result<std::unique_ptr<OrtCapi>> open(const std::string& npm_root);
  virtual ~OrtCapi() = default;
  [[nodiscard]] virtual std::string version() const = 0;
  // A single-threaded session (intra- and inter-op threads 1, sequential)
  // on `model` with the f32 input `x` of `shape` and a preallocated f32
  // output of `out_shape` (the model's first output). `x` must outlive the
  // session.
  virtual Result<std::unique_ptr<OrtCapiSession>> session(
      const std::string& model, const std::vector<std::int64_t>& shape, const float* x,
      const std::vector<std::int64_t>& out_shape) = 0;
};

}  // namespace myelin::bench
