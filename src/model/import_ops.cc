// ai.onnx operators torch.onnx.export emits around its dense layers:
// Transpose, BatchNormalization (folded into the preceding Gemm/MatMul when
// it is that layer's only reader), Erf/Elu/Softplus/Clip/Pow/Sqrt and other
// elementwise maths, Reduce*, LayerNormalization, Unsqueeze/Squeeze, Gather
// on constant indices, Expand and ConstantOfShape of a batch-dependent shape.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <limits>

#include "src/model/onnx_import.h"

namespace myelin::model::detail {
namespace {

Result<std::int64_t> norm_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= std::max<std::int64_t>(r, 1))
    return invalid_argument("axis " + std::to_string(axis) + " out of range for rank " +
                            std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

Status need_in(const onnx::NodeProto& n, int min_in, int max_in) {
  if (n.input_size() < min_in || n.input_size() > max_in || n.output_size() < 1)
    return invalid_argument("expected " + std::to_string(min_in) + ".." + std::to_string(max_in) +
                            " inputs and an output, got " + std::to_string(n.input_size()) +
                            " and " + std::to_string(n.output_size()));
  for (int i = 0; i < min_in; ++i) {
    if (n.input(i).empty()) return invalid_argument("input " + std::to_string(i) + " is empty");
  }
  for (int o = 1; o < n.output_size(); ++o) {
    if (!n.output(o).empty())
      return unimplemented("optional output " + std::to_string(o) + " ('" + n.output(o) +
                           "') is not supported");
  }
  return {};
}

Result<std::uint32_t> float_operand(Importer& im, const std::string& name) {
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(name));
  if (im.shapes[x].dtype != DType::kF32) return unimplemented("'" + name + "' is not float");
  return x;
}

Status act(Importer& im, const onnx::NodeProto& n, ActOp op, float a = 0, float b = 0) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, float_operand(im, n.input(0)));
  const VShape xs = im.shapes[x];
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kActivation, in, outs, ActParams{static_cast<std::uint32_t>(op), a, b, 0});
  return {};
}

// A constant scalar operand (Clip's min/max, Pow's exponent).
Result<float> scalar(Importer& im, const onnx::NodeProto& n, int k, float fallback) {
  if (n.input_size() <= k || n.input(k).empty()) return fallback;
  const ConstTensor* c = im.constant(n.input(k));
  if (!c || c->count() != 1)
    return unimplemented("input " + std::to_string(k) + " ('" + n.input(k) +
                         "') must be a constant scalar");
  if (c->depends_on_batch()) return batch_as_data(n.input(k));
  return c->dtype == DType::kF32 ? c->f[0] : static_cast<float>(c->i[0]);
}

Status clip(Importer& im, const onnx::NodeProto& n) {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (im.node_opset < 11) {
    lo = im.attr_f("min", lo);
    hi = im.attr_f("max", hi);
    MYELIN_RETURN_IF_ERROR(need_in(n, 1, 1));
  } else {
    MYELIN_RETURN_IF_ERROR(need_in(n, 1, 3));
    MYELIN_ASSIGN_OR_RETURN(lo, scalar(im, n, 1, lo));
    MYELIN_ASSIGN_OR_RETURN(hi, scalar(im, n, 2, hi));
  }
  onnx::NodeProto one = n;
  while (one.input_size() > 1) one.mutable_input()->RemoveLast();
  return act(im, one, ActOp::kClip, lo, hi);
}

// Pow: a constant scalar exponent is an elementwise step (x*x for 2, as
// LayerNorm exports at opset <= 16); any other float exponent broadcasts.
Status pow_op(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 2, 2));
  const ConstTensor* e = im.constant(n.input(1));
  if (e && e->depends_on_batch()) return batch_as_data(n.input(1));
  if (e && e->count() == 1) {
    MYELIN_ASSIGN_OR_RETURN(const float a, scalar(im, n, 1, 1.0f));
    onnx::NodeProto one = n;
    one.mutable_input()->RemoveLast();
    return act(im, one, ActOp::kPow, a);
  }
  std::string ename = n.input(1);
  if (e && e->dtype == DType::kI64) {  // an integer exponent tensor, as float
    ConstTensor f{DType::kF32, e->dims, {}, {}, {}};
    for (std::int64_t v : e->i) f.f.push_back(static_cast<float>(v));
    ename = im.node_name() + "/exponent";
    im.consts[ename] = std::move(f);
  }
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, float_operand(im, n.input(0)));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t y, float_operand(im, ename));
  const VShape xs = im.shapes[x], ys = im.shapes[y];
  const std::size_t r = std::max(xs.dims.size(), ys.dims.size());
  std::vector<std::int64_t> dims(r);
  for (std::size_t p = 0; p < r; ++p) {
    const std::size_t ox = r - xs.dims.size(), oy = r - ys.dims.size();
    const std::int64_t dx = p < ox ? 1 : xs.dims[p - ox], dy = p < oy ? 1 : ys.dims[p - oy];
    dims[p] = (dx == -1 || dy == -1) ? -1 : dx == 1 ? dy : dx;
  }
  const std::uint32_t z = im.define(n.output(0), DType::kF32, xs.batched || ys.batched, dims);
  const std::uint32_t in[] = {x, y}, outs[] = {z};
  im.step(OpKind::kBinary, in, outs, BinaryParams{static_cast<std::uint32_t>(BinaryOp::kPow)});
  return {};
}

// PRelu: the slope broadcasts to x (unidirectionally), as a binary step.
Status prelu(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 2, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, float_operand(im, n.input(0)));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t slope, float_operand(im, n.input(1)));
  const VShape xs = im.shapes[x], ss = im.shapes[slope];
  if (ss.batched || ss.dims.size() > xs.dims.size())
    return unimplemented("PRelu slope " + ss.str() + " does not broadcast to " + xs.str());
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
  const std::uint32_t in[] = {x, slope}, outs[] = {y};
  im.step(OpKind::kBinary, in, outs, BinaryParams{static_cast<std::uint32_t>(BinaryOp::kPRelu)});
  return {};
}

Status transpose(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 1, 1));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const std::size_t r = xs.dims.size();
  std::vector<std::int64_t> perm = im.attr_ints("perm");
  if (perm.empty()) {
    for (std::size_t d = r; d-- > 0;) perm.push_back(static_cast<std::int64_t>(d));
  }
  if (perm.size() != r) return invalid_argument("perm has the wrong length");
  TransposeParams p{static_cast<std::uint32_t>(r), {}, 0};
  std::vector<std::int64_t> dims(r);
  for (std::size_t d = 0; d < r; ++d) {
    MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(perm[d], r));
    p.perm[d] = static_cast<std::uint32_t>(ax);
    dims[d] = xs.dims[static_cast<std::size_t>(ax)];
  }
  if (xs.batched && p.perm[0] != 0)
    return unimplemented("Transpose with perm[0] = " + std::to_string(p.perm[0]) +
                         " would move the batch dimension of " + xs.str());
  const std::uint32_t y = im.define(n.output(0), xs.dtype, xs.batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kTranspose, in, outs, p);
  return {};
}

// BatchNormalization in inference mode as y = x * s + t per channel (axis 1),
// s = scale / sqrt(var + eps), t = B - mean * s: torch's own CPU formula.
struct BnTerms {
  std::vector<float> s, t;
};
Result<BnTerms> bn_terms(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 5, 5));
  if (im.attr_i("training_mode", 0) != 0)
    return unimplemented("BatchNormalization in training mode");
  const ConstTensor* c[4];
  for (int k = 0; k < 4; ++k) {
    c[k] = im.constant(n.input(k + 1));
    if (!c[k] || c[k]->dtype != DType::kF32)
      return unimplemented("BatchNormalization's scale, B, mean and var must be float constants");
    if (c[k]->count() != c[0]->count())
      return invalid_argument("BatchNormalization's scale, B, mean and var differ in length");
  }
  const double eps = im.attr_f("epsilon", 1e-5f);
  BnTerms r;
  for (std::size_t j = 0; j < c[0]->count(); ++j) {
    const float s = static_cast<float>(c[0]->f[j] / std::sqrt(double{c[3]->f[j]} + eps));
    r.s.push_back(s);
    r.t.push_back(c[1]->f[j] - c[2]->f[j] * s);
  }
  return r;
}

Status batchnorm(Importer& im, const onnx::NodeProto& n) {
  MYELIN_ASSIGN_OR_RETURN(const BnTerms bt, bn_terms(im, n));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, float_operand(im, n.input(0)));
  const VShape xs = im.shapes[x];
  if (xs.dims.size() < 2 || xs.dims[1] != static_cast<std::int64_t>(bt.s.size()))
    return invalid_argument("input " + xs.str() + " does not have " + std::to_string(bt.s.size()) +
                            " channels at axis 1");
  std::vector<std::int64_t> cdims(xs.dims.size() - 1, 1);
  cdims[0] = static_cast<std::int64_t>(bt.s.size());
  const std::string base = im.node_name();
  im.consts[base + "/bn_scale"] = ConstTensor{DType::kF32, cdims, bt.s, {}, {}};
  im.consts[base + "/bn_shift"] = ConstTensor{DType::kF32, cdims, bt.t, {}, {}};
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t s, im.operand(base + "/bn_scale"));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t t, im.operand(base + "/bn_shift"));
  const std::uint32_t mid = im.temp("scaled", DType::kF32, xs.batched, xs.dims);
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
  const std::uint32_t in1[] = {x, s}, out1[] = {mid}, in2[] = {mid, t}, out2[] = {y};
  im.step(OpKind::kBinary, in1, out1, BinaryParams{static_cast<std::uint32_t>(BinaryOp::kMul)});
  im.step(OpKind::kBinary, in2, out2, BinaryParams{static_cast<std::uint32_t>(BinaryOp::kAdd)});
  return {};
}

Status reduce(Importer& im, const onnx::NodeProto& n, ReduceOp op) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 1, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, float_operand(im, n.input(0)));
  const VShape xs = im.shapes[x];
  std::vector<std::int64_t> axes = im.attr_ints("axes");
  if (n.input_size() > 1 && !n.input(1).empty()) {
    const ConstTensor* a = im.constant(n.input(1));
    if (!a || a->dtype != DType::kI64) return unimplemented("axes must be a constant int64 tensor");
    axes = a->i;
  }
  const bool keep = im.attr_i("keepdims", 1) != 0;
  if (axes.empty()) {
    if (im.attr_i("noop_with_empty_axes", 0) != 0) {  // the input, unchanged
      const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
      const std::uint32_t in[] = {x}, outs[] = {y};
      im.step(OpKind::kUnary, in, outs, UnaryParams{static_cast<std::uint32_t>(UnaryOp::kCopy), 0});
      return {};
    }
    for (std::size_t d = 0; d < xs.dims.size(); ++d) axes.push_back(static_cast<std::int64_t>(d));
  }
  std::vector<bool> red(xs.dims.size(), false);
  for (std::int64_t a : axes) {
    MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(a, xs.dims.size()));
    red[static_cast<std::size_t>(ax)] = true;
  }
  if (xs.batched && red[0])
    return unimplemented("reducing over the batch dimension of " + xs.str());
  std::size_t first = 0, count = 0;
  while (first < red.size() && !red[first]) ++first;
  while (first + count < red.size() && red[first + count]) ++count;
  for (std::size_t d = first + count; d < red.size(); ++d) {
    if (red[d]) return unimplemented("reducing over axes that are not adjacent");
  }
  if (count == 0) return invalid_argument("no axis to reduce");
  std::vector<std::int64_t> dims;
  for (std::size_t d = 0; d < xs.dims.size(); ++d) {
    if (!red[d])
      dims.push_back(xs.dims[d]);
    else if (keep)
      dims.push_back(1);
  }
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kReduce, in, outs,
          ReduceParams{static_cast<std::uint32_t>(op), static_cast<std::uint32_t>(first),
                       static_cast<std::uint32_t>(count), 0});
  return {};
}

Status layer_norm(Importer& im, const onnx::NodeProto& n) {
  onnx::NodeProto y_only = n;  // Mean and InvStdDev are checked below
  while (y_only.output_size() > 1) y_only.mutable_output()->RemoveLast();
  MYELIN_RETURN_IF_ERROR(need_in(y_only, 2, 3));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, float_operand(im, n.input(0)));
  const VShape xs = im.shapes[x];
  MYELIN_ASSIGN_OR_RETURN(const std::int64_t axis,
                          norm_axis(im.attr_i("axis", -1), xs.dims.size()));
  if (xs.batched && axis == 0)
    return unimplemented("LayerNormalization over the batch dimension of " + xs.str());
  std::size_t len = 1;
  for (std::size_t d = static_cast<std::size_t>(axis); d < xs.dims.size(); ++d)
    len *= static_cast<std::size_t>(xs.dims[d]);
  auto param = [&](int k, std::vector<float>& out) -> Status {
    if (n.input_size() <= k || n.input(k).empty()) return {};
    const ConstTensor* c = im.constant(n.input(k));
    if (!c || c->dtype != DType::kF32)
      return unimplemented("LayerNormalization's scale and B must be float constants");
    if (c->count() == len) {
      out = c->f;
    } else if (c->count() == 1) {
      out.assign(len, c->f[0]);
    } else {
      return unimplemented("LayerNormalization's scale/B of " + std::to_string(c->count()) +
                           " elements; expected " + std::to_string(len));
    }
    return {};
  };
  std::vector<float> scale, bias;
  MYELIN_RETURN_IF_ERROR(param(1, scale));
  MYELIN_RETURN_IF_ERROR(param(2, bias));
  std::vector<std::uint32_t> outs = {im.define(n.output(0), DType::kF32, xs.batched, xs.dims)};
  const bool stats = n.output_size() > 1;
  if (stats) {  // Mean and InvStdDev: both, or neither
    if (n.output_size() != 3 || n.output(1).empty() || n.output(2).empty())
      return unimplemented("LayerNormalization with only one of Mean and InvStdDev");
    std::vector<std::int64_t> sdims = xs.dims;
    for (std::size_t d = static_cast<std::size_t>(axis); d < sdims.size(); ++d) sdims[d] = 1;
    outs.push_back(im.define(n.output(1), DType::kF32, xs.batched, sdims));
    outs.push_back(im.define(n.output(2), DType::kF32, xs.batched, sdims));
  }
  const std::uint32_t in[] = {x};
  LayerNormParams p{static_cast<std::int32_t>(axis), im.attr_f("epsilon", 1e-5f),
                    im.b.add_array<float>(scale),
                    bias.empty() ? Ref{} : im.b.add_array<float>(bias)};
  im.step(OpKind::kLayerNorm, in, outs, p);
  return {};
}

Result<std::vector<std::int64_t>> axes_of(Importer& im, const onnx::NodeProto& n) {
  if (n.input_size() > 1 && !n.input(1).empty()) {
    const ConstTensor* a = im.constant(n.input(1));
    if (!a || a->dtype != DType::kI64) return unimplemented("axes must be a constant int64 tensor");
    return a->i;
  }
  return im.attr_ints("axes");
}

// Unsqueeze/Squeeze of a runtime value: a copy with new dims; the batch
// dimension stays first.
Status unsqueeze(Importer& im, const onnx::NodeProto& n, bool squeeze) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 1, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  MYELIN_ASSIGN_OR_RETURN(const std::vector<std::int64_t> axes, axes_of(im, n));
  std::vector<std::int64_t> dims;
  if (squeeze) {
    std::vector<bool> drop(xs.dims.size(), false);
    for (std::int64_t a : axes) {
      MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(a, xs.dims.size()));
      drop[static_cast<std::size_t>(ax)] = true;
    }
    for (std::size_t d = 0; d < xs.dims.size(); ++d) {
      const bool batch = d == 0 && xs.batched;
      const bool gone = axes.empty() ? (!batch && xs.dims[d] == 1) : drop[d];
      if (gone && batch) return unimplemented("Squeeze of the batch dimension of " + xs.str());
      if (gone && xs.dims[d] != 1)
        return invalid_argument("Squeeze of dimension " + std::to_string(d) + " of " + xs.str() +
                                ", which is not 1");
      if (!gone) dims.push_back(xs.dims[d]);
    }
  } else {
    const std::size_t r = xs.dims.size() + axes.size();
    std::vector<bool> ins(r, false);
    for (std::int64_t a : axes) {
      MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(a, r));
      if (ins[static_cast<std::size_t>(ax)]) return invalid_argument("repeated axis");
      ins[static_cast<std::size_t>(ax)] = true;
    }
    if (xs.batched && ins[0])
      return unimplemented("Unsqueeze before the batch dimension of " + xs.str());
    std::size_t src = 0;
    for (std::size_t d = 0; d < r; ++d) dims.push_back(ins[d] ? 1 : xs.dims[src++]);
  }
  if (dims.size() > kMaxRank) return unimplemented("rank > 8");
  const std::uint32_t y = im.define(n.output(0), xs.dtype, xs.batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kUnary, in, outs, UnaryParams{static_cast<std::uint32_t>(UnaryOp::kCopy), 0});
  return {};
}

Status gather(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 2, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const ConstTensor* idx = im.constant(n.input(1));
  if (!idx || idx->dtype != DType::kI64)
    return unimplemented("Gather needs constant int64 indices ('" + n.input(1) + "')");
  if (idx->depends_on_batch()) return batch_as_data(n.input(1));
  MYELIN_ASSIGN_OR_RETURN(const std::int64_t axis, norm_axis(im.attr_i("axis", 0), xs.dims.size()));
  if (xs.dims.empty()) return invalid_argument("Gather from a scalar");
  if (xs.batched && axis == 0)
    return unimplemented("Gather along the batch dimension of " + xs.str());
  const std::int64_t len = xs.dims[static_cast<std::size_t>(axis)];
  std::vector<std::int64_t> flat;
  for (std::int64_t j : idx->i) {
    if (j < -len || j >= len)
      return invalid_argument("Gather index " + std::to_string(j) + " out of range for " +
                              std::to_string(len));
    flat.push_back(j < 0 ? j + len : j);
  }
  std::vector<std::int64_t> dims(xs.dims.begin(), xs.dims.begin() + axis);
  dims.insert(dims.end(), idx->dims.begin(), idx->dims.end());
  dims.insert(dims.end(), xs.dims.begin() + axis + 1, xs.dims.end());
  if (dims.size() > kMaxRank) return unimplemented("rank > 8");
  const std::uint32_t y = im.define(n.output(0), xs.dtype, xs.batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kGather, in, outs,
          GatherParams{static_cast<std::int32_t>(axis), 0, im.b.add_array<std::int64_t>(flat)});
  return {};
}

// Expand(x, shape) and ConstantOfShape(shape) when the shape names the batch
// (or x is batched): a broadcast copy into the batch-shaped output.
Status expand_to(Importer& im, std::uint32_t x, const ConstTensor& shape, const std::string& out) {
  if (shape.dtype != DType::kI64) return invalid_argument("the shape is not int64");
  const VShape xs = im.shapes[x];
  const std::size_t r = std::max(xs.dims.size(), shape.i.size());
  if (r > kMaxRank) return unimplemented("rank > 8");
  std::vector<std::int64_t> dims(r);
  bool batched = xs.batched;
  for (std::size_t p = 0; p < r; ++p) {
    const std::size_t ox = r - xs.dims.size(), os = r - shape.i.size();
    const bool xb = xs.batched && p == ox, sb = p >= os && shape.is_batch(p - os);
    if ((xb || sb) && p != 0)
      return unimplemented("Expand would put the batch dimension at position " + std::to_string(p));
    if (sb) batched = true;
    const std::int64_t dx = p < ox ? 1 : xs.dims[p - ox];
    const std::int64_t ds = p < os ? 1 : shape.i[p - os];
    if (xb || sb) {
      if ((!xb && dx != 1) || (!sb && ds != 1))
        return invalid_argument("cannot expand " + xs.str() + " against the batch dimension");
      dims[p] = -1;
      continue;
    }
    if (ds < 0) return invalid_argument("negative dimension in the shape");
    if (dx != ds && dx != 1 && ds != 1)
      return invalid_argument("cannot expand " + xs.str() + " to the shape");
    dims[p] = dx == 1 ? ds : dx;
  }
  std::uint64_t per_sample = 1;
  for (std::size_t p = batched ? 1 : 0; p < r; ++p) {
    const auto d = static_cast<std::uint64_t>(dims[p]);
    if (d != 0 && per_sample > (std::uint64_t{1} << 28) / d)
      return unimplemented("Expand to more than 2^28 elements per sample");
    per_sample *= d;
  }
  const std::uint32_t y = im.define(out, xs.dtype, batched, dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kExpand, in, outs, ExpandParams{});
  return {};
}

Status expand(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 2, 2));
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const ConstTensor* shape = im.constant(n.input(1));
  if (!shape) return unimplemented("Expand's shape must be a constant (or computed by Shape)");
  return expand_to(im, x, *shape, n.output(0));
}

Status constant_of_shape(Importer& im, const onnx::NodeProto& n) {
  MYELIN_RETURN_IF_ERROR(need_in(n, 1, 1));
  const ConstTensor* shape = im.constant(n.input(0));
  if (!shape)
    return unimplemented("ConstantOfShape's shape must be a constant (or computed by Shape)");
  ConstTensor v;
  v.f = {0.0f};
  if (const auto* a = im.attr("value")) {
    MYELIN_ASSIGN_OR_RETURN(v, parse_tensor(a->t()));
  }
  if (v.count() != 1) return invalid_argument("ConstantOfShape value must have one element");
  v.dims = {1};
  const std::string name = im.node_name() + "/value";
  im.consts[name] = std::move(v);
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(name));
  return expand_to(im, x, *shape, n.output(0));
}

}  // namespace

void fold_batchnorm_into_dense(Importer& im, std::string& out, std::vector<float>& w,
                               std::uint32_t k, std::uint32_t n, std::vector<float>& bias) {
  auto r = im.readers.find(out);
  if (r == im.readers.end() || r->second != 1) return;
  const onnx::NodeProto* bn = im.last_reader[out];
  if (!bn || bn->op_type() != "BatchNormalization" || bn->input_size() != 5 ||
      bn->input(0) != out || bn->output_size() < 1 || !bn->domain().empty())
    return;
  for (int o = 1; o < bn->output_size(); ++o) {
    if (!bn->output(o).empty()) return;
  }
  const onnx::NodeProto* self = im.node;
  im.node = bn;  // attributes and messages of the BN node
  auto terms = bn_terms(im, *bn);
  im.node = self;
  if (!terms || terms->s.size() != n) return;  // compiled (and refused) on its own
  if (bias.empty()) bias.assign(n, 0.0f);
  for (std::uint32_t j = 0; j < n; ++j) {
    for (std::uint32_t p = 0; p < k; ++p) w[std::size_t{j} * k + p] *= terms->s[j];
    bias[j] = bias[j] * terms->s[j] + terms->t[j];
  }
  out = bn->output(0);
  im.skip.insert(bn);
}

Status compile_more(Importer& im, const onnx::NodeProto& n, bool& known) {
  known = true;
  const std::string& op = n.op_type();
  if (op == "Transpose") return transpose(im, n);
  if (op == "BatchNormalization") return batchnorm(im, n);
  if (op == "Erf") return act(im, n, ActOp::kErf);
  if (op == "Elu") return act(im, n, ActOp::kElu, im.attr_f("alpha", 1.0f));
  if (op == "Selu")
    return act(im, n, ActOp::kSelu, im.attr_f("alpha", 1.67326319217681884765625f),
               im.attr_f("gamma", 1.05070102214813232421875f));
  if (op == "Softplus") return act(im, n, ActOp::kSoftplus);
  if (op == "Softsign") return act(im, n, ActOp::kSoftsign);
  if (op == "HardSigmoid")
    return act(im, n, ActOp::kHardSigmoid, im.attr_f("alpha", 0.2f), im.attr_f("beta", 0.5f));
  if (op == "HardSwish") return act(im, n, ActOp::kHardSwish);
  if (op == "PRelu") return prelu(im, n);
  if (op == "Clip") return clip(im, n);
  if (op == "Sqrt") return act(im, n, ActOp::kSqrt);
  if (op == "Pow") return pow_op(im, n);
  if (op == "Exp") return act(im, n, ActOp::kExp);
  if (op == "Log") return act(im, n, ActOp::kLog);
  if (op == "Neg") return act(im, n, ActOp::kNeg);
  if (op == "Abs") return act(im, n, ActOp::kAbs);
  if (op == "Reciprocal") return act(im, n, ActOp::kReciprocal);
  if (op == "ReduceSum") return reduce(im, n, ReduceOp::kSum);
  if (op == "ReduceMean") return reduce(im, n, ReduceOp::kMean);
  if (op == "ReduceMax") return reduce(im, n, ReduceOp::kMax);
  if (op == "ReduceMin") return reduce(im, n, ReduceOp::kMin);
  if (op == "ReduceProd") return reduce(im, n, ReduceOp::kProd);
  if (op == "ReduceL1") return reduce(im, n, ReduceOp::kL1);
  if (op == "ReduceL2") return reduce(im, n, ReduceOp::kL2);
  if (op == "ReduceSumSquare") return reduce(im, n, ReduceOp::kSumSquare);
  if (op == "ReduceLogSum") return reduce(im, n, ReduceOp::kLogSum);
  if (op == "ReduceLogSumExp") return reduce(im, n, ReduceOp::kLogSumExp);
  if (op == "LayerNormalization") return layer_norm(im, n);
  if (op == "Unsqueeze") return unsqueeze(im, n, false);
  if (op == "Squeeze") return unsqueeze(im, n, true);
  if (op == "Gather") return gather(im, n);
  if (op == "Expand") return expand(im, n);
  if (op == "ConstantOfShape") return constant_of_shape(im, n);
  known = false;
  return {};
}

}  // namespace myelin::model::detail
