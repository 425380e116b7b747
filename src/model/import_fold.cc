// Constant folding at import: a node whose inputs are all constants is
// evaluated on the host and its output becomes a constant, so exporters'
// shape arithmetic never reaches the plan.
//
// The one runtime-dependent case folded is the batch: Shape of a batched
// value yields an int64 constant whose element 0 is flagged "is the batch
// size" (ConstTensor::batch). Flags travel through the ops that move shape
// elements around (Gather, Slice, Unsqueeze, Squeeze, Concat, Cast to int64,
// Identity, Reshape); Reshape, Expand and ConstantOfShape may consume a
// flagged shape. Any other use — arithmetic on the batch size, or the size
// as a tensor the graph computes with — is refused ("depends on the batch
// size"), since a compiled plan has no per-batch constants.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <set>

#include "src/model/onnx_import.h"

namespace myelin::model::detail {
namespace {

constexpr std::size_t kMaxFoldElems = std::size_t{1} << 24;

Result<std::int64_t> norm_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= std::max<std::int64_t>(r, 1))
    return invalid_argument("axis " + std::to_string(axis) + " out of range for rank " +
                            std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

// Element count, saturating (so a hostile shape cannot wrap past a limit).
std::size_t elems(const std::vector<std::int64_t>& dims) {
  std::size_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0) return SIZE_MAX;
    const auto u = static_cast<std::size_t>(d);
    if (u != 0 && n > SIZE_MAX / u) return SIZE_MAX;
    n *= u;
  }
  return n;
}

// double -> int64 without the undefined behaviour of an out-of-range cast
// (NaN becomes 0, like the runtime Cast step).
std::int64_t to_i64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN;
  return static_cast<std::int64_t>(v);
}

double at(const ConstTensor& c, std::size_t k) {
  return c.dtype == DType::kF32 ? static_cast<double>(c.f[k]) : static_cast<double>(c.i[k]);
}

// A tensor of c's dtype and flags, elements picked from c by `src`.
ConstTensor pick(const ConstTensor& c, std::vector<std::int64_t> dims,
                 const std::vector<std::size_t>& src) {
  ConstTensor r;
  r.dtype = c.dtype;
  r.dims = std::move(dims);
  for (std::size_t k : src) {
    if (c.dtype == DType::kF32)
      r.f.push_back(c.f[k]);
    else
      r.i.push_back(c.i[k]);
    if (c.depends_on_batch()) r.batch.push_back(c.batch[k]);
  }
  return r;
}

// Axes from the attribute (opset < 13) or the second input (>= 13).
Result<std::vector<std::int64_t>> axes_of(Importer& im, const onnx::NodeProto& n) {
  if (n.input_size() > 1 && !n.input(1).empty()) {
    const ConstTensor* a = im.constant(n.input(1));
    if (!a || a->dtype != DType::kI64) return unimplemented("axes must be a constant int64 tensor");
    return a->i;
  }
  return im.attr_ints("axes");
}

Result<ConstTensor> fold_unsqueeze(Importer& im, const onnx::NodeProto& n, const ConstTensor& x) {
  MYELIN_ASSIGN_OR_RETURN(const std::vector<std::int64_t> axes, axes_of(im, n));
  const std::size_t r = x.dims.size() + axes.size();
  std::vector<bool> ins(r, false);
  for (std::int64_t a : axes) {
    MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(a, r));
    if (ins[static_cast<std::size_t>(ax)]) return invalid_argument("repeated axis");
    ins[static_cast<std::size_t>(ax)] = true;
  }
  ConstTensor y = x;
  y.dims.clear();
  std::size_t src = 0;
  for (std::size_t d = 0; d < r; ++d) y.dims.push_back(ins[d] ? 1 : x.dims[src++]);
  return y;
}

Result<ConstTensor> fold_squeeze(Importer& im, const onnx::NodeProto& n, const ConstTensor& x) {
  MYELIN_ASSIGN_OR_RETURN(const std::vector<std::int64_t> axes, axes_of(im, n));
  std::vector<bool> drop(x.dims.size(), false);
  for (std::int64_t a : axes) {
    MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(a, x.dims.size()));
    if (x.dims[static_cast<std::size_t>(ax)] != 1)
      return invalid_argument("Squeeze of a dimension that is not 1");
    drop[static_cast<std::size_t>(ax)] = true;
  }
  ConstTensor y = x;
  y.dims.clear();
  for (std::size_t d = 0; d < x.dims.size(); ++d) {
    if (axes.empty() ? x.dims[d] != 1 : !drop[d]) y.dims.push_back(x.dims[d]);
  }
  return y;
}

Result<ConstTensor> fold_gather(Importer& im, const ConstTensor& x, const ConstTensor& idx) {
  if (idx.dtype != DType::kI64 || idx.depends_on_batch())
    return unimplemented("Gather indices must be constant int64");
  if (x.dims.empty()) return invalid_argument("Gather from a scalar");
  MYELIN_ASSIGN_OR_RETURN(const std::int64_t axis, norm_axis(im.attr_i("axis", 0), x.dims.size()));
  const auto ax = static_cast<std::size_t>(axis);
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < ax; ++d) outer *= static_cast<std::size_t>(x.dims[d]);
  for (std::size_t d = ax + 1; d < x.dims.size(); ++d) inner *= static_cast<std::size_t>(x.dims[d]);
  const std::int64_t len = x.dims[ax];
  std::vector<std::int64_t> dims(x.dims.begin(), x.dims.begin() + axis);
  dims.insert(dims.end(), idx.dims.begin(), idx.dims.end());
  dims.insert(dims.end(), x.dims.begin() + axis + 1, x.dims.end());
  if (outer * inner != 0 && idx.i.size() > kMaxFoldElems / (outer * inner))
    return unimplemented("folding a Gather larger than 2^24 elements");
  std::vector<std::size_t> src;
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::int64_t j : idx.i) {
      if (j < -len || j >= len) return invalid_argument("Gather index out of range");
      const auto jj = static_cast<std::size_t>(j < 0 ? j + len : j);
      for (std::size_t i = 0; i < inner; ++i)
        src.push_back((o * static_cast<std::size_t>(len) + jj) * inner + i);
    }
  }
  return pick(x, std::move(dims), src);
}

Result<ConstTensor> fold_slice(Importer& im, const onnx::NodeProto& n, const ConstTensor& x) {
  std::vector<std::int64_t> starts, ends, axes, steps;
  if (im.node_opset < 10) {
    starts = im.attr_ints("starts");
    ends = im.attr_ints("ends");
    axes = im.attr_ints("axes");
  } else {
    auto get = [&](int k, std::vector<std::int64_t>& v) -> Status {
      if (n.input_size() <= k || n.input(k).empty()) return {};
      const ConstTensor* c = im.constant(n.input(k));
      if (!c || c->dtype != DType::kI64 || c->depends_on_batch())
        return unimplemented("Slice parameters must be constant int64");
      v = c->i;
      return {};
    };
    MYELIN_RETURN_IF_ERROR(get(1, starts));
    MYELIN_RETURN_IF_ERROR(get(2, ends));
    MYELIN_RETURN_IF_ERROR(get(3, axes));
    MYELIN_RETURN_IF_ERROR(get(4, steps));
  }
  if (axes.empty()) {
    for (std::size_t d = 0; d < starts.size(); ++d) axes.push_back(static_cast<std::int64_t>(d));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return invalid_argument("Slice starts, ends, axes and steps differ in length");
  const std::size_t r = x.dims.size();
  std::vector<std::int64_t> st(r, 0), step(r, 1), cnt = x.dims;
  for (std::size_t k = 0; k < starts.size(); ++k) {
    MYELIN_ASSIGN_OR_RETURN(const std::int64_t ax, norm_axis(axes[k], r));
    const std::int64_t len = x.dims[static_cast<std::size_t>(ax)];
    if (steps[k] == 0) return invalid_argument("Slice step 0");
    // A step beyond the axis picks one element either way; clamping it
    // keeps the count arithmetic below from overflowing.
    const std::int64_t sp = std::clamp<std::int64_t>(steps[k], -len - 1, len + 1);
    auto clampi = [&](std::int64_t v, std::int64_t lo, std::int64_t hi) {
      if (v < 0) v += len;
      return std::min(std::max(v, lo), hi);
    };
    std::int64_t b = 0, e = 0;
    if (sp > 0) {
      b = clampi(starts[k], 0, len);
      e = clampi(ends[k], 0, len);
    } else {
      b = clampi(starts[k], -1, len - 1);
      e = clampi(ends[k], -1, len - 1);
    }
    const std::int64_t c =
        sp > 0 ? (e > b ? (e - b + sp - 1) / sp : 0) : (b > e ? (b - e + (-sp) - 1) / (-sp) : 0);
    st[static_cast<std::size_t>(ax)] = b;
    step[static_cast<std::size_t>(ax)] = sp;
    cnt[static_cast<std::size_t>(ax)] = c;
  }
  std::vector<std::size_t> src;
  const std::size_t total = elems(cnt);
  std::vector<std::int64_t> idx(r, 0);
  for (std::size_t k = 0; k < total; ++k) {
    std::size_t off = 0;
    for (std::size_t d = 0; d < r; ++d)
      off = off * static_cast<std::size_t>(x.dims[d]) +
            static_cast<std::size_t>(st[d] + idx[d] * step[d]);
    src.push_back(off);
    for (std::size_t d = r; d-- > 0;) {
      if (++idx[d] < cnt[d]) break;
      idx[d] = 0;
    }
  }
  return pick(x, cnt, src);
}

Result<ConstTensor> fold_concat(Importer& im, const onnx::NodeProto& n) {
  std::vector<const ConstTensor*> in;
  for (const auto& name : n.input()) in.push_back(im.constant(name));
  const ConstTensor& f = *in[0];
  MYELIN_ASSIGN_OR_RETURN(const std::int64_t axis, norm_axis(im.attr_i("axis", 0), f.dims.size()));
  const auto ax = static_cast<std::size_t>(axis);
  ConstTensor y;
  y.dtype = f.dtype;
  y.dims = f.dims;
  y.dims[ax] = 0;
  bool flagged = false;
  for (const ConstTensor* c : in) {
    if (c->dtype != f.dtype || c->dims.size() != f.dims.size())
      return invalid_argument("Concat inputs differ in dtype or rank");
    for (std::size_t d = 0; d < f.dims.size(); ++d) {
      if (d != ax && c->dims[d] != f.dims[d]) return invalid_argument("Concat shapes differ");
    }
    y.dims[ax] += c->dims[ax];
    flagged = flagged || c->depends_on_batch();
  }
  std::size_t outer = 1;
  for (std::size_t d = 0; d < ax; ++d) outer *= static_cast<std::size_t>(f.dims[d]);
  for (std::size_t o = 0; o < outer; ++o) {
    for (const ConstTensor* c : in) {
      const std::size_t chunk = outer ? c->count() / outer : 0;
      for (std::size_t k = o * chunk; k < (o + 1) * chunk; ++k) {
        if (c->dtype == DType::kF32)
          y.f.push_back(c->f[k]);
        else
          y.i.push_back(c->i[k]);
        if (flagged) y.batch.push_back(c->is_batch(k));
      }
    }
  }
  return y;
}

// Elementwise with numpy broadcasting; int64 when both operands are.
Result<ConstTensor> fold_elementwise(const std::vector<const ConstTensor*>& in,
                                     const std::function<double(double, double)>& fn,
                                     bool int_result) {
  const ConstTensor& a = *in[0];
  const ConstTensor& b = in.size() > 1 ? *in[1] : *in[0];
  const std::size_t r = std::max(a.dims.size(), b.dims.size());
  std::vector<std::int64_t> dims(r);
  auto dim = [r](const ConstTensor& c, std::size_t p) {
    const std::size_t off = r - c.dims.size();
    return p < off ? std::int64_t{1} : c.dims[p - off];
  };
  for (std::size_t p = 0; p < r; ++p) {
    const std::int64_t da = dim(a, p), db = dim(b, p);
    if (da != db && da != 1 && db != 1) return invalid_argument("shapes do not broadcast");
    dims[p] = da == 1 ? db : da;
  }
  ConstTensor y;
  y.dtype = int_result ? DType::kI64 : DType::kF32;
  y.dims = dims;
  const std::size_t total = elems(dims);
  if (total > kMaxFoldElems) return unimplemented("folding a constant larger than 2^24 elements");
  std::vector<std::int64_t> idx(r, 0);
  for (std::size_t k = 0; k < total; ++k) {
    auto offset = [&](const ConstTensor& c) {
      std::size_t off = 0;
      const std::size_t o = r - c.dims.size();
      for (std::size_t p = o; p < r; ++p)
        off = off * static_cast<std::size_t>(c.dims[p - o]) +
              static_cast<std::size_t>(c.dims[p - o] == 1 ? 0 : idx[p]);
      return off;
    };
    const double v = fn(at(a, offset(a)), at(b, offset(b)));
    if (int_result)
      y.i.push_back(to_i64(v));
    else
      y.f.push_back(static_cast<float>(v));
    for (std::size_t p = r; p-- > 0;) {
      if (++idx[p] < dims[p]) break;
      idx[p] = 0;
    }
  }
  return y;
}

// numpy broadcasting of up to three constants: the output dims and, per
// output element, the element index into each input.
Result<std::vector<std::int64_t>> broadcast_dims(const std::vector<const ConstTensor*>& in) {
  std::size_t r = 0;
  for (const ConstTensor* c : in) r = std::max(r, c->dims.size());
  std::vector<std::int64_t> dims(r, 1);
  for (const ConstTensor* c : in) {
    const std::size_t off = r - c->dims.size();
    for (std::size_t p = off; p < r; ++p) {
      const std::int64_t d = c->dims[p - off];
      if (d != dims[p] && d != 1 && dims[p] != 1)
        return invalid_argument("shapes do not broadcast");
      if (d != 1) dims[p] = d;
    }
  }
  if (elems(dims) > kMaxFoldElems) return unimplemented("folding a constant larger than 2^24");
  return dims;
}

std::size_t offset_in(const ConstTensor& c, const std::vector<std::int64_t>& idx) {
  std::size_t off = 0;
  const std::size_t o = idx.size() - c.dims.size();
  for (std::size_t p = o; p < idx.size(); ++p)
    off = off * static_cast<std::size_t>(c.dims[p - o]) +
          static_cast<std::size_t>(c.dims[p - o] == 1 ? 0 : idx[p]);
  return off;
}

void next_index(std::vector<std::int64_t>& idx, const std::vector<std::int64_t>& dims) {
  for (std::size_t p = idx.size(); p-- > 0;) {
    if (++idx[p] < dims[p]) return;
    idx[p] = 0;
  }
}

// Equal as torch emits it to resolve -1 in a shape (Equal(shape, -1) then
// Where): "the batch size == v" is false for any negative v and true
// against the batch size itself; otherwise it depends on the batch. Booleans
// are kept as int64 0/1 (only Where and Cast consume them here).
Result<ConstTensor> fold_equal(const onnx::NodeProto& n, const ConstTensor& a,
                               const ConstTensor& b) {
  MYELIN_ASSIGN_OR_RETURN(const std::vector<std::int64_t> dims, broadcast_dims({&a, &b}));
  ConstTensor y;
  y.dtype = DType::kI64;
  y.dims = dims;
  std::vector<std::int64_t> idx(dims.size(), 0);
  for (std::size_t k = 0; k < elems(dims); ++k, next_index(idx, dims)) {
    const std::size_t oa = offset_in(a, idx), ob = offset_in(b, idx);
    const bool ba = a.is_batch(oa), bb = b.is_batch(ob);
    if (ba && bb) {
      y.i.push_back(1);
    } else if (ba || bb) {
      const double other = ba ? at(b, ob) : at(a, oa);
      if (other >= 0) return batch_as_data(n.input(ba ? 0 : 1));
      y.i.push_back(0);
    } else {
      y.i.push_back(at(a, oa) == at(b, ob) ? 1 : 0);
    }
  }
  return y;
}

Result<ConstTensor> fold_where(const ConstTensor& cond, const ConstTensor& a,
                               const ConstTensor& b) {
  if (a.dtype != b.dtype) return invalid_argument("Where's branches differ in type");
  if (cond.depends_on_batch()) return batch_as_data("condition");
  MYELIN_ASSIGN_OR_RETURN(const std::vector<std::int64_t> dims, broadcast_dims({&cond, &a, &b}));
  ConstTensor y;
  y.dtype = a.dtype;
  y.dims = dims;
  std::vector<std::int64_t> idx(dims.size(), 0);
  for (std::size_t k = 0; k < elems(dims); ++k, next_index(idx, dims)) {
    const bool pick_a = at(cond, offset_in(cond, idx)) != 0;
    const ConstTensor& src = pick_a ? a : b;
    const std::size_t o = offset_in(src, idx);
    if (src.dtype == DType::kF32)
      y.f.push_back(src.f[o]);
    else
      y.i.push_back(src.i[o]);
    y.batch.push_back(src.is_batch(o) ? 1 : 0);
  }
  return y;
}

Result<ConstTensor> fold_shape(Importer& im, const onnx::NodeProto& n) {
  std::vector<std::int64_t> dims;
  bool batched = false;
  if (auto it = im.values.find(n.input(0)); it != im.values.end()) {
    const VShape& s = im.shapes[it->second];
    dims = s.dims;
    batched = s.batched;
  } else if (const ConstTensor* c = im.constant(n.input(0))) {
    dims = c->dims;
  } else {
    return not_found("input '" + n.input(0) + "' is not defined");
  }
  const auto r = static_cast<std::int64_t>(dims.size());
  std::int64_t start = im.attr_i("start", 0), end = im.attr_i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<std::int64_t>(start, 0, r);
  end = std::clamp<std::int64_t>(end, start, r);
  ConstTensor y;
  y.dtype = DType::kI64;
  for (std::int64_t d = start; d < end; ++d) {
    y.i.push_back(dims[static_cast<std::size_t>(d)]);
    y.batch.push_back(batched && d == 0 ? 1 : 0);
  }
  if (!y.depends_on_batch()) y.batch.clear();
  y.dims = {end - start};
  return y;
}

}  // namespace

Status batch_as_data(std::string_view name) {
  std::string msg(name);  // (one string, built in place: GCC 12 -Wrestrict false positive)
  msg.insert(0, 1, '\'');
  msg.append(
      "' depends on the batch size (it is computed from a Shape of a batched value) and is used "
      "as data; myelin only accepts such tensors as the shape of Reshape, Expand or "
      "ConstantOfShape");
  return unimplemented(msg);
}

Status fold_node(Importer& im, const onnx::NodeProto& n, bool& folded) {
  folded = false;
  const std::string& op = n.op_type();
  if (n.output_size() != 1 || n.input_size() < 1) return {};
  ConstTensor y;
  if (op == "Shape") {
    MYELIN_ASSIGN_OR_RETURN(y, fold_shape(im, n));
    im.consts[n.output(0)] = std::move(y);
    folded = true;
    return {};
  }
  static const std::set<std::string, std::less<>> kFoldable = {
      "Identity", "Cast",       "Unsqueeze", "Squeeze",
      "Concat",   "Gather",     "Slice",     "Reshape",
      "Add",      "Sub",        "Mul",       "Div",
      "Neg",      "Sqrt",       "Pow",       "ConstantOfShape",
      "Floor",    "Ceil",       "Abs",       "Exp",
      "Log",      "Reciprocal", "Equal",     "Where"};
  if (!kFoldable.count(op)) return {};
  std::vector<const ConstTensor*> in;
  bool flagged = false;
  for (const auto& name : n.input()) {
    if (name.empty()) {
      in.push_back(nullptr);
      continue;
    }
    const ConstTensor* c = im.constant(name);
    if (!c) return {};  // a runtime operand: not foldable
    flagged = flagged || c->depends_on_batch();
    in.push_back(c);
  }
  if (!in[0]) return {};
  const ConstTensor& x = *in[0];
  if (op == "ConstantOfShape") {
    if (x.depends_on_batch()) return {};  // a runtime fill (import_ops.cc)
    if (x.dtype != DType::kI64) return invalid_argument("ConstantOfShape's shape is not int64");
    y.dims = x.i;
    for (std::int64_t d : y.dims) {
      if (d < 0) return invalid_argument("negative dimension in ConstantOfShape");
    }
    if (elems(y.dims) > kMaxFoldElems)
      return unimplemented("ConstantOfShape larger than 2^24 elements");
    ConstTensor v;
    v.f = {0.0f};
    if (const auto* a = im.attr("value")) {
      MYELIN_ASSIGN_OR_RETURN(v, parse_tensor(a->t()));
    }
    if (v.count() != 1) return invalid_argument("ConstantOfShape value must have one element");
    y.dtype = v.dtype;
    if (v.dtype == DType::kF32)
      y.f.assign(elems(y.dims), v.f[0]);
    else
      y.i.assign(elems(y.dims), v.i[0]);
  } else if (op == "Equal") {
    if (in.size() != 2 || !in[1]) return invalid_argument("Equal takes 2 inputs");
    MYELIN_ASSIGN_OR_RETURN(y, fold_equal(n, x, *in[1]));
  } else if (op == "Where") {
    if (in.size() != 3 || !in[1] || !in[2]) return invalid_argument("Where takes 3 inputs");
    MYELIN_ASSIGN_OR_RETURN(y, fold_where(x, *in[1], *in[2]));
  } else if (op == "Identity") {
    y = x;
  } else if (op == "Cast") {
    const std::int64_t to = im.attr_i("to", 0);
    if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32) {
      y = x;
      if (x.dtype == DType::kF32) {
        y.dtype = DType::kI64;
        y.f.clear();
        for (float v : x.f) y.i.push_back(to_i64(v));
      }
    } else if (to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE) {
      if (flagged) return batch_as_data(n.input(0));
      y = x;
      if (x.dtype == DType::kI64) {
        y.dtype = DType::kF32;
        y.i.clear();
        for (std::int64_t v : x.i) y.f.push_back(static_cast<float>(v));
      }
    } else {
      return {};  // let the op compiler refuse it with its message
    }
  } else if (op == "Unsqueeze") {
    MYELIN_ASSIGN_OR_RETURN(y, fold_unsqueeze(im, n, x));
  } else if (op == "Squeeze") {
    MYELIN_ASSIGN_OR_RETURN(y, fold_squeeze(im, n, x));
  } else if (op == "Gather") {
    if (in.size() < 2 || !in[1]) return invalid_argument("Gather needs indices");
    MYELIN_ASSIGN_OR_RETURN(y, fold_gather(im, x, *in[1]));
  } else if (op == "Slice") {
    MYELIN_ASSIGN_OR_RETURN(y, fold_slice(im, n, x));
  } else if (op == "Concat") {
    for (const ConstTensor* c : in) {
      if (!c) return invalid_argument("Concat input is empty");
    }
    MYELIN_ASSIGN_OR_RETURN(y, fold_concat(im, n));
  } else if (op == "Reshape") {
    if (in.size() < 2 || !in[1] || in[1]->dtype != DType::kI64 || in[1]->depends_on_batch())
      return {};
    std::vector<std::int64_t> dims = in[1]->i;
    std::int64_t known = 1;
    int infer = -1;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] == 0 && im.attr_i("allowzero", 0) == 0 && d < x.dims.size()) dims[d] = x.dims[d];
      if (dims[d] == -1) {
        if (infer >= 0) return invalid_argument("more than one -1 in the shape");
        infer = static_cast<int>(d);
      } else if (dims[d] < 0) {
        return invalid_argument("negative dimension in the shape");
      } else {
        known *= dims[d];
      }
    }
    const auto total = static_cast<std::int64_t>(x.count());
    if (infer >= 0 && known > 0) dims[static_cast<std::size_t>(infer)] = total / known;
    if (static_cast<std::int64_t>(elems(dims)) != total)
      return invalid_argument("Reshape changes the element count");
    y = x;
    y.dims = dims;
  } else {
    // Arithmetic: on the batch size it would bake one batch into the plan.
    if (flagged) {
      for (std::size_t k = 0; k < in.size(); ++k) {
        if (in[k] && in[k]->depends_on_batch()) return batch_as_data(n.input(static_cast<int>(k)));
      }
    }
    for (const ConstTensor* c : in) {
      if (!c) return {};
    }
    const bool ints = std::all_of(in.begin(), in.end(),
                                  [](const ConstTensor* c) { return c->dtype == DType::kI64; });
    std::function<double(double, double)> fn;
    if (op == "Add") fn = [](double a, double b) { return a + b; };
    if (op == "Sub") fn = [](double a, double b) { return a - b; };
    if (op == "Mul") fn = [](double a, double b) { return a * b; };
    if (op == "Div") {
      fn = [ints](double a, double b) {
        return ints ? (b == 0 ? 0.0 : std::trunc(a / b)) : static_cast<double>(float(a) / float(b));
      };
    }
    if (op == "Pow") fn = [](double a, double b) { return std::pow(a, b); };
    if (op == "Neg") fn = [](double a, double) { return -a; };
    if (op == "Sqrt")
      fn = [](double a, double) { return static_cast<double>(std::sqrt(float(a))); };
    if (op == "Floor") fn = [](double a, double) { return std::floor(a); };
    if (op == "Ceil") fn = [](double a, double) { return std::ceil(a); };
    if (op == "Abs") fn = [](double a, double) { return std::fabs(a); };
    if (op == "Exp") fn = [](double a, double) { return static_cast<double>(std::exp(float(a))); };
    if (op == "Log") fn = [](double a, double) { return static_cast<double>(std::log(float(a))); };
    if (op == "Reciprocal") fn = [](double a, double) { return 1.0 / a; };
    const bool binary = op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow";
    if (binary && in.size() != 2) return invalid_argument("expected 2 inputs");
    const bool int_result = ints && op != "Sqrt" && op != "Exp" && op != "Log" &&
                            op != "Reciprocal" && (op != "Pow" || x.dtype == DType::kI64);
    MYELIN_ASSIGN_OR_RETURN(
        y, fold_elementwise(binary ? in : std::vector<const ConstTensor*>{in[0]}, fn,
                            int_result || (op == "Pow" && x.dtype == DType::kI64)));
  }
  if (y.dims.size() > kMaxRank) return unimplemented("constant of rank > 8");
  if (!y.depends_on_batch()) y.batch.clear();
  im.consts[n.output(0)] = std::move(y);
  folded = true;
  return {};
}

}  // namespace myelin::model::detail
