// Model: a loaded, compiled inference graph (ONNX or myelin's .mylm format).
//
// Model::load() turns an ONNX file into a flat plan (weights aligned for
// SIMD, trees as flat arrays, every buffer size known) — the same bytes that
// `myelin compile` writes as a .mylm file, which load() maps with mmap and
// uses in place. A Model is immutable after load: share it freely across
// threads (copies share the plan). Each thread that predicts brings its own
// Workspace, made once; predict() with a Workspace and caller-provided
// outputs performs no heap allocation.
//
// Batching: a graph input whose first dimension is symbolic ("N", or no
// value) is batched: predict() accepts any batch size up to the Workspace's
// capacity along that dimension. Inputs with fully fixed shapes run as given.
// Compute is float32; float64 input data is converted on the way in. Outputs
// are float32 (for float/double graph outputs) or int64 (labels, ArgMax).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/base/tensor.h"

namespace myelin::model {

namespace detail {
struct Plan;
}

// Which kernel family runs the dense maths. kAuto picks the widest the CPU
// supports (cpu_features()); forcing a family the CPU lacks is an error.
enum class Isa : std::uint8_t { kAuto, kScalar, kAvx2, kAvx512 };
std::string_view to_string(Isa isa) noexcept;

// The largest ONNX file myelin parses (protobuf's limit); `myelin compile`
// and Model::load refuse a bigger file before reading it.
inline constexpr std::uint64_t kMaxOnnxFileBytes = (std::uint64_t{1} << 31) - 1;

struct LoadOptions {
  Isa isa = Isa::kAuto;
  // Memory budgets, so that an untrusted model or request cannot exhaust
  // memory (0: no limit). A model whose plan (weights, plus the workspace of
  // one sample) exceeds max_model_bytes is refused at load. A request — or a
  // Workspace — whose inputs, outputs and workspace exceed max_request_bytes
  // is refused before anything is allocated (ErrorCode::kOutOfRange).
  std::uint64_t max_model_bytes = std::uint64_t{2} << 30;
  std::uint64_t max_request_bytes = std::uint64_t{1} << 30;
};

// A graph input or output as predict() sees it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;           // what predict() produces / computes in
  DType declared_dtype = DType::kF32;  // what the file declared (f64 inputs accepted too)
  bool batched = false;                // dims[0] is the batch dimension
  std::vector<std::int64_t> dims;      // -1 for the batch dimension

  // "[N, 10] f32"
  [[nodiscard]] std::string to_string() const;
};

// One step of the compiled plan, for `myelin inspect`.
struct StepInfo {
  std::string name;  // the ONNX node name (or a generated one)
  std::string op;    // the plan operation, e.g. "dense", "tree_ensemble"
  std::vector<std::string> inputs, outputs;
  std::size_t param_bytes = 0;  // the op's parameter record (weights are counted in plan_bytes)
  // How the step runs where an op has several ways, e.g. a tree ensemble's
  // "node walk" or "complete trees" (docs/model-format.md); else empty.
  std::string kernel;
};

// An owned output tensor (the allocating predict() overload).
struct Tensor {
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<std::byte> bytes;

  [[nodiscard]] TensorView view() const noexcept { return {dtype, shape, bytes}; }
  template <typename T>
  [[nodiscard]] std::span<const T> as() const noexcept {
    return view().as<T>();
  }
};

class Model;

// Scratch memory for one predicting thread: intermediate values for up to
// max_batch samples. Made by Model::make_workspace, tied to that model.
class Workspace {
 public:
  Workspace() = default;
  Workspace(Workspace&&) noexcept = default;
  Workspace& operator=(Workspace&&) noexcept = default;
  ~Workspace() = default;

  [[nodiscard]] std::size_t max_batch() const noexcept { return max_batch_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return size_; }

 private:
  friend class Model;
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  const detail::Plan* plan_ = nullptr;
  std::size_t max_batch_ = 0;
  std::size_t size_ = 0;
  std::unique_ptr<std::byte[], Free> buffer_;
  std::vector<std::size_t> offsets_;  // per value, in buffer_
  std::vector<void*> ptrs_;           // per value, filled by each predict
};

class Model {
 public:
  // Loads `path`: a .mylm file (recognised by its magic, mapped with mmap and
  // used in place) or an ONNX model (parsed and compiled). Errors name the
  // file and, for graph problems, the node, op, domain and opset.
  static Result<Model> load(const std::string& path, const LoadOptions& options = {});
  // The same from bytes in memory (copied; the caller keeps nothing alive).
  // `origin` names the bytes in error messages.
  static Result<Model> load(std::span<const std::byte> bytes, const LoadOptions& options = {},
                            std::string_view origin = "<memory>");

  // Compiles ONNX bytes straight to .mylm bytes (what `myelin compile` writes).
  static Result<std::vector<std::byte>> compile_onnx(std::span<const std::byte> onnx,
                                                     std::string_view origin = "<memory>");

  Model(const Model&) = default;
  Model& operator=(const Model&) = default;
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;
  ~Model();

  [[nodiscard]] std::span<const TensorInfo> inputs() const noexcept;
  [[nodiscard]] std::span<const TensorInfo> outputs() const noexcept;
  [[nodiscard]] std::vector<StepInfo> steps() const;
  // The compiled plan in .mylm layout (what `myelin compile` writes).
  [[nodiscard]] std::span<const std::byte> plan_bytes() const noexcept;
  // "onnx" or "mylm (mmap)".
  [[nodiscard]] std::string_view source() const noexcept;
  [[nodiscard]] Isa isa() const noexcept;

  // Allocates scratch for batches of up to `max_batch` samples (>= 1); an
  // error when its size exceeds the model's max_request_bytes.
  [[nodiscard]] Result<Workspace> make_workspace(std::size_t max_batch = 1) const;
  // The bytes make_workspace(batch) allocates (saturating, no allocation).
  [[nodiscard]] std::uint64_t workspace_bytes(std::size_t batch) const noexcept;

  // The shape predict() will produce for output `index` at batch size `batch`;
  // out_of_range when the model has no output `index`.
  [[nodiscard]] Result<Shape> output_shape(std::size_t index, std::size_t batch) const;

  // Runs the plan. `inputs` and `outputs` follow inputs()/outputs() order;
  // each output view must have the dtype and shape output_shape() gives for
  // the batch. No heap allocation. Thread-safe for distinct workspaces.
  Status predict(std::span<const TensorView> inputs, std::span<const MutableTensorView> outputs,
                 Workspace& workspace) const;

  // Convenience: checks the inputs' shapes and the request budget, then
  // allocates a workspace and the outputs.
  [[nodiscard]] Result<std::vector<Tensor>> predict(std::span<const TensorView> inputs) const;

 private:
  explicit Model(std::shared_ptr<const detail::Plan> plan) : plan_(std::move(plan)) {}
  static Result<Model> load_file(const std::string& path, const LoadOptions& options);
  static Result<Model> load_bytes(std::span<const std::byte> bytes, const LoadOptions& options,
                                  std::string_view origin);
  [[nodiscard]] Result<Workspace> make_workspace_unchecked(std::size_t max_batch) const;
  // Checks the inputs against the graph's shapes; returns the batch size.
  Result<std::size_t> check_inputs(std::span<const TensorView> inputs, std::size_t max_batch) const;
  std::shared_ptr<const detail::Plan> plan_;
};

}  // namespace myelin::model
