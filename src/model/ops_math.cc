// Steps torch-exported networks need beyond the dense path: elementwise maths
// with constant parameters (GELU's Erf, Elu, Softplus, Clip, Pow, Sqrt, ...),
// Transpose, Reduce*, LayerNormalization, Gather on constant indices and
// Expand. Reference-style loops: these ops sit beside the dense layers, which
// dominate the time, so clarity wins over SIMD here.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "src/model/plan.h"

namespace myelin::model::detail {
namespace {

std::size_t rows_of(const RtStep& s, const ExecCtx& c) {
  return s.outer * (s.outer_batched ? c.batch : 1);
}

template <ActOp Op>
inline float act(float x, float a, float b) {
  if constexpr (Op == ActOp::kErf) return std::erf(x);
  if constexpr (Op == ActOp::kElu) return x > 0 ? x : a * std::expm1(x);
  if constexpr (Op == ActOp::kSoftplus) {
    // log(1 + e^x) without overflow for large x.
    return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
  if constexpr (Op == ActOp::kClip) return std::isnan(x) ? x : std::min(std::max(x, a), b);
  if constexpr (Op == ActOp::kSqrt) return std::sqrt(x);
  if constexpr (Op == ActOp::kPow) return a == 2.0f ? x * x : std::pow(x, a);
  if constexpr (Op == ActOp::kExp) return std::exp(x);
  if constexpr (Op == ActOp::kLog) return std::log(x);
  if constexpr (Op == ActOp::kNeg) return -x;
  if constexpr (Op == ActOp::kAbs) return std::fabs(x);
  if constexpr (Op == ActOp::kReciprocal) return 1.0f / x;
  if constexpr (Op == ActOp::kHardSigmoid) return std::max(0.0f, std::min(1.0f, a * x + b));
  if constexpr (Op == ActOp::kSoftsign) return x / (1.0f + std::fabs(x));
  if constexpr (Op == ActOp::kSelu) return b * (x > 0 ? x : a * std::expm1(x));
  if constexpr (Op == ActOp::kHardSwish)
    return x * std::max(0.0f, std::min(1.0f, x * (1.0f / 6.0f) + 0.5f));
  return x;
}

template <ActOp Op>
void run_act(const RtStep& s, const ExecCtx& c) {
  const std::size_t n = s.mid * (s.outer_batched ? c.batch : 1);
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  for (std::size_t i = 0; i < n; ++i) y[i] = act<Op>(x[i], s.alpha, s.beta);
}

// Input strides (in elements) for the odometers below; the batch axis of a
// batched value strides by the sample size.
std::array<std::int64_t, kMaxRank> strides_of(const ValueInfo& v) {
  std::array<std::int64_t, kMaxRank> st{};
  std::int64_t acc = 1;
  for (std::size_t d = v.rank; d-- > 0;) {
    st[d] = acc;
    if (!(d == 0 && v.batched)) acc *= v.dims[d];
  }
  return st;
}

// Element-size-generic strided copy: y[i] = x[offset(i)] over s.dims with
// input strides s.sa (Transpose, Expand).
void run_strided_copy(const RtStep& s, const ExecCtx& c) {
  std::array<std::int64_t, kMaxRank> dims = s.dims, idx{};
  if (s.outer_batched) dims[0] = static_cast<std::int64_t>(c.batch);
  std::size_t total = 1;
  for (std::uint32_t d = 0; d < s.rank; ++d) total *= static_cast<std::size_t>(dims[d]);
  if (total == 0) return;
  const auto* x = static_cast<const std::byte*>(c.ptr[s.in[0]]);
  auto* y = static_cast<std::byte*>(c.ptr[s.out[0]]);
  const std::size_t es = s.inner;
  std::int64_t off = 0;
  for (std::size_t i = 0; i < total; ++i) {
    std::memcpy(y + i * es, x + static_cast<std::size_t>(off) * es, es);
    for (std::uint32_t d = s.rank; d-- > 0;) {
      off += s.sa[d];
      if (++idx[d] < dims[d]) break;
      off -= s.sa[d] * dims[d];
      idx[d] = 0;
    }
  }
}

template <ReduceOp Op>
void run_reduce_t(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), len = s.mid, inner = s.inner;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < inner; ++i) {
      const float* xr = x + r * len * inner + i;
      double acc = Op == ReduceOp::kProd  ? 1.0
                   : Op == ReduceOp::kMax ? -std::numeric_limits<double>::infinity()
                   : Op == ReduceOp::kMin ? std::numeric_limits<double>::infinity()
                                          : 0.0;
      double mx = 0;
      if constexpr (Op == ReduceOp::kLogSumExp) {
        mx = -std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j < len; ++j) mx = std::max<double>(mx, xr[j * inner]);
        if (!std::isfinite(mx)) mx = 0;
      }
      for (std::size_t j = 0; j < len; ++j) {
        const double v = xr[j * inner];
        if constexpr (Op == ReduceOp::kMax) {
          acc = (v > acc || std::isnan(v)) ? v : acc;
        } else if constexpr (Op == ReduceOp::kMin) {
          acc = (v < acc || std::isnan(v)) ? v : acc;
        } else if constexpr (Op == ReduceOp::kProd) {
          acc *= v;
        } else if constexpr (Op == ReduceOp::kL1) {
          acc += std::fabs(v);
        } else if constexpr (Op == ReduceOp::kL2 || Op == ReduceOp::kSumSquare) {
          acc += v * v;
        } else if constexpr (Op == ReduceOp::kLogSumExp) {
          acc += std::exp(v - mx);
        } else {
          acc += v;
        }
      }
      if constexpr (Op == ReduceOp::kMean) acc /= static_cast<double>(len);
      if constexpr (Op == ReduceOp::kL2) acc = std::sqrt(acc);
      if constexpr (Op == ReduceOp::kLogSum) acc = std::log(acc);
      if constexpr (Op == ReduceOp::kLogSumExp) acc = std::log(acc) + mx;
      y[r * inner + i] = static_cast<float>(acc);
    }
  }
}

void run_layer_norm(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), len = s.mid;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * len;
    float* yr = y + r * len;
    double mean = 0;
    for (std::size_t j = 0; j < len; ++j) mean += xr[j];
    mean /= static_cast<double>(len);
    double var = 0;
    for (std::size_t j = 0; j < len; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= static_cast<double>(len);
    const double inv = 1.0 / std::sqrt(var + static_cast<double>(s.alpha));
    for (std::size_t j = 0; j < len; ++j) {
      const double v = (xr[j] - mean) * inv * s.f0[j] + (s.f1 ? s.f1[j] : 0.0f);
      yr[j] = static_cast<float>(v);
    }
    if (s.out.size() == 3) {
      static_cast<float*>(c.ptr[s.out[1]])[r] = static_cast<float>(mean);
      static_cast<float*>(c.ptr[s.out[2]])[r] = static_cast<float>(inv);
    }
  }
}

void run_gather(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const std::byte*>(c.ptr[s.in[0]]);
  auto* y = static_cast<std::byte*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), len = s.mid;
  const std::size_t chunk = s.inner * s.code;  // inner elements * element size
  const auto* idx = static_cast<const std::int64_t*>(s.aux);
  const std::size_t count = s.sizes[0];
  if (chunk == 0) return;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < count; ++j) {
      std::memcpy(y + (r * count + j) * chunk,
                  x + (r * len + static_cast<std::size_t>(idx[j])) * chunk, chunk);
    }
  }
}

Status same_shape(const ValueInfo& x, const ValueInfo& y) {
  bool ok = x.rank == y.rank && x.batched == y.batched;
  for (std::size_t d = 0; ok && d < x.rank; ++d) ok = x.dims[d] == y.dims[d];
  if (!ok)
    return invalid_argument("input " + dims_string(x) + " and output " + dims_string(y) +
                            " differ in shape");
  return {};
}

Status one_in_one_out(const BindCtx& c, std::string_view what) {
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1)
    return data_loss(std::string(what) + " takes 1 input and 1 output");
  return {};
}

}  // namespace

Status bind_activation(const BindCtx& c, RtStep& s) {
  ActParams p;
  std::memcpy(&p, c.params, sizeof(p));
  MYELIN_RETURN_IF_ERROR(one_in_one_out(c, "activation"));
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  if (x.batched != y.batched || x.sample_elems != y.sample_elems)
    return invalid_argument("input " + dims_string(x) + " and output " + dims_string(y) +
                            " differ in element count");
  s.mid = x.sample_elems;
  s.outer_batched = x.batched;
  s.alpha = p.a;
  s.beta = p.b;
  switch (static_cast<ActOp>(p.op)) {
#define MYELIN_ACT(k)          \
  case ActOp::k:               \
    s.run = run_act<ActOp::k>; \
    return {};
    MYELIN_ACT(kErf)
    MYELIN_ACT(kElu)
    MYELIN_ACT(kSoftplus)
    MYELIN_ACT(kClip)
    MYELIN_ACT(kSqrt)
    MYELIN_ACT(kPow)
    MYELIN_ACT(kExp)
    MYELIN_ACT(kLog)
    MYELIN_ACT(kNeg)
    MYELIN_ACT(kAbs)
    MYELIN_ACT(kReciprocal)
    MYELIN_ACT(kHardSigmoid)
    MYELIN_ACT(kSoftsign)
    MYELIN_ACT(kSelu)
    MYELIN_ACT(kHardSwish)
#undef MYELIN_ACT
  }
  return data_loss("unknown activation " + std::to_string(p.op));
}

Status bind_transpose(const BindCtx& c, RtStep& s) {
  TransposeParams p;
  std::memcpy(&p, c.params, sizeof(p));
  MYELIN_RETURN_IF_ERROR(one_in_one_out(c, "transpose"));
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  if (p.rank != x.rank || y.rank != x.rank || x.dtype != y.dtype || x.batched != y.batched)
    return invalid_argument("transpose of " + dims_string(x) + " to " + dims_string(y) +
                            " with rank " + std::to_string(p.rank));
  std::uint32_t seen = 0;
  for (std::size_t d = 0; d < p.rank; ++d) {
    if (p.perm[d] >= p.rank || (seen >> p.perm[d]) & 1u)
      return invalid_argument("transpose perm is not a permutation");
    seen |= 1u << p.perm[d];
  }
  if (x.batched && p.perm[0] != 0)
    return unimplemented("Transpose would move the batch dimension of '" + std::string(x.name) +
                         "'");
  const auto st = strides_of(x);
  for (std::size_t d = 0; d < p.rank; ++d) {
    if (y.dims[d] != x.dims[p.perm[d]])
      return invalid_argument("transpose output " + dims_string(y) + " does not match input " +
                              dims_string(x));
    s.dims[d] = y.dims[d];
    s.sa[d] = st[p.perm[d]];
  }
  s.rank = p.rank;
  s.outer_batched = x.batched;
  s.inner = dtype_size(x.dtype);
  s.run = run_strided_copy;
  return {};
}

Status bind_expand(const BindCtx& c, RtStep& s) {
  MYELIN_RETURN_IF_ERROR(one_in_one_out(c, "expand"));
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  if (x.dtype != y.dtype || x.rank > y.rank || (x.batched && (!y.batched || x.rank != y.rank)))
    return invalid_argument("cannot expand " + dims_string(x) + " to " + dims_string(y));
  const auto st = strides_of(x);
  const std::size_t off = y.rank - x.rank;
  for (std::size_t d = 0; d < y.rank; ++d) {
    s.dims[d] = y.dims[d];
    if (d < off) {
      s.sa[d] = 0;
      continue;
    }
    const std::int64_t xd = x.dims[d - off];
    if (xd == y.dims[d]) {
      s.sa[d] = st[d - off];
    } else if (xd == 1) {
      s.sa[d] = 0;
    } else {
      return invalid_argument("cannot expand " + dims_string(x) + " to " + dims_string(y));
    }
  }
  s.rank = static_cast<std::uint32_t>(y.rank);
  s.outer_batched = y.batched;
  s.inner = dtype_size(x.dtype);
  s.run = run_strided_copy;
  return {};
}

Status bind_reduce(const BindCtx& c, RtStep& s) {
  ReduceParams p;
  std::memcpy(&p, c.params, sizeof(p));
  MYELIN_RETURN_IF_ERROR(one_in_one_out(c, "reduce"));
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  if (p.count == 0 || p.first >= x.rank || p.count > x.rank - p.first)
    return data_loss("reduce axes out of range for " + dims_string(x));
  if (x.batched && p.first == 0)
    return unimplemented("reducing over the batch dimension of '" + std::string(x.name) + "'");
  std::uint64_t outer = 1, len = 1, inner = 1;
  for (std::size_t d = 0; d < x.rank; ++d) {
    if (d == 0 && x.batched) continue;
    const auto n = static_cast<std::uint64_t>(x.dims[d]);
    (d < p.first ? outer : d < p.first + p.count ? len : inner) *= n;
  }
  if (y.batched != x.batched || y.sample_elems != outer * inner)
    return invalid_argument("reduce output " + dims_string(y) + " does not match input " +
                            dims_string(x));
  s.outer = outer;
  s.outer_batched = x.batched;
  s.mid = len;
  s.inner = inner;
  switch (static_cast<ReduceOp>(p.op)) {
#define MYELIN_RED(k)                  \
  case ReduceOp::k:                    \
    s.run = run_reduce_t<ReduceOp::k>; \
    return {};
    MYELIN_RED(kSum)
    MYELIN_RED(kMean)
    MYELIN_RED(kMax)
    MYELIN_RED(kMin)
    MYELIN_RED(kProd)
    MYELIN_RED(kL1)
    MYELIN_RED(kL2)
    MYELIN_RED(kSumSquare)
    MYELIN_RED(kLogSum)
    MYELIN_RED(kLogSumExp)
#undef MYELIN_RED
  }
  return data_loss("unknown reduce op " + std::to_string(p.op));
}

Status bind_layer_norm(const BindCtx& c, RtStep& s) {
  LayerNormParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || (c.rec.num_outputs != 1 && c.rec.num_outputs != 3))
    return data_loss("layer norm takes 1 input and 1 or 3 outputs");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(same_shape(x, y));
  if (p.axis < (x.batched ? 1 : 0) || static_cast<std::size_t>(p.axis) >= x.rank)
    return invalid_argument("layer norm axis " + std::to_string(p.axis) + " out of range for " +
                            dims_string(x));
  if (!(p.epsilon >= 0)) return invalid_argument("layer norm epsilon is negative");
  std::uint64_t outer = 0, len = 0, inner = 0;
  split_at(x, static_cast<std::size_t>(p.axis), outer, len, inner);
  len *= inner;
  if (len == 0) return invalid_argument("layer norm over an empty axis");
  for (std::size_t o = 1; o < s.out.size(); ++o) {  // Mean, InvStdDev: one per row
    const ValueInfo& st = c.values[s.out[o]];
    MYELIN_RETURN_IF_ERROR(expect_dtype(st, DType::kF32, "statistics output"));
    if (st.batched != x.batched || st.sample_elems != outer)
      return invalid_argument("statistics output " + dims_string(st) + " does not match " +
                              dims_string(x));
  }
  MYELIN_ASSIGN_OR_RETURN(const std::byte* sc, resolve(c.img, p.scale, 4, len, "scale"));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* b,
                          resolve(c.img, p.bias, 4, p.bias.len == 0 ? 0 : len, "bias"));
  s.f0 = reinterpret_cast<const float*>(sc);
  s.f1 = p.bias.len == 0 ? nullptr : reinterpret_cast<const float*>(b);
  s.outer = outer;
  s.outer_batched = x.batched;
  s.mid = len;
  s.alpha = p.epsilon;
  s.run = run_layer_norm;
  return {};
}

Status bind_gather(const BindCtx& c, RtStep& s) {
  GatherParams p;
  std::memcpy(&p, c.params, sizeof(p));
  MYELIN_RETURN_IF_ERROR(one_in_one_out(c, "gather"));
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  if (p.axis < (x.batched ? 1 : 0) || static_cast<std::size_t>(p.axis) >= x.rank ||
      x.dtype != y.dtype || x.batched != y.batched)
    return invalid_argument("gather axis " + std::to_string(p.axis) + " of " + dims_string(x));
  const std::size_t count = p.indices.len / sizeof(std::int64_t);
  MYELIN_ASSIGN_OR_RETURN(const std::byte* raw,
                          resolve(c.img, p.indices, sizeof(std::int64_t), count, "indices"));
  const auto* idx = reinterpret_cast<const std::int64_t*>(raw);
  const std::int64_t axis_len = x.dims[static_cast<std::size_t>(p.axis)];
  for (std::size_t j = 0; j < count; ++j) {
    if (idx[j] < 0 || idx[j] >= axis_len)
      return invalid_argument("gather index " + std::to_string(idx[j]) + " out of range [0, " +
                              std::to_string(axis_len) + ")");
  }
  std::uint64_t outer = 0, len = 0, inner = 0;
  split_at(x, static_cast<std::size_t>(p.axis), outer, len, inner);
  if (y.sample_elems != outer * count * inner)
    return invalid_argument("gather output " + dims_string(y) + " does not match input " +
                            dims_string(x));
  s.outer = outer;
  s.outer_batched = x.batched;
  s.mid = len;
  s.inner = inner;
  s.code = static_cast<std::uint32_t>(dtype_size(x.dtype));
  s.aux = idx;
  s.sizes = {count};
  s.run = run_gather;
  return {};
}

}  // namespace myelin::model::detail
