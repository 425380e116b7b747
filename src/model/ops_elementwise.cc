// Elementwise steps: binary arithmetic with numpy broadcasting, unary
// activations and copies, casts.
#include <cmath>
#include <cstring>
#include <string>

#include "src/model/plan.h"

namespace myelin::model::detail {
namespace {

enum Fast : std::uint32_t { kGeneral = 0, kSame = 1, kRowB = 2, kRowA = 3 };

template <BinaryOp Op>
inline float apply(float a, float b) {
  if constexpr (Op == BinaryOp::kAdd) return a + b;
  if constexpr (Op == BinaryOp::kSub) return a - b;
  if constexpr (Op == BinaryOp::kMul) return a * b;
  if constexpr (Op == BinaryOp::kPow) return std::pow(a, b);
  if constexpr (Op == BinaryOp::kPRelu) return a < 0 ? a * b : a;
  return a / b;
}

template <BinaryOp Op>
void run_binary_t(const RtStep& s, const ExecCtx& c) {
  const auto* a = static_cast<const float*>(c.ptr[s.in[0]]);
  const auto* b = static_cast<const float*>(c.ptr[s.in[1]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t total = s.mid * (s.outer_batched ? c.batch : 1);  // output elements
  switch (s.code2) {
    case kSame:
      for (std::size_t i = 0; i < total; ++i) y[i] = apply<Op>(a[i], b[i]);
      return;
    case kRowB:
      for (std::size_t r = 0; r < total; r += s.inner) {
        for (std::size_t i = 0; i < s.inner; ++i) y[r + i] = apply<Op>(a[r + i], b[i]);
      }
      return;
    case kRowA:
      for (std::size_t r = 0; r < total; r += s.inner) {
        for (std::size_t i = 0; i < s.inner; ++i) y[r + i] = apply<Op>(a[i], b[r + i]);
      }
      return;
    default:
      break;
  }
  // General broadcasting: an odometer over the output index.
  std::array<std::int64_t, kMaxRank> dims = s.dims, idx{};
  if (s.outer_batched) dims[0] = static_cast<std::int64_t>(c.batch);
  const std::uint32_t r = s.rank;
  std::int64_t oa = 0, ob = 0;
  for (std::size_t i = 0; i < total; ++i) {
    y[i] = apply<Op>(a[oa], b[ob]);
    for (std::uint32_t d = r; d-- > 0;) {
      oa += s.sa[d];
      ob += s.sb[d];
      if (++idx[d] < dims[d]) break;
      oa -= s.sa[d] * dims[d];
      ob -= s.sb[d] * dims[d];
      idx[d] = 0;
    }
  }
}

// Right-aligned numpy broadcasting; the batch dimension of a batched operand
// must be the output's dimension 0.
Status broadcast(const ValueInfo& a, const ValueInfo& b, const ValueInfo& y, RtStep& s) {
  const std::size_t r = std::max(a.rank, b.rank);
  if ((a.batched && a.rank != r) || (b.batched && b.rank != r))
    return unimplemented("broadcasting " + dims_string(a) + " with " + dims_string(b) +
                         " would move the batch dimension");
  const bool batched = a.batched || b.batched;
  std::array<std::int64_t, kMaxRank> out{};
  auto dim_of = [r](const ValueInfo& v, std::size_t p) -> std::int64_t {
    const std::size_t off = r - v.rank;
    return p < off ? 1 : v.dims[p - off];
  };
  for (std::size_t p = 0; p < r; ++p) {
    const std::int64_t da = dim_of(a, p), db = dim_of(b, p);
    if (p == 0 && batched) {
      for (std::int64_t d : {da, db}) {
        if (d != -1 && d != 1)
          return invalid_argument("cannot broadcast fixed dimension " + std::to_string(d) +
                                  " against the batch dimension (" + dims_string(a) + " vs " +
                                  dims_string(b) + ")");
      }
      out[p] = -1;
      continue;
    }
    if (da != db && da != 1 && db != 1)
      return invalid_argument("shapes " + dims_string(a) + " and " + dims_string(b) +
                              " do not broadcast");
    out[p] = da == 1 ? db : da;
  }
  if (y.rank != r || y.batched != batched)
    return invalid_argument("output '" + std::string(y.name) + "' has shape " + dims_string(y));
  for (std::size_t p = 0; p < r; ++p) {
    if (y.dims[p] != out[p])
      return invalid_argument("output '" + std::string(y.name) + "' has shape " + dims_string(y) +
                              ", broadcasting gives another");
  }
  auto strides = [&](const ValueInfo& v, std::array<std::int64_t, kMaxRank>& st) {
    std::int64_t acc = 1;
    const std::size_t off = r - v.rank;
    for (std::size_t p = r; p-- > 0;) {
      if (p < off) {
        st[p] = 0;
        continue;
      }
      const std::int64_t d = v.dims[p - off];
      if (d == -1) {
        st[p] = static_cast<std::int64_t>(v.sample_elems);
      } else {
        st[p] = (d == 1 && out[p] != 1) ? 0 : acc;
        acc *= d;
      }
    }
  };
  strides(a, s.sa);
  strides(b, s.sb);
  s.rank = static_cast<std::uint32_t>(r);
  s.dims = out;
  s.mid = y.sample_elems;
  s.outer_batched = batched;
  // Fast paths.
  auto same = [](const ValueInfo& u, const ValueInfo& v) {
    if (u.rank != v.rank || u.batched != v.batched) return false;
    for (std::size_t i = 0; i < u.rank; ++i) {
      if (u.dims[i] != v.dims[i]) return false;
    }
    return true;
  };
  // `small` repeats along the output when its dims, without leading 1s, are
  // the output's trailing dims.
  auto repeats = [&](const ValueInfo& small, std::uint64_t& inner) {
    if (small.batched) return false;
    std::size_t first = 0;
    while (first < small.rank && small.dims[first] == 1) ++first;
    const std::size_t q = small.rank - first;
    if (q > r || (batched && q == r)) return false;
    for (std::size_t i = 0; i < q; ++i) {
      if (small.dims[first + i] != out[r - q + i]) return false;
    }
    inner = small.sample_elems;
    return inner > 0;
  };
  std::uint64_t inner = 1;
  if (same(a, b) && same(a, y)) {
    s.code2 = kSame;
  } else if (same(a, y) && repeats(b, inner)) {
    s.code2 = kRowB;
    s.inner = inner;
  } else if (same(b, y) && repeats(a, inner)) {
    s.code2 = kRowA;
    s.inner = inner;
  } else {
    s.code2 = kGeneral;
  }
  if (y.sample_elems == 0) s.code2 = kSame;  // nothing to compute
  return {};
}

template <UnaryOp Op>
void run_unary_t(const RtStep& s, const ExecCtx& c) {
  const std::size_t n = s.mid * (s.outer_batched ? c.batch : 1);
  if constexpr (Op == UnaryOp::kCopy) {
    // inner: element size. Zero-element tensors may have null buffers.
    if (n != 0) std::memcpy(c.ptr[s.out[0]], c.ptr[s.in[0]], n * s.inner);
  } else {
    const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
    auto* y = static_cast<float*>(c.ptr[s.out[0]]);
    const float alpha = s.alpha;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = x[i];
      if constexpr (Op == UnaryOp::kRelu) y[i] = v > 0 ? v : 0.0f;
      if constexpr (Op == UnaryOp::kLeakyRelu) y[i] = v >= 0 ? v : alpha * v;
      if constexpr (Op == UnaryOp::kSigmoid) y[i] = 1.0f / (1.0f + std::exp(-v));
      if constexpr (Op == UnaryOp::kTanh) y[i] = std::tanh(v);
      if constexpr (Op == UnaryOp::kBinarize) y[i] = v > alpha ? 1.0f : 0.0f;
    }
  }
}

void run_cast_to_i64(const RtStep& s, const ExecCtx& c) {
  const std::size_t n = s.mid * (s.outer_batched ? c.batch : 1);
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<std::int64_t*>(c.ptr[s.out[0]]);
  for (std::size_t i = 0; i < n; ++i) {
    // Out-of-range and NaN values are undefined in ONNX; clamp to stay defined in C++.
    const float v = x[i];
    y[i] = v != v          ? 0
           : v >= 9.2e18f  ? INT64_MAX
           : v <= -9.2e18f ? INT64_MIN
                           : static_cast<std::int64_t>(v);
  }
}

void run_cast_to_f32(const RtStep& s, const ExecCtx& c) {
  const std::size_t n = s.mid * (s.outer_batched ? c.batch : 1);
  const auto* x = static_cast<const std::int64_t*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]);
}

Status same_count(const ValueInfo& x, const ValueInfo& y) {
  if (x.batched != y.batched || x.sample_elems != y.sample_elems)
    return invalid_argument("input '" + std::string(x.name) + "' " + dims_string(x) +
                            " and output '" + std::string(y.name) + "' " + dims_string(y) +
                            " differ in element count");
  return {};
}

}  // namespace

Status bind_binary(const BindCtx& c, RtStep& s) {
  BinaryParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 2 || c.rec.num_outputs != 1) return data_loss("binary takes 2 inputs");
  const ValueInfo& a = c.values[s.in[0]];
  const ValueInfo& b = c.values[s.in[1]];
  const ValueInfo& y = c.values[s.out[0]];
  for (const ValueInfo* v : {&a, &b, &y})
    MYELIN_RETURN_IF_ERROR(expect_dtype(*v, DType::kF32, "operand"));
  MYELIN_RETURN_IF_ERROR(broadcast(a, b, y, s));
  switch (static_cast<BinaryOp>(p.op)) {
    case BinaryOp::kAdd:
      s.run = run_binary_t<BinaryOp::kAdd>;
      return {};
    case BinaryOp::kSub:
      s.run = run_binary_t<BinaryOp::kSub>;
      return {};
    case BinaryOp::kMul:
      s.run = run_binary_t<BinaryOp::kMul>;
      return {};
    case BinaryOp::kDiv:
      s.run = run_binary_t<BinaryOp::kDiv>;
      return {};
    case BinaryOp::kPow:
      s.run = run_binary_t<BinaryOp::kPow>;
      return {};
    case BinaryOp::kPRelu:
      s.run = run_binary_t<BinaryOp::kPRelu>;
      return {};
  }
  return data_loss("unknown binary op " + std::to_string(p.op));
}

Status bind_unary(const BindCtx& c, RtStep& s) {
  UnaryParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1) return data_loss("unary takes 1 input");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(same_count(x, y));
  s.mid = x.sample_elems;
  s.outer_batched = x.batched;
  s.alpha = p.alpha;
  s.code = p.op;  // lets fuse_dense_relu() recognise a ReLU
  const auto op = static_cast<UnaryOp>(p.op);
  if (op == UnaryOp::kCopy) {
    if (x.dtype != y.dtype) return invalid_argument("copy changes the dtype");
    s.inner = dtype_size(x.dtype);
    s.run = run_unary_t<UnaryOp::kCopy>;
    return {};
  }
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  switch (op) {
    case UnaryOp::kRelu:
      s.run = run_unary_t<UnaryOp::kRelu>;
      return {};
    case UnaryOp::kLeakyRelu:
      s.run = run_unary_t<UnaryOp::kLeakyRelu>;
      return {};
    case UnaryOp::kSigmoid:
      s.run = run_unary_t<UnaryOp::kSigmoid>;
      return {};
    case UnaryOp::kTanh:
      s.run = run_unary_t<UnaryOp::kTanh>;
      return {};
    case UnaryOp::kBinarize:
      s.run = run_unary_t<UnaryOp::kBinarize>;
      return {};
    default:
      return data_loss("unknown unary op " + std::to_string(p.op));
  }
}

Status bind_cast(const BindCtx& c, RtStep& s) {
  CastParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1) return data_loss("cast takes 1 input");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(same_count(x, y));
  s.mid = x.sample_elems;
  s.outer_batched = x.batched;
  if (p.to == static_cast<std::uint32_t>(CastTo::kI64)) {
    MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
    MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kI64, "output"));
    s.run = run_cast_to_i64;
    return {};
  }
  if (p.to == static_cast<std::uint32_t>(CastTo::kF32)) {
    MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kI64, "input"));
    MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
    s.run = run_cast_to_f32;
    return {};
  }
  return data_loss("unknown cast target " + std::to_string(p.to));
}

}  // namespace myelin::model::detail
