// ONNX → .mylm image: parses a ModelProto with Debian's libonnx (onnx-ml.pb.h)
// and compiles its graph into the flat plan of src/model/format.h.
//
// The Importer walks the nodes in file order (ONNX requires topological
// order), infers every shape itself (it does not trust value_info), folds
// constant operands into op parameters where a kernel can use them (Gemm and
// MatMul weights, biases, Reshape shapes) and refuses, with the node, op,
// domain and opset, anything it cannot run exactly.
#pragma once

#include <cstdint>
#include <map>
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
  [[nodiscard]] std::size_t count() const { return dtype == DType::kF32 ? f.size() : i.size(); }
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
Status compile_tree(Importer& im, const onnx::NodeProto& n, bool classifier);

Result<PostTransform> parse_post_transform(const std::string& s);

}  // namespace myelin::model::detail
