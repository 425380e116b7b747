// The .mylm plan layout (docs/model-format.md is the prose version).
//
// One flat little-endian file: a header, 64-byte-aligned arrays, then the
// value, I/O and step tables. Every reference is a (byte offset, byte
// length) pair from the start of the file, so the file works in place once
// mapped. The ONNX importer writes these same bytes in memory, so there is
// one runtime format and one validator (plan.cc) whatever the source.
// All structs here are wire layout: fixed-size fields, no pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace myelin::model::detail {

inline constexpr char kMagic[8] = {'M', 'Y', 'E', 'L', 'I', 'N', 'M', 'L'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kAlign = 64;  // arrays start on cache lines (AVX-512 loads)
inline constexpr std::size_t kMaxRank = 8;

struct Ref {
  std::uint64_t off = 0;  // bytes from the start of the file
  std::uint64_t len = 0;  // bytes
};

struct FileHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;  // sizeof(FileHeader)
  std::uint64_t file_size;
  std::uint32_t checksum;  // CRC-32C of bytes [header_size, file_size)
  std::uint32_t flags;     // 0
  std::uint32_t num_values;
  std::uint32_t num_inputs;
  std::uint32_t num_outputs;
  std::uint32_t num_steps;
  Ref values;  // ValueRec[num_values]
  Ref io;      // u32[num_inputs + num_outputs]: value ids
  Ref steps;   // StepRec[num_steps]
};
static_assert(sizeof(FileHeader) == 96);

enum class ValueKind : std::uint8_t { kInput = 0, kConstant = 1, kIntermediate = 2 };

struct ValueRec {
  Ref name;                     // UTF-8, not terminated
  Ref data;                     // constants only: the elements
  std::uint8_t dtype;           // DType id: f32 (1) or i64 (6)
  std::uint8_t declared_dtype;  // DType id from the source file (f64 for double inputs)
  std::uint8_t kind;            // ValueKind
  std::uint8_t rank;
  std::uint8_t batched;  // 1: dims[0] is the batch dimension, stored as -1
  std::uint8_t pad[3];
  std::int64_t dims[kMaxRank];
};
static_assert(sizeof(ValueRec) == 104);

// Plan operations. Codes are part of the file format: append only.
enum class OpKind : std::uint32_t {
  kDense = 1,       // Y = X · Wᵀ + b over the last axis (Gemm/MatMul with constant B, Linear*)
  kMatMul = 2,      // general (Gemm with runtime B, batched MatMul)
  kBinary = 3,      // Add Sub Mul Div with broadcasting
  kUnary = 4,       // Relu LeakyRelu Sigmoid Tanh Binarizer, copies (Identity, Reshape, ...)
  kSoftmax = 5,     // Softmax, LogSoftmax
  kArgMax = 6,      // -> int64
  kConcat = 7,      //
  kScaler = 8,      // (x - offset) * scale over the last axis
  kNormalizer = 9,  // MAX, L1, L2 per row
  kTreeEnsemble = 10,    // raw scores [rows, targets]
  kClassifierPost = 11,  // scores -> label (int64) + probabilities
  kPostTransform = 12,   // regressor post_transform per row
  kCast = 13,            // f32 <-> i64
  kActivation = 14,      // Erf Elu Softplus Clip Sqrt Pow Exp ... (ActParams)
  kTranspose = 15,       // permutes axes; a batched value keeps axis 0 first
  kReduce = 16,          // ReduceSum/Mean/Max/Min/Prod/L1/L2/... over adjacent axes
  kLayerNorm = 17,       // LayerNormalization over the trailing axes
  kGather = 18,          // Gather with constant indices
  kExpand = 19,          // broadcast copy (Expand, ConstantOfShape of a batch shape)
};
std::string_view to_string(OpKind op) noexcept;

struct StepRec {
  std::uint32_t op;  // OpKind
  std::uint32_t num_inputs;
  std::uint32_t num_outputs;
  std::uint32_t pad;
  Ref name;    // node name
  Ref ids;     // u32[num_inputs + num_outputs]
  Ref params;  // the op's *Params struct below
};
static_assert(sizeof(StepRec) == 64);

// Post transforms (ai.onnx.ml post_transform attribute).
enum class PostTransform : std::uint32_t {
  kNone = 0,
  kLogistic = 1,
  kSoftmax = 2,
  kSoftmaxZero = 3,
  kProbit = 4
};

struct DenseParams {
  std::uint32_t k, n;  // X's last dim, Y's last dim
  Ref weights;         // f32[n * k], row j = the weights of output j
  Ref bias;            // f32[n] or empty
};

struct MatMulParams {
  std::uint8_t trans_a, trans_b, has_c, pad;  // C is input 2 when has_c
  float alpha, beta;
};

enum class BinaryOp : std::uint32_t {
  kAdd = 0,
  kSub = 1,
  kMul = 2,
  kDiv = 3,
  kPow = 4,
  kPRelu = 5,  // a < 0 ? a * b : a (b = slope)
};
struct BinaryParams {
  std::uint32_t op;  // BinaryOp
};

enum class UnaryOp : std::uint32_t {
  kCopy = 0,  // Identity, Reshape, Flatten, ZipMap (as probabilities), f64->f32 Cast
  kRelu = 1,
  kLeakyRelu = 2,  // alpha
  kSigmoid = 3,
  kTanh = 4,
  kBinarize = 5,  // alpha = threshold
};
struct UnaryParams {
  std::uint32_t op;  // UnaryOp
  float alpha;
};

struct SoftmaxParams {
  std::int32_t axis;    // normalised, >= 0
  std::uint8_t log;     // LogSoftmax
  std::uint8_t legacy;  // opset < 13: coerce to 2-D at axis
  std::uint8_t pad[2];
};

struct ArgMaxParams {
  std::int32_t axis;  // normalised, >= 0
  std::uint8_t keepdims, select_last, pad[2];
};

struct ConcatParams {
  std::int32_t axis;  // normalised, >= 0
  std::uint32_t pad;
};

struct ScalerParams {
  Ref offset;  // f32[1] or f32[last dim]
  Ref scale;   // same length as offset
};

enum class Norm : std::uint32_t { kMax = 0, kL1 = 1, kL2 = 2 };
struct NormalizerParams {
  std::uint32_t norm;  // Norm
  std::uint32_t pad;
};

// Classifier post-processing: scores [rows, c] -> label [rows] (int64) and
// probabilities [rows, num_labels].
enum class BinaryMode : std::uint32_t {
  kNone = 0,         // c == num_labels: argmax label, per-class transform
  kSigned = 1,       // c == 1, 2 labels: label = s > 0; scores [-s, s] (or logistic)
  kProbability = 2,  // c == 1, 2 labels: label = s > 0.5; scores [1 - s, s]
  // ONNX Runtime's conventions where the spec is silent (docs/model-format.md):
  kComplement = 3,  // c == 1, 2 labels: label = s > 0; scores [1 - s, s]
  kSecondZero = 4,  // c == 1 (the second label's score): label = s > 0; [post(0), post(s)]
  kSecondHalf = 5,  // as kSecondZero with label = s > 0.5 (all leaf weights >= 0)
};
struct ClassifierPostParams {
  std::uint32_t post;         // PostTransform
  std::uint32_t binary_mode;  // BinaryMode
  Ref labels;                 // i64[num_labels]
};

struct PostTransformParams {
  std::uint32_t post;  // PostTransform
  std::uint32_t pad;
};

enum class CastTo : std::uint32_t { kF32 = 0, kI64 = 1 };
struct CastParams {
  std::uint32_t to;  // CastTo
  std::uint32_t pad;
};

// Elementwise maths with up to two constant parameters (ops_math.cc).
enum class ActOp : std::uint32_t {
  kErf = 0,
  kElu = 1,       // a = alpha
  kSoftplus = 2,  // log(1 + exp(x))
  kClip = 3,      // min(max(x, a), b); NaN stays NaN
  kSqrt = 4,
  kPow = 5,  // x^a (a constant exponent)
  kExp = 6,
  kLog = 7,
  kNeg = 8,
  kAbs = 9,
  kReciprocal = 10,
  kHardSigmoid = 11,  // max(0, min(1, a*x + b))
  kSoftsign = 12,     // x / (1 + |x|)
  kSelu = 13,         // b * (x > 0 ? x : a * (exp(x) - 1))
  kHardSwish = 14,    // x * max(0, min(1, x / 6 + 1 / 2))
};
struct ActParams {
  std::uint32_t op;  // ActOp
  float a, b;
  std::uint32_t pad;
};

struct TransposeParams {
  std::uint32_t rank;
  std::uint32_t perm[kMaxRank];  // output axis i reads input axis perm[i]
  std::uint32_t pad;
};

enum class ReduceOp : std::uint32_t {
  kSum = 0,
  kMean = 1,
  kMax = 2,
  kMin = 3,
  kProd = 4,
  kL1 = 5,
  kL2 = 6,
  kSumSquare = 7,
  kLogSum = 8,
  kLogSumExp = 9,
};
// Reduces axes [first, first + count) of the input, which must not include
// the batch axis. The output's shape says whether they are kept as 1s.
struct ReduceParams {
  std::uint32_t op;  // ReduceOp
  std::uint32_t first, count;
  std::uint32_t pad;
};

// Outputs: Y, then optionally Mean and InvStdDev (the input's shape with
// the normalised axes as 1s).
struct LayerNormParams {
  std::int32_t axis;  // normalised, >= 1 for a batched input
  float epsilon;
  Ref scale;  // f32[product of dims from axis]
  Ref bias;   // same length, or empty
};

struct GatherParams {
  std::int32_t axis;  // normalised; not the batch axis
  std::uint32_t pad;
  Ref indices;  // i64[count], each in [0, dims[axis])
};

struct ExpandParams {
  std::uint32_t pad[2];  // the output value's shape is the target
};

// Tree ensembles. Nodes of all trees live in one array; a leaf points to
// itself on both sides, so every traversal runs exactly its tree's depth in
// steps with no leaf test (safe on any file). The children are an array so a
// step indexes it with the comparison's result instead of branching on it.
struct TreeNode {
  std::uint32_t feature;  // bit 31: a NaN feature goes left ("true" branch)
  float threshold;
  std::uint32_t child[2];  // [0] = the "true" branch (left), [1] = the false one
};
static_assert(sizeof(TreeNode) == 16);
inline constexpr std::uint32_t kNanLeftBit = 0x80000000u;

// How branch nodes compare x with the threshold. Every ONNX mode maps to one
// of these by swapping children (GT = swapped LEQ, GTE = swapped LT, NEQ =
// swapped EQ); kMixed keeps a per-node mode array.
enum class CompareMode : std::uint32_t { kLeq = 0, kLt = 1, kEq = 2, kMixed = 3 };
enum class Aggregate : std::uint32_t { kSum = 0, kAverage = 1, kMin = 2, kMax = 3 };

struct TreeParams {
  std::uint32_t num_trees;
  std::uint32_t num_targets;   // score columns
  std::uint32_t num_features;  // X's last dim
  std::uint32_t mode;          // CompareMode
  std::uint32_t aggregate;     // Aggregate
  std::uint32_t has_nan_left;  // any node sends NaN to the true branch
  Ref roots;                   // u32[num_trees]
  Ref depths;                  // u32[num_trees]
  Ref nodes;                   // TreeNode[num_nodes]
  Ref node_modes;              // u8[num_nodes] (CompareMode) when mode == kMixed, else empty
  Ref leaf_values;  // f32[num_nodes * num_targets]; absent targets are 0 (SUM/AVG) or NaN (MIN/MAX)
  Ref base_values;  // f32[num_targets] or empty
};

// Parameter records are file layout too (docs/model-format.md, section 2.3).
static_assert(sizeof(DenseParams) == 40 && sizeof(MatMulParams) == 12 &&
              sizeof(BinaryParams) == 4 && sizeof(UnaryParams) == 8 && sizeof(SoftmaxParams) == 8 &&
              sizeof(ArgMaxParams) == 8 && sizeof(ConcatParams) == 8 &&
              sizeof(ScalerParams) == 32 && sizeof(NormalizerParams) == 8 &&
              sizeof(ClassifierPostParams) == 24 && sizeof(PostTransformParams) == 8 &&
              sizeof(CastParams) == 8 && sizeof(TreeParams) == 120 && sizeof(ActParams) == 16 &&
              sizeof(TransposeParams) == 40 && sizeof(ReduceParams) == 16 &&
              sizeof(LayerNormParams) == 40 && sizeof(GatherParams) == 24 &&
              sizeof(ExpandParams) == 8);

// CRC-32C (Castagnoli), hardware-accelerated when SSE4.2 is present.
std::uint32_t crc32c(std::span<const std::byte> bytes) noexcept;

}  // namespace myelin::model::detail
