// ai.onnx.ml operators (trees: import_tree.cc) → plan steps.
#include <onnx/onnx_pb.h>

#include <algorithm>

#include "src/model/onnx_import.h"

namespace myelin::model::detail {
namespace {

// The feature matrix of an ML op: [rows, F] float with F fixed.
Result<std::uint32_t> features(Importer& im, const onnx::NodeProto& n, std::uint32_t& f) {
  if (n.input_size() != 1 || n.output_size() < 1) return invalid_argument("expected 1 input");
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape& s = im.shapes[x];
  if (s.dtype != DType::kF32 || s.dims.size() != 2)
    return invalid_argument("input '" + n.input(0) + "' has shape " + s.str() +
                            "; expected [N, features] float");
  f = static_cast<std::uint32_t>(s.dims[1]);
  return x;
}

Status linear_regressor(Importer& im, const onnx::NodeProto& n) {
  std::uint32_t f = 0;
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, features(im, n, f));
  std::vector<float> coef = im.attr_floats("coefficients"), icpt = im.attr_floats("intercepts");
  const auto targets = static_cast<std::uint32_t>(im.attr_i("targets", 1));
  MYELIN_ASSIGN_OR_RETURN(const PostTransform post,
                          parse_post_transform(im.attr_s("post_transform", "NONE")));
  if (post != PostTransform::kNone)
    return unimplemented("LinearRegressor post_transform other than NONE");
  if (targets == 0 || coef.size() != std::size_t{targets} * f)
    return invalid_argument(std::to_string(coef.size()) + " coefficients for " +
                            std::to_string(targets) + " targets and " + std::to_string(f) +
                            " features");
  if (!icpt.empty() && icpt.size() != targets)
    return invalid_argument(std::to_string(icpt.size()) + " intercepts for " +
                            std::to_string(targets) + " targets");
  const VShape xs = im.shapes[x];
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, {xs.dims[0], targets});
  DenseParams p{f, targets, im.b.add_array<float>(coef),
                icpt.empty() ? Ref{} : im.b.add_array<float>(icpt)};
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kDense, in, outs, p);
  return {};
}

Status linear_classifier(Importer& im, const onnx::NodeProto& n) {
  std::uint32_t f = 0;
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, features(im, n, f));
  if (!im.attr_strings("classlabels_strings").empty())
    return unimplemented("string class labels (use classlabels_ints)");
  std::vector<std::int64_t> labels = im.attr_ints("classlabels_ints");
  std::vector<float> coef = im.attr_floats("coefficients"), icpt = im.attr_floats("intercepts");
  MYELIN_ASSIGN_OR_RETURN(const PostTransform post,
                          parse_post_transform(im.attr_s("post_transform", "NONE")));
  if (f == 0 || coef.size() % f != 0)
    return invalid_argument(std::to_string(coef.size()) + " coefficients for " + std::to_string(f) +
                            " features");
  const auto classes = static_cast<std::uint32_t>(coef.size() / f);
  const bool binary = classes == 1 && labels.size() == 2;
  if (classes == 0 || (!binary && labels.size() != classes))
    return invalid_argument(std::to_string(labels.size()) + " labels for " +
                            std::to_string(classes) + " coefficient rows");
  if (!icpt.empty() && icpt.size() != classes)
    return invalid_argument("intercepts do not match the classes");
  if (binary && post != PostTransform::kNone && post != PostTransform::kLogistic)
    return unimplemented("binary LinearClassifier with post_transform other than NONE or LOGISTIC");
  const VShape xs = im.shapes[x];
  const std::uint32_t scores = im.temp("scores", DType::kF32, xs.batched, {xs.dims[0], classes});
  DenseParams p{f, classes, im.b.add_array<float>(coef),
                icpt.empty() ? Ref{} : im.b.add_array<float>(icpt)};
  const std::uint32_t in[] = {x}, mid[] = {scores};
  im.step(OpKind::kDense, in, mid, p);
  const auto nl = static_cast<std::int64_t>(labels.size());
  const std::uint32_t label = im.define(n.output(0), DType::kI64, xs.batched, {xs.dims[0]});
  const std::uint32_t prob =
      n.output_size() > 1 && !n.output(1).empty()
          ? im.define(n.output(1), DType::kF32, xs.batched, {xs.dims[0], nl})
          : im.temp("probabilities", DType::kF32, xs.batched, {xs.dims[0], nl});
  const std::uint32_t outs[] = {label, prob};
  im.step(OpKind::kClassifierPost, mid, outs,
          ClassifierPostParams{
              static_cast<std::uint32_t>(post),
              // ONNX Runtime writes [1-s, s] (label s > 0) without a transform.
              static_cast<std::uint32_t>(binary ? BinaryMode::kComplement : BinaryMode::kNone),
              im.b.add_array<std::int64_t>(labels)});
  return {};
}

Status rowwise(Importer& im, const onnx::NodeProto& n, OpKind op, Ref a, Ref b,
               std::uint32_t code) {
  if (n.input_size() != 1 || n.output_size() < 1) return invalid_argument("expected 1 input");
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  if (op == OpKind::kScaler) im.step(op, in, outs, ScalerParams{a, b});
  if (op == OpKind::kNormalizer) im.step(op, in, outs, NormalizerParams{code, 0});
  return {};
}

Status scaler(Importer& im, const onnx::NodeProto& n) {
  std::vector<float> offset = im.attr_floats("offset"), scale = im.attr_floats("scale");
  if (offset.empty()) offset = {0.0f};
  if (scale.empty()) scale = {1.0f};
  return rowwise(im, n, OpKind::kScaler, im.b.add_array<float>(offset),
                 im.b.add_array<float>(scale), 0);
}

Status normalizer(Importer& im, const onnx::NodeProto& n) {
  const std::string norm = im.attr_s("norm", "MAX");
  const Norm code = norm == "MAX"  ? Norm::kMax
                    : norm == "L1" ? Norm::kL1
                    : norm == "L2" ? Norm::kL2
                                   : Norm{99};
  if (static_cast<std::uint32_t>(code) == 99)
    return invalid_argument("norm '" + norm + "' is not MAX, L1 or L2");
  return rowwise(im, n, OpKind::kNormalizer, {}, {}, static_cast<std::uint32_t>(code));
}

Status binarizer(Importer& im, const onnx::NodeProto& n) {
  if (n.input_size() != 1 || n.output_size() < 1) return invalid_argument("expected 1 input");
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  const std::uint32_t y = im.define(n.output(0), DType::kF32, xs.batched, xs.dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(
      OpKind::kUnary, in, outs,
      UnaryParams{static_cast<std::uint32_t>(UnaryOp::kBinarize), im.attr_f("threshold", 0.0f)});
  return {};
}

// ZipMap's output is a sequence of maps, which a tensor API cannot carry. myelin
// exposes the probabilities tensor under ZipMap's output name instead
// (docs/model-format.md, "ZipMap").
Status zipmap(Importer& im, const onnx::NodeProto& n) {
  if (n.input_size() != 1 || n.output_size() != 1) return invalid_argument("expected 1 input");
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t x, im.operand(n.input(0)));
  const VShape xs = im.shapes[x];
  // Column i is the probability of label i: the counts must agree.
  const std::size_t labels = std::max(im.attr_ints("classlabels_int64s").size(),
                                      im.attr_strings("classlabels_strings").size());
  if (xs.dims.size() != 2 || xs.dims[1] < 0 || static_cast<std::size_t>(xs.dims[1]) != labels)
    return invalid_argument("input '" + n.input(0) + "' has shape " + xs.str() + " but " +
                            std::to_string(labels) + " class labels; expected [N, " +
                            std::to_string(labels) + "]");
  const std::uint32_t y = im.define(n.output(0), xs.dtype, xs.batched, xs.dims);
  const std::uint32_t in[] = {x}, outs[] = {y};
  im.step(OpKind::kUnary, in, outs, UnaryParams{static_cast<std::uint32_t>(UnaryOp::kCopy), 0});
  return {};
}

}  // namespace

Status compile_ml(Importer& im, const onnx::NodeProto& n, bool& known) {
  known = true;
  const std::string& op = n.op_type();
  if (op == "LinearRegressor") return linear_regressor(im, n);
  if (op == "LinearClassifier") return linear_classifier(im, n);
  if (op == "TreeEnsembleRegressor") return compile_tree(im, n, false);
  if (op == "TreeEnsembleClassifier") return compile_tree(im, n, true);
  if (op == "Scaler") return scaler(im, n);
  if (op == "Normalizer") return normalizer(im, n);
  if (op == "Binarizer") return binarizer(im, n);
  if (op == "ZipMap") return zipmap(im, n);
  known = false;
  return {};
}

}  // namespace myelin::model::detail
