// Dense (constant weights, SIMD kernels) and general MatMul/Gemm steps.
#include <cstring>
#include <string>

#include "src/model/gemm.h"
#include "src/model/plan.h"

namespace myelin::model::detail {
namespace {

const float* fptr(const ExecCtx& c, std::uint32_t id) {
  return static_cast<const float*>(c.ptr[id]);
}
float* fout(const ExecCtx& c, std::uint32_t id) { return static_cast<float*>(c.ptr[id]); }

// s.aux: the packed weights (gemm.h); s.code: 1 when a ReLU is fused in.
void run_dense(const RtStep& s, const ExecCtx& c) {
  const std::size_t rows = s.outer * (s.outer_batched ? c.batch : 1);
  float* y = fout(c, s.out[0]);
  if (rows >= 2) {
    c.k->gemm(fptr(c, s.in[0]), rows, *static_cast<const PackedWeights*>(s.aux), s.code != 0, y);
    return;
  }
  // One sample: the GEMV kernel on the weights as stored (no packing pays
  // off for a single pass over them), then the fused ReLU if any.
  c.k->dense(fptr(c, s.in[0]), rows, s.mid, s.f0, s.inner, s.f1, y);
  if (s.code != 0) {
    for (std::size_t j = 0; j < rows * s.inner; ++j) y[j] = y[j] > 0 ? y[j] : 0.0f;
  }
}

// One output per row (linear regressors, binary classifiers): a dot product
// per row, called directly, which is all the general kernel does for n == 1
// after its own set-up (measured: that set-up cost more than a 100-feature dot).
[[gnu::noinline]] void dense_n1_rows(const RtStep& s, const ExecCtx& c, std::size_t rows) {
  const float* x = fptr(c, s.in[0]);
  float* y = fout(c, s.out[0]);
  const std::size_t k = s.mid;
  const float bias = s.f1 != nullptr ? s.f1[0] : 0.0f;
  for (std::size_t r = 0; r < rows; ++r) y[r] = c.k->dot(x + r * k, s.f0, k) + bias;
}

void run_dense_n1(const RtStep& s, const ExecCtx& c) {
  const std::size_t rows = s.outer * (s.outer_batched ? c.batch : 1);
  if (rows != 1) return dense_n1_rows(s, c, rows);
  // One sample: no loop, so no frame to set up around the call.
  fout(c, s.out[0])[0] =
      c.k->dot(fptr(c, s.in[0]), s.f0, s.mid) + (s.f1 != nullptr ? s.f1[0] : 0.0f);
}

// Reference-style loops: MatMul with a runtime B is rare in the models this
// runtime targets (it appears in ONNX's node tests), so clarity wins.
void run_matmul(const RtStep& s, const ExecCtx& c) {
  const float* a = fptr(c, s.in[0]);
  const float* b = fptr(c, s.in[1]);
  const float* cc = (s.code & 4) ? fptr(c, s.in[2]) : nullptr;
  float* y = fout(c, s.out[0]);
  const bool ta = s.code & 1, tb = s.code & 2;
  const std::size_t m = s.code2 ? c.batch : static_cast<std::size_t>(s.dims[0]);
  const auto k = static_cast<std::size_t>(s.dims[1]);
  const auto n = static_cast<std::size_t>(s.dims[2]);
  const bool b_shared = s.dims[3] != 0;
  const std::size_t lead = s.outer * (s.outer_batched ? c.batch : 1);
  for (std::size_t l = 0; l < lead; ++l) {
    const float* al = a + l * m * k;
    const float* bl = b_shared ? b : b + l * k * n;
    float* yl = y + l * m * n;
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        float acc = 0;
        for (std::size_t p = 0; p < k; ++p) {
          const float av = ta ? al[p * m + i] : al[i * k + p];
          const float bv = tb ? bl[j * k + p] : bl[p * n + j];
          acc += av * bv;
        }
        float v = s.alpha * acc;
        if (cc)
          v += s.beta *
               cc[static_cast<std::size_t>(s.sa[0]) * i + static_cast<std::size_t>(s.sa[1]) * j];
        yl[i * n + j] = v;
      }
    }
  }
}

bool same_dims_except_last(const ValueInfo& a, const ValueInfo& b) {
  if (a.rank != b.rank || a.batched != b.batched) return false;
  for (std::size_t d = 0; d + 1 < a.rank; ++d) {
    if (a.dims[d] != b.dims[d]) return false;
  }
  return true;
}

}  // namespace

Status bind_dense(const BindCtx& c, RtStep& s) {
  DenseParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1)
    return data_loss("dense takes 1 input and 1 output");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  if (x.rank < (x.batched ? 2u : 1u) || x.dims[x.rank - 1] != p.k)
    return invalid_argument("input '" + std::string(x.name) + "' has shape " + dims_string(x) +
                            ", expected last dimension " + std::to_string(p.k));
  if (!same_dims_except_last(x, y) || y.dims[y.rank - 1] != p.n)
    return invalid_argument("output '" + std::string(y.name) + "' has shape " + dims_string(y) +
                            ", expected " + dims_string(x) + " with last dimension " +
                            std::to_string(p.n));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* w,
                          resolve(c.img, p.weights, 4, std::size_t{p.n} * p.k, "weights"));
  const std::size_t bias_count = p.bias.len == 0 ? 0 : p.n;
  MYELIN_ASSIGN_OR_RETURN(const std::byte* b, resolve(c.img, p.bias, 4, bias_count, "bias"));
  s.f0 = reinterpret_cast<const float*>(w);
  s.f1 = reinterpret_cast<const float*>(b);
  std::uint64_t outer = 0, axis_len = 0, inner = 0;
  split_at(x, x.rank - 1, outer, axis_len, inner);
  s.outer = outer;
  s.outer_batched = x.batched;
  s.mid = p.k;
  s.inner = p.n;
  if (p.n == 1) {
    s.run = run_dense_n1;
    return {};
  }
  std::shared_ptr<PackedWeights> packed = pack_weights(s.f0, p.k, p.n, s.f1);
  if (!packed)
    return resource_exhausted("packing the weights of a " + std::to_string(p.n) + "x" +
                              std::to_string(p.k) + " dense layer");
  s.aux = packed.get();
  s.keepalive = std::move(packed);
  s.run = run_dense;
  return {};
}

void fuse_dense_relu(Plan& plan) {
  auto& steps = plan.steps;
  std::vector<std::uint32_t> readers(plan.values.size(), 0);
  for (const RtStep& s : steps) {
    for (std::uint32_t id : s.in) ++readers[id];
  }
  for (std::uint32_t id : plan.output_ids) ++readers[id];
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
    RtStep& d = steps[i];
    const RtStep& r = steps[i + 1];
    if (d.run != run_dense || d.code != 0 || r.op != OpKind::kUnary ||
        r.code != static_cast<std::uint32_t>(UnaryOp::kRelu) || r.in.size() != 1 ||
        r.out.size() != 1 || r.in[0] != d.out[0] || readers[d.out[0]] != 1)
      continue;
    // The ReLU's output is now written by the dense step; the dense step's
    // own output value keeps its (unused) workspace slot.
    d.out = r.out;
    d.code = 1;
    steps.erase(steps.begin() + static_cast<std::ptrdiff_t>(i) + 1);
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    for (std::uint32_t id : steps[i].out) plan.values[id].producer = static_cast<std::int32_t>(i);
  }
}

Status bind_matmul(const BindCtx& c, RtStep& s) {
  MatMulParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != (p.has_c ? 3u : 2u) || c.rec.num_outputs != 1 || p.has_c > 1 ||
      p.trans_a > 1 || p.trans_b > 1)
    return data_loss("matmul: bad operand count or flags");
  const ValueInfo& a = c.values[s.in[0]];
  const ValueInfo& b = c.values[s.in[1]];
  const ValueInfo& y = c.values[s.out[0]];
  for (const ValueInfo* v : {&a, &b, &y})
    MYELIN_RETURN_IF_ERROR(expect_dtype(*v, DType::kF32, "operand"));
  if (a.rank < 2 || b.rank < 2)
    return unimplemented("MatMul/Gemm operands must have rank >= 2, got " + dims_string(a) +
                         " and " + dims_string(b));
  // A batched B (attention-like scores): both operands are per sample, of
  // equal rank >= 3, and each sample's matrices multiply on their own.
  if (b.batched && (!a.batched || a.rank != b.rank || a.rank < 3))
    return unimplemented(
        "MatMul/Gemm with a batched right-hand side needs a batched left-hand "
        "side of the same rank >= 3, got " +
        dims_string(a) + " x " + dims_string(b));
  const bool m_batch = a.batched && a.rank == 2;
  if ((p.trans_a || p.trans_b || p.has_c) && a.rank != 2)
    return unimplemented("Gemm transposes and C need rank-2 operands");
  if (m_batch && p.trans_a) return unimplemented("Gemm transA on a batched input");
  const std::int64_t m = m_batch ? 0 : a.dims[a.rank - (p.trans_a ? 1 : 2)];
  const std::int64_t k = a.dims[a.rank - (p.trans_a ? 2 : 1)];
  const std::int64_t kb = b.dims[b.rank - (p.trans_b ? 1 : 2)];
  const std::int64_t n = b.dims[b.rank - (p.trans_b ? 2 : 1)];
  if (k != kb)
    return invalid_argument("inner dimensions differ: " + dims_string(a) + " x " + dims_string(b));
  const bool b_shared = b.rank == 2;
  if (!b_shared) {
    if (b.rank != a.rank || a.batched != b.batched)
      return unimplemented("MatMul broadcasting beyond equal leading dimensions");
    for (std::size_t d = 0; d + 2 < a.rank; ++d) {
      if (a.dims[d] != b.dims[d])
        return unimplemented("MatMul leading dimensions differ: " + dims_string(a) + " x " +
                             dims_string(b));
    }
  }
  // Y = leading dims of A, then [M, N].
  if (y.rank != a.rank || y.batched != a.batched)
    return invalid_argument("output '" + std::string(y.name) + "' has shape " + dims_string(y));
  for (std::size_t d = 0; d + 2 < a.rank; ++d) {
    if (y.dims[d] != a.dims[d]) return invalid_argument("output leading dimensions differ");
  }
  if ((!m_batch && y.dims[y.rank - 2] != m) || y.dims[y.rank - 1] != n)
    return invalid_argument("output '" + std::string(y.name) + "' has shape " + dims_string(y) +
                            ", expected [..., " + std::to_string(m) + ", " + std::to_string(n) +
                            "]");
  if (p.has_c) {
    const ValueInfo& cv = c.values[s.in[2]];
    MYELIN_RETURN_IF_ERROR(expect_dtype(cv, DType::kF32, "C"));
    if (cv.batched || cv.rank > 2)
      return unimplemented("Gemm C must be a fixed tensor of rank <= 2");
    const std::int64_t cm = cv.rank == 2 ? cv.dims[0] : 1;
    const std::int64_t cn = cv.rank >= 1 ? cv.dims[cv.rank - 1] : 1;
    if ((cm != 1 && (m_batch || cm != m)) || (cn != 1 && cn != n))
      return invalid_argument("C of shape " + dims_string(cv) + " does not broadcast to [M, N]");
    s.sa[0] = cm == 1 ? 0 : cn;
    s.sa[1] = cn == 1 ? 0 : 1;
  }
  std::uint64_t lead = 1;
  for (std::size_t d = 0; d + 2 < a.rank; ++d) {
    if (!(d == 0 && a.batched)) lead *= static_cast<std::uint64_t>(a.dims[d]);
  }
  s.outer = lead;
  s.outer_batched = a.batched && !m_batch;
  s.code = p.trans_a | (p.trans_b << 1) | (p.has_c << 2);
  s.code2 = m_batch ? 1 : 0;
  s.dims[0] = m;
  s.dims[1] = k;
  s.dims[2] = n;
  s.dims[3] = b_shared ? 1 : 0;
  s.alpha = p.alpha;
  s.beta = p.beta;
  s.run = run_matmul;
  return {};
}

}  // namespace myelin::model::detail
