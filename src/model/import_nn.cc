// ai.onnx operators → plan steps.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <numeric>

#include "src/model/onnx_import.h"

namespace myelin::model::detail {
namespace {

Result<std::int32_t> norm_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= std::max<std::int64_t>(r, 1))
    return invalid_argument("axis " + std::to_string(axis) + " out of range for rank " +
                            std::to_string(rank));
  return static_cast<std::int32_t>(axis < 0 ? axis + r : axis);
}

Status need_io(const onnx::NodeProto& n, int min_in, int max_in) {
  if (n.input_size() < min_in || n.input_size() > max_in || n.output_size() < 1)
    return invalid_argument("expected " + std::to_string(min_in) + ".." + std::to_string(max_in) +
                            " inputs and an output, got " + std::to_string(n.input_size()) +
                            " and " + std::to_string(n.output_size()));
  for (int i = 0; i < min_in; ++i) {
    if (n.input(i).empty()) return invalid_argument("input " + std::to_string(i) + " is empty");
  }
  return {};
}

// Dense from a constant weight matrix W laid out [n][k].
Status dense(Importer& im, std::uint32_t x, std::string out, std::vector<float> w, std::uint32_t k,
             std::uint32_t n, std::vector<float> bias) {
  const VShape xs = im.shapes[x];
  if (xs.dtype != DType::kF32) return invalid_argument("input is not float");
  if (xs.dims.size() < (xs.batched ? 2u : 1u) || xs.dims.back() != k)
    return invalid_argument("input shape " + xs.str() + " does not end in " + std::to_string(k));
  if (xs.dims.size() == 2) fold_batchnorm_into_dense(im, out, w, k, n, bias);
  std::vector<std::int64_t> dims = xs.dims;
  dims.back() = n;
  const std::uint32_t y = im.define(out, DType::kF32, xs.batched, dims);
  DenseParams p{k, n, im.b.add_array<float>(w), bias.empty() ? Ref{} : im.b.add_array<float>(bias)};
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kDense, in, outs, p);
  return {};
}

Status gemm(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 2, 3));
  const bool ta = im.attr_i("transA", 0) != 0, tb = im.attr_i("transB", 0) != 0;
  const float alpha = im.attr_f("alpha", 1.0f), beta = im.attr_f("beta", 1.0f);
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t a, im.operand(n.input(0)));
  const ConstTensor* bc = im.constant(n.input(1));
  const ConstTensor* cc =
      n.input_size() > 2 && !n.input(2).empty() ? im.constant(n.input(2)) : nullptr;
  const bool has_c = n.input_size() > 2 && !n.input(2).empty();
  // Fast path: constant B, and C (if any) a constant row.
  if (!ta && bc && bc->dtype == DType::kF32 && bc->dims.size() == 2 &&
      im.shapes[a].dims.size() == 2 && (!has_c || (cc && cc->dtype == DType::kF32))) {
    const auto k = static_cast<std::uint32_t>(bc->dims[tb ? 1 : 0]);
    const auto nn = static_cast<std::uint32_t>(bc->dims[tb ? 0 : 1]);
    const bool row_c =
        !cc || cc->count() == 1 || (cc->count() == nn && (cc->dims.size() < 2 || cc->dims[0] == 1));
    if (row_c) {
      std::vector<float> w(std::size_t{nn} * k);
      for (std::uint32_t j = 0; j < nn; ++j) {
        for (std::uint32_t p = 0; p < k; ++p) {
          w[std::size_t{j} * k + p] =
              alpha * (tb ? bc->f[std::size_t{j} * k + p] : bc->f[std::size_t{p} * nn + j]);
        }
      }
      std::vector<float> bias;
      if (cc) {
        bias.resize(nn);
        for (std::uint32_t j = 0; j < nn; ++j) bias[j] = beta * cc->f[cc->count() == 1 ? 0 : j];
      }
      return dense(im, a, n.output(0), std::move(w), k, nn, std::move(bias));
    }
  }
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t b, im.operand(n.input(1)));
  const VShape as = im.shapes[a], bs = im.shapes[b];
  if (as.dims.size() != 2 || bs.dims.size() != 2)
    return invalid_argument("Gemm needs rank-2 A and B, got " + as.str() + " and " + bs.str());
  std::vector<std::int64_t> dims = {as.dims[ta ? 1 : 0], bs.dims[tb ? 0 : 1]};
  std::vector<std::uint32_t> in = {a, b};
  if (has_c) {
    MYELIN_ASSIGN_OR_RETURN(const std::uint32_t c, im.operand(n.input(2)));
    in.push_back(c);
  }
  const std::uint32_t y = im.define(n.output(0), DType::kF32, as.batched, dims);
  MatMulParams p{static_cast<std::uint8_t>(ta),
                 static_cast<std::uint8_t>(tb),
                 static_cast<std::uint8_t>(has_c),
                 0,
                 alpha,
                 beta};
  const std::uint32_t outs[] = {y};
  im.step(OpKind::kMatMul, in, outs, p);
  return {};
}

Status matmul(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 2, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t a, im.operand(n.input(0)));
  const ConstTensor* bc = im.constant(n.input(1));
  if (bc && bc->dtype == DType::kF32 && bc->dims.size() == 2 && im.shapes[a].dims.size() >= 2) {
    const auto k = static_cast<std::uint32_t>(bc->dims[0]),
               nn = static_cast<std::uint32_t>(bc->dims[1]);
    std::vector<float> w(std::size_t{nn} * k);
    for (std::uint32_t j = 0; j < nn; ++j) {
      for (std::uint32_t p = 0; p < k; ++p)
        w[std::size_t{j} * k + p] = bc->f[std::size_t{p} * nn + j];
    }
    return dense(im, a, n.output(0), std::move(w), k, nn, {});
  }
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t b, im.operand(n.input(1)));
  const VShape as = im.shapes[a], bs = im.shapes[b];
  if (as.dims.size() < 2 || bs.dims.size() < 2)
    return unimplemented("MatMul with a 1-D operand (" + as.str() + " x " + bs.str() + ")");
  if (bs.batched && (!as.batched || as.dims.size() != bs.dims.size() || as.dims.size() < 3))
    return unimplemented("MatMul of " + as.str() + " x " + bs.str() +
                         ": a batched right-hand side needs a batched left-hand side of the same "
                         "rank >= 3");
  std::vector<std::int64_t> dims = as.dims;
  dims.back() = bs.dims.back();
  const std::uint32_t y = im.define(n.output(0), DType::kF32, as.batched, dims);
  const std::uint32_t in[] = {a, b}, outs[] = {y};
  im.step(OpKind::kMatMul, in, outs, MatMulParams{0, 0, 0, 0, 1.0f, 0.0f});
  return {};
}

Status binary(Importer& im, const onnx::NodeProto& n, BinaryOp op) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 2, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t a, im.operand(n.input(0)));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t b, im.operand(n.input(1)));
  const VShape as = im.shapes[a], bs = im.shapes[b];
  if (as.dtype != DType::kF32 || bs.dtype != DType::kF32)
    return unimplemented("arithmetic on int64 tensors");
  const std::size_t r = std::max(as.dims.size(), bs.dims.size());
  std::vector<std::int64_t> dims(r);
  for (std::size_t p = 0; p < r; ++p) {
    const std::size_t oa = r - as.dims.size(), ob = r - bs.dims.size();
    const std::int64_t da = p < oa ? 1 : as.dims[p - oa], db = p < ob ? 1 : bs.dims[p - ob];
    dims[p] = (da == -1 || db == -1) ? -1 : da == 1 ? db : da;
  }
  const std::uint32_t y = im.define(n.output(0), DType::kF32, as.batched || bs.batched, dims);
  const std::uint32_t in[] = {a, b}, outs[] = {y};
  im.step(OpKind::kBinary, in, outs, BinaryParams{static_cast<std::uint32_t>(op)});
  return {};
}

Status unary(Importer& im, const onnx::NodeProto& n, UnaryOp op, float alpha,
             std::vector<std::int64_t> dims = {}, bool keep_dims = true) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const std::uint32_t y = im.define(n.output(0), xs.dtype, xs.batched, keep_dims ? xs.dims : dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kUnary, in, outs, UnaryParams{static_cast<std::uint32_t>(op), alpha});
  return {};
}

Status softmax(Importer& im, const onnx::NodeProto& n, bool log) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const bool legacy = im.node_opset < 13;
  MYELIN_ASSIGN_OR_RETURN(const std::int32_t axis,
                          norm_axis(im.attr_i("axis", legacy ? 1 : -1), xs.dims.size()));
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(
      OpKind::kSoftmax, in, outs,
      SoftmaxParams{axis, static_cast<std::uint8_t>(log), static_cast<std::uint8_t>(legacy), {}});
  return {};
}

Status argmax(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  MYELIN_ASSIGN_OR_RETURN(const std::int32_t axis, norm_axis(im.attr_i("axis", 0), xs.dims.size()));
  const bool keep = im.attr_i("keepdims", 1) != 0;
  std::vector<std::int64_t> dims;
  for (std::size_t d = 0; d < xs.dims.size(); ++d) {
    if (static_cast<std::int32_t>(d) != axis)
      dims.push_back(xs.dims[d]);
    else if (keep)
      dims.push_back(1);
  }
  const std::uint32_t y = im.define(n.output(0), DType::kI64, xs.batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kArgMax, in, outs,
          ArgMaxParams{axis,
                       static_cast<std::uint8_t>(keep),
                       static_cast<std::uint8_t>(im.attr_i("select_last_index", 0) != 0),
                       {}});
  return {};
}

Status flatten(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const auto r = static_cast<std::int64_t>(xs.dims.size());
  std::int64_t axis = im.attr_i("axis", 1);
  if (axis < -r || axis > r)
    return invalid_argument("axis " + std::to_string(axis) + " out of range");
  if (axis < 0) axis += r;
  std::int64_t lead = 1, rest = 1;
  for (std::int64_t d = 0; d < r; ++d) {
    const std::int64_t v = (d == 0 && xs.batched) ? 1 : xs.dims[static_cast<std::size_t>(d)];
    (d < axis ? lead : rest) *= v;
  }
  if (xs.batched && (axis == 0 || lead != 1))
    return unimplemented("Flatten at axis " + std::to_string(axis) + " of " + xs.str() +
                         " would mix the batch dimension with others");
  return unary(im, n, UnaryOp::kCopy, 0, {xs.batched ? -1 : lead, rest}, false);
}

Status reshape(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 2, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const ConstTensor* sc = im.constant(n.input(1));
  if (!sc || sc->dtype != DType::kI64)
    return unimplemented(
        "Reshape's shape must be a constant int64 tensor (initializer or Constant)");
  const VShape xs = im.shapes[x];
  const bool allowzero = im.attr_i("allowzero", 0) != 0;
  std::vector<std::int64_t> dims = sc->i;
  if (dims.size() > kMaxRank) return unimplemented("Reshape to rank > 8");
  // A shape computed from the input's own (batch) size, as
  // x.view(x.size(0), -1) exports it: the batch may only stay dimension 0.
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (!sc->is_batch(d)) continue;
    if (d != 0 || !xs.batched)
      return unimplemented("Reshape's shape puts the batch size at dimension " + std::to_string(d) +
                           " of " + xs.str() +
                           "; it depends on the batch size in a way myelin cannot compile");
    dims[d] = -1;
  }
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (sc->is_batch(d) || dims[d] != 0 || allowzero) continue;
    if (d >= xs.dims.size()) return invalid_argument("shape copies a dimension the input lacks");
    dims[d] = xs.dims[d];
  }
  // A batched input keeps its batch as dimension 0: the shape must start
  // with 0 (copy) or -1, and the rest must describe one sample.
  if (xs.batched && (dims.empty() || dims[0] != -1))
    return unimplemented("Reshape of " + xs.str() + " must keep the batch dimension first");
  int infer = -1;
  std::uint64_t known = 1;
  for (std::size_t d = xs.batched ? 1 : 0; d < dims.size(); ++d) {
    if (dims[d] == -1) {
      if (infer >= 0) return invalid_argument("more than one -1 in the shape");
      infer = static_cast<int>(d);
    } else if (dims[d] < 0) {
      return invalid_argument("negative dimension in the shape");
    } else {
      known *= static_cast<std::uint64_t>(dims[d]);
    }
  }
  const std::uint64_t sample = xs.sample_elems();
  if (infer >= 0) {
    if (known == 0 || sample % known != 0) return invalid_argument("cannot infer -1 in the shape");
    dims[static_cast<std::size_t>(infer)] = static_cast<std::int64_t>(sample / known);
    known = sample;
  }
  if (known != sample)
    return invalid_argument("Reshape of " + xs.str() + " (" + std::to_string(sample) +
                            " elements per sample) to " + std::to_string(known) + " elements");
  const std::uint32_t y = im.define(n.output(0), xs.dtype, xs.batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kUnary, in, outs, UnaryParams{static_cast<std::uint32_t>(UnaryOp::kCopy), 0});
  return {};
}

Status cast(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_io(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const std::int64_t to = im.attr_i("to", 0);
  const bool to_float = to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE;
  const bool to_int = to == onnx::TensorProto::INT64;
  if (!to_float && !to_int)
    return unimplemented("Cast to element type " + std::to_string(to) +
                         " (supported: float, double, int64)");
  const DType want = to_float ? DType::kF32 : DType::kI64;
  const std::uint32_t y = im.define(n.output(0), want, xs.batched, xs.dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  if (xs.dtype == want) {
    im.step(OpKind::kUnary, in, outs, UnaryParams{static_cast<std::uint32_t>(UnaryOp::kCopy), 0});
  } else {
    im.step(OpKind::kCast, in, outs,
            CastParams{static_cast<std::uint32_t>(to_float ? CastTo::kF32 : CastTo::kI64), 0});
  }
  return {};
}

Status concat(Importer& im, const onnx::NodeProto& n) {
  if (n.input_size() < 1 || n.output_size() < 1) return invalid_argument("Concat needs inputs");
  std::vector<std::uint32_t> in;
  for (const auto& name : n.input()) {
    MYELIN_ASSIGN_OR_RETURN(const std::uint32_t id, im.operand(name));
    in.push_back(id);
  }
  const VShape first = im.shapes[in[0]];
  MYELIN_ASSIGN_OR_RETURN(const std::int32_t axis,
                          norm_axis(im.attr_i("axis", 0), first.dims.size()));
  std::vector<std::int64_t> dims = first.dims;
  bool batched = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const VShape& s = im.shapes[in[i]];
    batched = batched || s.batched;
    if (s.dims.size() != dims.size()) return invalid_argument("Concat inputs differ in rank");
    if (i) dims[static_cast<std::size_t>(axis)] += s.dims[static_cast<std::size_t>(axis)];
  }
  const std::uint32_t y = im.define(n.output(0), first.dtype, batched, dims);
  const std::uint32_t outs[] = {y};
  im.step(OpKind::kConcat, in, outs, ConcatParams{axis, 0});
  return {};
}

Status constant(Importer& im, const onnx::NodeProto& n) {
  if (n.output_size() != 1) return invalid_argument("Constant has one output");
  ConstTensor c;
  if (const auto* a = im.attr("value")) {
    MYELIN_ASSIGN_OR_RETURN(c, parse_tensor(a->t()));
  } else if (const auto* f = im.attr("value_float")) {
    c.f = {f->f()};
  } else if (const auto* fs = im.attr("value_floats")) {
    c.f.assign(fs->floats().begin(), fs->floats().end());
    c.dims = {static_cast<std::int64_t>(c.f.size())};
  } else if (const auto* i = im.attr("value_int")) {
    c.dtype = DType::kI64;
    c.i = {i->i()};
  } else if (const auto* is = im.attr("value_ints")) {
    c.dtype = DType::kI64;
    c.i.assign(is->ints().begin(), is->ints().end());
    c.dims = {static_cast<std::int64_t>(c.i.size())};
  } else {
    return unimplemented("Constant without a value, value_float(s) or value_int(s) attribute");
  }
  im.consts[n.output(0)] = std::move(c);
  return {};
}

}  // namespace

Status compile_standard(Importer& im, const onnx::NodeProto& n, bool& known) {
  known = true;
  bool folded = false;
  MYELIN_RETURN_IF_ERROR(fold_node(im, n, folded));
  if (folded) return {};
  const std::string& op = n.op_type();
  if (op == "Gemm") return gemm(im, n);
  if (op == "MatMul") return matmul(im, n);
  if (op == "Add") return binary(im, n, BinaryOp::kAdd);
  if (op == "Sub") return binary(im, n, BinaryOp::kSub);
  if (op == "Mul") return binary(im, n, BinaryOp::kMul);
  if (op == "Div") return binary(im, n, BinaryOp::kDiv);
  if (op == "Relu") return unary(im, n, UnaryOp::kRelu, 0);
  if (op == "LeakyRelu") return unary(im, n, UnaryOp::kLeakyRelu, im.attr_f("alpha", 0.01f));
  if (op == "Sigmoid") return unary(im, n, UnaryOp::kSigmoid, 0);
  if (op == "Tanh") return unary(im, n, UnaryOp::kTanh, 0);
  if (op == "Identity") return unary(im, n, UnaryOp::kCopy, 0);
  if (op == "Dropout") return unary(im, n, UnaryOp::kCopy, 0);  // inference: identity
  if (op == "Softmax") return softmax(im, n, false);
  if (op == "LogSoftmax") return softmax(im, n, true);
  if (op == "ArgMax") return argmax(im, n);
  if (op == "Flatten") return flatten(im, n);
  if (op == "Reshape") return reshape(im, n);
  if (op == "Cast") return cast(im, n);
  if (op == "Concat") return concat(im, n);
  if (op == "Constant") return constant(im, n);
  return compile_more(im, n, known);
}

}  // namespace myelin::model::detail
