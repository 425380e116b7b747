// ONNX → .mylm image: parses a ModelProto with Debian's libonnx (onnx-ml.pb.h)
// and compiles its graph into the flat plan of src/model/format.h.
//
// The Importer walks the nodes in file order (ONNX requires topological
// order), infers every shape itself (it does not trust value_info), folds
// constant operands into op parameters where a kernel can use them (Gemm and
// MatMul weights, biases, Reshape shapes) and refuses, with the node, op,
// domain and opset, anything it cannot run exactly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/tensor.h"
#include "src/model/builder.h"

namespace onnx {
class NodeProto;
class AttributeProto;
class TensorProto;
}  // namespace onnx

namespace myelin::model::detail {

Result<std::vector<std::byte>> import_onnx(std::span<const std::byte> bytes,
                                           std::string_view origin);

// A constant (initializer or Constant node), kept on the host while importing.
struct ConstTensor {
  DType dtype = DType::kF32;  // kF32 or kI64
  std::vector<std::int64_t> dims;
  std::vector<float> f;
  std::vector<std::int64_t> i;
  // Shape arithmetic with a dynamic batch (Shape -> Gather -> Concat -> ...):
  // per element of an int64 tensor, 1 when the element "is the batch size"
  // (its value in `i` is then -1). Empty when no element is. Such tensors
  // may only be consumed as shapes (Reshape, Expand, ConstantOfShape).
  std::vector<std::uint8_t> batch;
  [[nodiscard]] std::size_t count() const { return dtype == DType::kF32 ? f.size() : i.size(); }
  [[nodiscard]] bool depends_on_batch() const {
    return std::find(batch.begin(), batch.end(), 1) != batch.end();
  }
  [[nodiscard]] bool is_batch(std::size_t k) const { return k < batch.size() && batch[k] != 0; }
};

Result<ConstTensor> parse_tensor(const onnx::TensorProto& t);

// A runtime value's shape while importing (dims[0] is -1 when batched).
struct VShape {
  DType dtype = DType::kF32;
  bool batched = false;
  std::vector<std::int64_t> dims;
  [[nodiscard]] std::uint64_t sample_elems() const;
  [[nodiscard]] std::string str() const;
};

class Importer {
 public:
  explicit Importer(std::string origin) : origin_(std::move(origin)) {}

  std::int64_t opset = 0, ml_opset = 0;
  PlanBuilder b;

  // Symbol table.
  std::map<std::string, ConstTensor, std::less<>> consts;
  std::map<std::string, std::uint32_t, std::less<>> values;
  std::vector<VShape> shapes;  // by value id

  // Who reads each name (node inputs and graph outputs), so a compiler can
  // fuse a node into its only reader (BatchNormalization into Gemm); fused
  // readers are skipped.
  std::map<std::string, int, std::less<>> readers;
  std::map<std::string, const onnx::NodeProto*, std::less<>> last_reader;
  std::set<const onnx::NodeProto*> skip;

  // The node being compiled, for error context.
  const onnx::NodeProto* node = nullptr;
  std::int64_t node_opset = 0;

  Status fail(Status s) const;  // adds "node 'x' (Op, domain d, opset n): "
  // A runtime operand: an existing value, or a constant materialised once.
  Result<std::uint32_t> operand(const std::string& name);
  const ConstTensor* constant(const std::string& name) const;
  // Declares the value a node output names.
  std::uint32_t define(const std::string& name, DType dtype, bool batched,
                       std::vector<std::int64_t> dims);
  std::uint32_t temp(std::string_view suffix, DType dtype, bool batched,
                     std::vector<std::int64_t> dims);
  template <typename P>
  void step(OpKind op, std::span<const std::uint32_t> in, std::span<const std::uint32_t> out,
            const P& params) {
    b.add_step(op, node_name(), in, out, b.add_params(params));
  }
  std::string node_name() const;

  // Attributes.
  const onnx::AttributeProto* attr(std::string_view name) const;
  std::int64_t attr_i(std::string_view name, std::int64_t fallback) const;
  float attr_f(std::string_view name, float fallback) const;
  std::string attr_s(std::string_view name, std::string fallback) const;
  std::vector<std::int64_t> attr_ints(std::string_view name) const;
  std::vector<float> attr_floats(std::string_view name) const;  // also *_as_tensor
  std::vector<std::string> attr_strings(std::string_view name) const;

  Status compile_node(const onnx::NodeProto& n, std::string_view domain, std::int64_t op_opset);

 private:
  std::string origin_;
};

// Per-domain compilers (import_nn.cc, import_ml.cc). Return unimplemented()
// with an empty message for an op they do not know.
Status compile_standard(Importer& im, const onnx::NodeProto& n, bool& known);
Status compile_ml(Importer& im, const onnx::NodeProto& n, bool& known);
// Constant folding (import_fold.cc): Shape of a runtime value, and any
// foldable op whose inputs are all constants, evaluated on the host.
Status fold_node(Importer& im, const onnx::NodeProto& n, bool& folded);
// The ops torch exports beyond the dense path (import_ops.cc).
Status compile_more(Importer& im, const onnx::NodeProto& n, bool& known);
// Folds a BatchNormalization that is the only reader of the dense output
// `out` into w [n][k] and bias; renames `out` to its output and skips it.
void fold_batchnorm_into_dense(Importer& im, std::string& out, std::vector<float>& w,
                               std::uint32_t k, std::uint32_t n, std::vector<float>& bias);
// The error for a batch-dependent shape tensor used as data.
Status batch_as_data(std::string_view name);

Status compile_tree(Importer& im, const onnx::NodeProto& n, bool classifier);

Result<PostTransform> parse_post_transform(const std::string& s);

}  // namespace myelin::model::detail
