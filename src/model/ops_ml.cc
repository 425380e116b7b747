// ai.onnx.ml row-wise steps: Scaler, Normalizer, classifier labels and
// probabilities, regressor post transforms.
#include <cmath>
#include <cstring>
#include <string>

#include "src/model/plan.h"

namespace myelin::model::detail {
namespace {

std::size_t rows_of(const RtStep& s, const ExecCtx& c) {
  return s.outer * (s.outer_batched ? c.batch : 1);
}

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// Applies `post` to one row of n scores in place.
void transform_row(PostTransform post, float* z, std::size_t n) {
  switch (post) {
    case PostTransform::kLogistic:
      for (std::size_t i = 0; i < n; ++i) z[i] = sigmoid(z[i]);
      return;
    case PostTransform::kSoftmax:
    case PostTransform::kSoftmaxZero: {
      const bool zero = post == PostTransform::kSoftmaxZero;
      float mx = -INFINITY;
      for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, z[i]);
      float sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        z[i] = (zero && z[i] == 0.0f) ? 0.0f : std::exp(z[i] - mx);
        sum += z[i];
      }
      if (sum > 0) {
        for (std::size_t i = 0; i < n; ++i) z[i] /= sum;
      }
      return;
    }
    default:
      return;
  }
}

void run_scaler(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), f = s.inner;
  const bool one_off = s.code != 0, one_scale = s.code2 != 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < f; ++i) {
      y[r * f + i] = (x[r * f + i] - s.f0[one_off ? 0 : i]) * s.f1[one_scale ? 0 : i];
    }
  }
}

void run_normalizer(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), f = s.inner;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * f;
    float* yr = y + r * f;
    float norm = 0;
    switch (static_cast<Norm>(s.code)) {
      case Norm::kMax:
        norm = -INFINITY;
        for (std::size_t i = 0; i < f; ++i) norm = std::max(norm, xr[i]);
        break;
      case Norm::kL1:
        for (std::size_t i = 0; i < f; ++i) norm += std::fabs(xr[i]);
        break;
      case Norm::kL2:
        for (std::size_t i = 0; i < f; ++i) norm += xr[i] * xr[i];
        norm = std::sqrt(norm);
        break;
    }
    // ONNX Runtime leaves a zero-norm row unchanged rather than dividing by 0.
    for (std::size_t i = 0; i < f; ++i) yr[i] = norm != 0 ? xr[i] / norm : xr[i];
  }
}

void run_classifier_post(const RtStep& s, const ExecCtx& c) {
  const auto* z = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* label = static_cast<std::int64_t*>(c.ptr[s.out[0]]);
  auto* prob = static_cast<float*>(c.ptr[s.out[1]]);
  const std::size_t rows = rows_of(s, c), cols = s.mid, nl = s.inner;
  const auto post = static_cast<PostTransform>(s.code);
  const auto mode = static_cast<BinaryMode>(s.code2);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* zr = z + r * cols;
    float* pr = prob + r * nl;
    if (mode == BinaryMode::kNone) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < cols; ++i) {
        if (zr[i] > zr[best]) best = i;
      }
      label[r] = s.labels[best];
      std::memcpy(pr, zr, cols * sizeof(float));
      transform_row(post, pr, cols);
      continue;
    }
    const float v = zr[0];
    if (mode == BinaryMode::kSecondZero || mode == BinaryMode::kSecondHalf) {
      // The first label carries no weights: its score is 0, transformed like the other.
      pr[0] = post == PostTransform::kLogistic ? 0.5f : 0.0f;
      pr[1] = post == PostTransform::kLogistic ? sigmoid(v) : v;
      label[r] = s.labels[v > (mode == BinaryMode::kSecondHalf ? 0.5f : 0.0f) ? 1 : 0];
    } else if (post == PostTransform::kLogistic) {
      const float p = sigmoid(v);
      pr[0] = 1.0f - p;
      pr[1] = p;
      label[r] = s.labels[p > 0.5f ? 1 : 0];
    } else if (mode == BinaryMode::kSigned) {
      pr[0] = -v;
      pr[1] = v;
      label[r] = s.labels[v > 0 ? 1 : 0];
    } else {
      pr[0] = 1.0f - v;
      pr[1] = v;
      label[r] = s.labels[v > (mode == BinaryMode::kComplement ? 0.0f : 0.5f) ? 1 : 0];
    }
  }
}

void run_post_transform(const RtStep& s, const ExecCtx& c) {
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = rows_of(s, c), n = s.inner;
  if (rows * n != 0) std::memcpy(y, x, rows * n * sizeof(float));
  for (std::size_t r = 0; r < rows; ++r)
    transform_row(static_cast<PostTransform>(s.code), y + r * n, n);
}

// Row-wise ops see X as [rows, last dim].
Status rowwise(const ValueInfo& x, const ValueInfo& y, RtStep& s) {
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  if (x.rank < (x.batched ? 2u : 1u))
    return invalid_argument("input '" + std::string(x.name) + "' " + dims_string(x) +
                            " has no feature dimension");
  bool same = x.rank == y.rank && x.batched == y.batched;
  for (std::size_t d = 0; same && d < x.rank; ++d) same = x.dims[d] == y.dims[d];
  if (!same)
    return invalid_argument("output shape " + dims_string(y) + " differs from input " +
                            dims_string(x));
  std::uint64_t outer = 0, len = 0, inner = 0;
  split_at(x, x.rank - 1, outer, len, inner);
  s.outer = outer;
  s.outer_batched = x.batched;
  s.inner = len;
  return {};
}

}  // namespace

Status bind_scaler(const BindCtx& c, RtStep& s) {
  ScalerParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1) return data_loss("scaler takes 1 input");
  MYELIN_RETURN_IF_ERROR(rowwise(c.values[s.in[0]], c.values[s.out[0]], s));
  const std::size_t no = p.offset.len / 4, ns = p.scale.len / 4;
  if ((no != 1 && no != s.inner) || (ns != 1 && ns != s.inner))
    return invalid_argument("Scaler offset/scale have " + std::to_string(no) + "/" +
                            std::to_string(ns) + " values; expected 1 or " +
                            std::to_string(s.inner));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* off, resolve(c.img, p.offset, 4, no, "offset"));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* sc, resolve(c.img, p.scale, 4, ns, "scale"));
  s.f0 = reinterpret_cast<const float*>(off);
  s.f1 = reinterpret_cast<const float*>(sc);
  s.code = no == 1;
  s.code2 = ns == 1;
  s.run = run_scaler;
  return {};
}

Status bind_normalizer(const BindCtx& c, RtStep& s) {
  NormalizerParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1) return data_loss("normalizer takes 1 input");
  if (p.norm > static_cast<std::uint32_t>(Norm::kL2)) return data_loss("unknown norm");
  MYELIN_RETURN_IF_ERROR(rowwise(c.values[s.in[0]], c.values[s.out[0]], s));
  s.code = p.norm;
  s.run = run_normalizer;
  return {};
}

Status bind_post_transform(const BindCtx& c, RtStep& s) {
  PostTransformParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1)
    return data_loss("post_transform takes 1 input");
  if (p.post > static_cast<std::uint32_t>(PostTransform::kSoftmaxZero))
    return data_loss("unsupported post transform " + std::to_string(p.post));
  MYELIN_RETURN_IF_ERROR(rowwise(c.values[s.in[0]], c.values[s.out[0]], s));
  s.code = p.post;
  s.run = run_post_transform;
  return {};
}

Status bind_classifier_post(const BindCtx& c, RtStep& s) {
  ClassifierPostParams p;
  std::memcpy(&p, c.params, sizeof(p));
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 2)
    return data_loss("classifier_post takes 1 input and 2 outputs");
  if (p.post > static_cast<std::uint32_t>(PostTransform::kSoftmaxZero) ||
      p.binary_mode > static_cast<std::uint32_t>(BinaryMode::kSecondHalf))
    return data_loss("unsupported post transform or binary mode");
  const ValueInfo& z = c.values[s.in[0]];
  const ValueInfo& label = c.values[s.out[0]];
  const ValueInfo& prob = c.values[s.out[1]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(z, DType::kF32, "scores"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(label, DType::kI64, "label"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(prob, DType::kF32, "probabilities"));
  if (z.rank != 2 || label.rank != 1 || prob.rank != 2 || z.batched != label.batched ||
      z.batched != prob.batched || z.dims[0] != label.dims[0] || z.dims[0] != prob.dims[0])
    return invalid_argument("classifier shapes " + dims_string(z) + " -> " + dims_string(label) +
                            ", " + dims_string(prob) +
                            " are not [rows, c] -> [rows], [rows, labels]");
  const std::size_t nl = p.labels.len / 8;
  const auto cols = static_cast<std::size_t>(z.dims[1]);
  const bool binary = p.binary_mode != 0;
  if (nl == 0 || static_cast<std::size_t>(prob.dims[1]) != nl ||
      (binary ? (cols != 1 || nl != 2) : cols != nl))
    return invalid_argument(std::to_string(nl) + " labels do not fit scores " + dims_string(z) +
                            " and probabilities " + dims_string(prob));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* labels, resolve(c.img, p.labels, 8, nl, "labels"));
  s.labels = reinterpret_cast<const std::int64_t*>(labels);
  s.outer = z.batched ? 1 : static_cast<std::uint64_t>(z.dims[0]);
  s.outer_batched = z.batched;
  s.mid = cols;
  s.inner = nl;
  s.code = p.post;
  s.code2 = p.binary_mode;
  s.run = run_classifier_post;
  return {};
}

}  // namespace myelin::model::detail
