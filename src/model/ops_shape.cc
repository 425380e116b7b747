// Axis-wise steps: Softmax/LogSoftmax, ArgMax, Concat.
#include <cmath>
#include <cstring>
#include <string>

#include "src/model/plan.h"

namespace myelin::model::detail {
namespace {

std::size_t rows_of(const RtStep& s, const ExecCtx& c) {
  return s.outer * (s.outer_batched ? c.batch : 1);
}

void run_softmax(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), len = s.mid, inner = s.inner;
  const bool log = s.code != 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < inner; ++i) {
      const float* xr = x + r * len * inner + i;
      float* yr = y + r * len * inner + i;
      float mx = -INFINITY;
      for (std::size_t j = 0; j < len; ++j) mx = std::max(mx, xr[j * inner]);
      float sum = 0;
      for (std::size_t j = 0; j < len; ++j) {
        const float e = std::exp(xr[j * inner] - mx);
        sum += e;
        if (!log) yr[j * inner] = e;
      }
      if (log) {
        const float ls = std::log(sum);
        for (std::size_t j = 0; j < len; ++j) yr[j * inner] = xr[j * inner] - mx - ls;
      } else {
        const float inv = 1.0f / sum;
        for (std::size_t j = 0; j < len; ++j) yr[j * inner] *= inv;
      }
    }
  }
}

void run_argmax(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<std::int64_t*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), len = s.mid, inner = s.inner;
  const bool last = s.code != 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < inner; ++i) {
      const float* xr = x + r * len * inner + i;
      std::size_t best = 0;
      for (std::size_t j = 1; j < len; ++j) {
        const float v = xr[j * inner], b = xr[best * inner];
        if (v > b || (last && v == b)) best = j;
      }
      y[r * inner + i] = static_cast<std::int64_t>(best);
    }
  }
}

void run_concat(const RtStep& s, const ExecCtx& c) {
  const std::size_t rows = rows_of(s, c);
  const std::size_t esize = s.inner;
  auto* y = static_cast<std::byte*>(c.ptr[s.out[0]]);
  std::size_t row_bytes = 0;
  for (std::uint64_t n : s.sizes) row_bytes += n * esize;
  for (std::size_t r = 0; r < rows; ++r) {
    std::byte* dst = y + r * row_bytes;
    for (std::size_t i = 0; i < s.in.size(); ++i) {
      const std::size_t n = s.sizes[i] * esize;
      if (n != 0) std::memcpy(dst, static_cast<const std::byte*>(c.ptr[s.in[i]]) + r * n, n);
      dst += n;
    }
  }
}

Status check_axis(const ValueInfo& x, std::int32_t axis) {
  if (axis < 0 || static_cast<std::size_t>(axis) >= std::max<std::size_t>(x.rank, 1))
    return data_loss("axis " + std::to_string(axis) + " out of range for rank " +
                     std::to_string(x.rank));
  if (x.batched && axis == 0)
    return unimplemented("axis 0 of '" + std::string(x.name) +
                         "' is the batch dimension; ops across samples are not supported");
  return {};
}

}  // namespace

Status bind_softmax(const BindCtx& c, RtStep& s) {
  SoftmaxParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1) return data_loss("softmax takes 1 input");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  if (x.rank == 0) return invalid_argument("softmax of a scalar");
  MYELIN_RETURN_IF_ERROR(check_axis(x, p.axis));
  if (y.batched != x.batched || y.sample_elems != x.sample_elems)
    return invalid_argument("output shape " + dims_string(y) + " differs from input " +
                            dims_string(x));
  std::uint64_t outer = 0, len = 0, inner = 0;
  split_at(x, static_cast<std::size_t>(p.axis), outer, len, inner);
  if (p.legacy) {  // opset < 13: the input is coerced to 2-D at `axis`
    len *= inner;
    inner = 1;
  }
  s.outer = outer;
  s.outer_batched = x.batched;
  s.mid = len;
  s.inner = inner;
  s.code = p.log;
  s.run = run_softmax;
  return {};
}

Status bind_argmax(const BindCtx& c, RtStep& s) {
  ArgMaxParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1) return data_loss("argmax takes 1 input");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kI64, "output"));
  if (x.rank == 0) return invalid_argument("argmax of a scalar");
  MYELIN_RETURN_IF_ERROR(check_axis(x, p.axis));
  const auto axis = static_cast<std::size_t>(p.axis);
  if (x.dims[axis] <= 0) return invalid_argument("argmax over an empty axis");
  // Expected output dims.
  std::size_t rank = 0;
  std::array<std::int64_t, kMaxRank> want{};
  for (std::size_t d = 0; d < x.rank; ++d) {
    if (d == axis) {
      if (p.keepdims) want[rank++] = 1;
    } else {
      want[rank++] = x.dims[d];
    }
  }
  bool ok = y.rank == rank && y.batched == x.batched;
  for (std::size_t d = 0; ok && d < rank; ++d) ok = y.dims[d] == want[d];
  if (!ok)
    return invalid_argument("output shape " + dims_string(y) + " does not match argmax of " +
                            dims_string(x));
  std::uint64_t outer = 0, len = 0, inner = 0;
  split_at(x, axis, outer, len, inner);
  s.outer = outer;
  s.outer_batched = x.batched;
  s.mid = len;
  s.inner = inner;
  s.code = p.select_last;
  s.run = run_argmax;
  return {};
}

Status bind_concat(const BindCtx& c, RtStep& s) {
  ConcatParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs < 1 || c.rec.num_outputs != 1) return data_loss("concat needs inputs");
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(check_axis(y, p.axis));
  const auto axis = static_cast<std::size_t>(p.axis);
  std::int64_t total = 0;
  for (std::uint32_t id : s.in) {
    const ValueInfo& x = c.values[id];
    if (x.dtype != y.dtype || x.rank != y.rank || x.batched != y.batched)
      return invalid_argument("input '" + std::string(x.name) + "' " + dims_string(x) +
                              " does not match output " + dims_string(y));
    for (std::size_t d = 0; d < x.rank; ++d) {
      if (d != axis && x.dims[d] != y.dims[d])
        return invalid_argument("input '" + std::string(x.name) + "' " + dims_string(x) +
                                " differs from output " + dims_string(y) + " off the axis");
    }
    total += x.dims[axis];
    std::uint64_t outer = 0, len = 0, inner = 0;
    split_at(x, axis, outer, len, inner);
    s.sizes.push_back(len * inner);
  }
  if (total != y.dims[axis])
    return invalid_argument("concatenated axis length differs from output");
  std::uint64_t outer = 0, len = 0, inner = 0;
  split_at(y, axis, outer, len, inner);
  s.outer = outer;
  s.outer_batched = y.batched;
  s.inner = dtype_size(y.dtype);
  s.run = run_concat;
  return {};
}

}  // namespace myelin::model::detail
