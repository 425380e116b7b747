// Plan: a validated .mylm image bound for execution.
//
// bind_plan() checks every table, reference and index of the image against
// the file's bounds and the value shapes (so a corrupt or hostile file is
// refused, never executed), then decodes each step into an RtStep: a kernel
// function pointer plus the sizes and pointers that kernel needs, pointing
// into the image. Nothing is copied but the weights of Dense layers with
// more than one output, which are also packed into the GEMM's panel layout
// (gemm.h; n*k floats more per layer); the image must outlive the Plan,
// which owns it (heap buffer or mmap).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/model/model.h"
#include "src/model/format.h"
#include "src/model/kernels.h"

namespace myelin::model::detail {

struct ValueInfo {
  std::string_view name;
  DType dtype = DType::kF32;
  DType declared = DType::kF32;
  ValueKind kind = ValueKind::kIntermediate;
  bool batched = false;
  std::size_t rank = 0;
  std::array<std::int64_t, kMaxRank> dims{};  // dims[0] == -1 when batched
  std::uint64_t sample_elems = 1;             // product of the non-batch dims
  const void* data = nullptr;                 // constants
  std::int32_t producer = -1;                 // step index, -1 for inputs and constants

  [[nodiscard]] std::size_t elems(std::size_t batch) const noexcept {
    return static_cast<std::size_t>(sample_elems) * (batched ? batch : 1);
  }
};

struct ExecCtx {
  std::size_t batch = 1;
  void* const* ptr = nullptr;  // per value
  const Kernels* k = nullptr;
};

struct RtStep;
using RunFn = void (*)(const RtStep&, const ExecCtx&);

// Sizes and pointers a kernel needs; which fields mean what is up to the op.
struct RtStep {
  RunFn run = nullptr;
  OpKind op{};
  std::string_view name;
  std::span<const std::uint32_t> in, out;
  std::size_t param_bytes = 0;
  // rows = outer * (outer_batched ? batch : 1)
  std::uint64_t outer = 1;
  bool outer_batched = false;
  std::uint64_t mid = 1, inner = 1;
  std::uint32_t code = 0, code2 = 0;
  float alpha = 0, beta = 0;
  // Broadcasting (kBinary, kMatMul's C): rank, output dims (dims[0] of a
  // batched output is replaced by the batch at run time) and element strides.
  std::uint32_t rank = 0;
  std::array<std::int64_t, kMaxRank> dims{}, sa{}, sb{};
  const float* f0 = nullptr;
  const float* f1 = nullptr;
  const std::int64_t* labels = nullptr;
  const void* aux = nullptr;              // op-specific params struct in the image
  std::string_view kernel;                // how the step runs, when an op has several ways
  std::vector<std::uint64_t> sizes;       // kConcat: per-input chunk elements
  std::shared_ptr<const void> keepalive;  // op-owned decoded data (aux points into it)
};

struct Plan {
  // The image and what keeps it alive (heap buffer or mapping).
  std::span<const std::byte> image;
  std::shared_ptr<const void> owner;
  std::string source;  // "onnx", "mylm (mmap)", "mylm (memory)"
  std::string origin;  // file name for messages
  Isa isa = Isa::kScalar;
  const Kernels* kernels = nullptr;

  std::vector<ValueInfo> values;
  std::vector<std::uint32_t> input_ids, output_ids;
  std::vector<RtStep> steps;
  std::vector<TensorInfo> input_info, output_info;
  // Outputs that no step writes (a graph input or constant routed straight
  // out): copied after the steps run.
  std::vector<std::uint32_t> copied_outputs;
  std::uint64_t max_request_bytes = 0;  // LoadOptions; 0: no limit
};

// The bytes Model::make_workspace(batch) reserves: every input and
// intermediate at `batch`, each rounded up to kAlign (saturating).
std::uint64_t workspace_bytes(const Plan& plan, std::size_t batch) noexcept;

// Validates `image` and builds the plan. `origin` prefixes every error.
Result<std::unique_ptr<Plan>> bind_plan(std::span<const std::byte> image,
                                        std::shared_ptr<const void> owner, std::string source,
                                        std::string origin, const LoadOptions& options);

// Per-op binders (ops_*.cc): check the params against the value shapes and
// fill the RtStep. `img` is the whole image for resolving Refs.
struct BindCtx {
  std::span<const std::byte> img;
  const std::vector<ValueInfo>& values;
  const StepRec& rec;
  const std::byte* params = nullptr;  // rec.params resolved, length checked by the caller
  const Kernels* kernels = nullptr;   // the plan's table (never null once bound)
};
Status bind_dense(const BindCtx& c, RtStep& s);
Status bind_matmul(const BindCtx& c, RtStep& s);
Status bind_binary(const BindCtx& c, RtStep& s);
Status bind_unary(const BindCtx& c, RtStep& s);
Status bind_cast(const BindCtx& c, RtStep& s);
Status bind_softmax(const BindCtx& c, RtStep& s);
Status bind_argmax(const BindCtx& c, RtStep& s);
Status bind_concat(const BindCtx& c, RtStep& s);
Status bind_scaler(const BindCtx& c, RtStep& s);
Status bind_normalizer(const BindCtx& c, RtStep& s);
Status bind_tree(const BindCtx& c, RtStep& s);
Status bind_classifier_post(const BindCtx& c, RtStep& s);
Status bind_post_transform(const BindCtx& c, RtStep& s);
// ops_math.cc
Status bind_activation(const BindCtx& c, RtStep& s);
Status bind_transpose(const BindCtx& c, RtStep& s);
Status bind_reduce(const BindCtx& c, RtStep& s);
Status bind_layer_norm(const BindCtx& c, RtStep& s);
Status bind_gather(const BindCtx& c, RtStep& s);
Status bind_expand(const BindCtx& c, RtStep& s);

// After binding: a Dense step whose only reader is the next step, a ReLU,
// writes the ReLU's output itself (the ReLU fused into its store) and the
// ReLU step is dropped. Graph outputs are never fused away.
void fuse_dense_relu(Plan& plan);

// Helpers for binders.
// Resolves `ref` as an array of `count` T, aligned for T; error names `what`.
Result<const std::byte*> resolve(std::span<const std::byte> img, const Ref& ref,
                                 std::size_t elem_size, std::size_t count, std::string_view what);
Status expect_dtype(const ValueInfo& v, DType dtype, std::string_view role);
std::string dims_string(const ValueInfo& v);
// Splits v's dims at `axis` into outer (before; batch at run time when v is
// batched) and the product from `axis` on (axis_len * inner).
void split_at(const ValueInfo& v, std::size_t axis, std::uint64_t& outer_static,
              std::uint64_t& axis_len, std::uint64_t& inner);

}  // namespace myelin::model::detail
