// Validation and binding of a .mylm image. Every number read from the image
// is checked before it is used as a size, an offset or an index.
#include "src/model/plan.h"

#include <cstring>
#include <limits>
#include <string>

namespace myelin::model::detail {
namespace {

constexpr std::uint32_t kMaxValues = 1u << 20;
constexpr std::uint32_t kMaxSteps = 1u << 20;
constexpr std::uint32_t kMaxStepIds = 1u << 16;
constexpr std::uint64_t kMaxElems = std::uint64_t{1} << 32;
constexpr std::uint64_t kMaxName = 4096;

bool is_dtype_ok(std::uint8_t id) {
  return id == static_cast<std::uint8_t>(DType::kF32) ||
         id == static_cast<std::uint8_t>(DType::kI64);
}

std::string value_label(const ValueInfo& v, std::uint32_t id) {
  return "value " + std::to_string(id) + " '" + std::string(v.name) + "'";
}

Status bind_values(std::span<const std::byte> img, const FileHeader& h,
                   std::vector<ValueInfo>& values) {
  MYELIN_ASSIGN_OR_RETURN(const std::byte* base,
                          resolve(img, h.values, sizeof(ValueRec), h.num_values, "value table"));
  values.resize(h.num_values);
  for (std::uint32_t i = 0; i < h.num_values; ++i) {
    ValueRec r;
    std::memcpy(&r, base + std::size_t{i} * sizeof(ValueRec), sizeof(r));
    ValueInfo& v = values[i];
    const std::string where = "value " + std::to_string(i);
    if (r.name.len > kMaxName) return data_loss(where + ": name longer than 4096 bytes");
    MYELIN_ASSIGN_OR_RETURN(const std::byte* name, resolve(img, r.name, 1, r.name.len, where));
    v.name = std::string_view(reinterpret_cast<const char*>(name), r.name.len);
    if (!is_dtype_ok(r.dtype))
      return data_loss(where + ": dtype id " + std::to_string(r.dtype) + " is not f32 or i64");
    if (!dtype_from_id(r.declared_dtype))
      return data_loss(where + ": unknown declared dtype id " + std::to_string(r.declared_dtype));
    v.dtype = static_cast<DType>(r.dtype);
    v.declared = static_cast<DType>(r.declared_dtype);
    if (r.kind > static_cast<std::uint8_t>(ValueKind::kIntermediate))
      return data_loss(where + ": unknown kind " + std::to_string(r.kind));
    v.kind = static_cast<ValueKind>(r.kind);
    if (r.rank > kMaxRank) return data_loss(where + ": rank " + std::to_string(r.rank) + " > 8");
    if (r.batched > 1 || (r.batched && r.rank == 0)) return data_loss(where + ": bad batched flag");
    v.batched = r.batched == 1;
    v.rank = r.rank;
    std::uint64_t elems = 1;
    for (std::size_t d = 0; d < v.rank; ++d) {
      v.dims[d] = r.dims[d];
      if (d == 0 && v.batched) {
        if (r.dims[0] != -1) return data_loss(where + ": batched dims[0] must be -1");
        continue;
      }
      if (r.dims[d] < 0 || static_cast<std::uint64_t>(r.dims[d]) > kMaxElems)
        return data_loss(where + ": dim " + std::to_string(d) + " is " + std::to_string(r.dims[d]));
      elems *= static_cast<std::uint64_t>(r.dims[d]);
      if (elems > kMaxElems) return data_loss(where + ": more than 2^32 elements per sample");
    }
    v.sample_elems = elems;
    if (v.kind == ValueKind::kConstant) {
      if (v.batched) return data_loss(where + ": a constant cannot be batched");
      MYELIN_ASSIGN_OR_RETURN(const std::byte* data,
                              resolve(img, r.data, dtype_size(v.dtype), elems, where + " data"));
      v.data = data;
    } else if (r.data.len != 0) {
      return data_loss(where + ": only constants carry data");
    }
    if (v.kind == ValueKind::kInput && v.dtype != DType::kF32)
      return data_loss(where + ": inputs are computed as f32");
  }
  return {};
}

Result<RunFn> bind_step(OpKind op, const BindCtx& c, RtStep& s, std::size_t& params_size) {
  switch (op) {
#define MYELIN_BIND(kind, P, fn)              \
  case OpKind::kind:                          \
    params_size = sizeof(P);                  \
    if (c.rec.params.len != sizeof(P)) break; \
    MYELIN_RETURN_IF_ERROR(fn(c, s));         \
    return s.run;
    MYELIN_BIND(kDense, DenseParams, bind_dense)
    MYELIN_BIND(kMatMul, MatMulParams, bind_matmul)
    MYELIN_BIND(kBinary, BinaryParams, bind_binary)
    MYELIN_BIND(kUnary, UnaryParams, bind_unary)
    MYELIN_BIND(kCast, CastParams, bind_cast)
    MYELIN_BIND(kSoftmax, SoftmaxParams, bind_softmax)
    MYELIN_BIND(kArgMax, ArgMaxParams, bind_argmax)
    MYELIN_BIND(kConcat, ConcatParams, bind_concat)
    MYELIN_BIND(kScaler, ScalerParams, bind_scaler)
    MYELIN_BIND(kNormalizer, NormalizerParams, bind_normalizer)
    MYELIN_BIND(kTreeEnsemble, TreeParams, bind_tree)
    MYELIN_BIND(kClassifierPost, ClassifierPostParams, bind_classifier_post)
    MYELIN_BIND(kPostTransform, PostTransformParams, bind_post_transform)
    MYELIN_BIND(kActivation, ActParams, bind_activation)
    MYELIN_BIND(kTranspose, TransposeParams, bind_transpose)
    MYELIN_BIND(kReduce, ReduceParams, bind_reduce)
    MYELIN_BIND(kLayerNorm, LayerNormParams, bind_layer_norm)
    MYELIN_BIND(kGather, GatherParams, bind_gather)
    MYELIN_BIND(kExpand, ExpandParams, bind_expand)
#undef MYELIN_BIND
    default:
      return data_loss("unknown op code " + std::to_string(static_cast<std::uint32_t>(op)));
  }
  return data_loss("params are " + std::to_string(c.rec.params.len) + " bytes, expected " +
                   std::to_string(params_size));
}

TensorInfo make_info(const ValueInfo& v) {
  TensorInfo t;
  t.name = std::string(v.name);
  t.dtype = v.dtype;
  t.declared_dtype = v.declared;
  t.batched = v.batched;
  t.dims.assign(v.dims.begin(), v.dims.begin() + static_cast<std::ptrdiff_t>(v.rank));
  return t;
}

}  // namespace

std::uint64_t workspace_bytes(const Plan& plan, std::size_t batch) noexcept {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t total = 0;
  for (const ValueInfo& v : plan.values) {
    if (v.kind == ValueKind::kConstant) continue;
    // sample_elems <= 2^32 and an element is <= 8 bytes, so this cannot wrap.
    const std::uint64_t sample = v.sample_elems * dtype_size(v.dtype);
    const std::uint64_t n = v.batched ? batch : 1;
    if (n != 0 && sample > (kMax - kAlign) / n) return kMax;
    const std::uint64_t bytes = (sample * n + kAlign - 1) / kAlign * kAlign;
    if (bytes > kMax - total) return kMax;
    total += bytes;
  }
  return total;
}

Result<const std::byte*> resolve(std::span<const std::byte> img, const Ref& ref,
                                 std::size_t elem_size, std::size_t count, std::string_view what) {
  if (elem_size != 0 && count > std::numeric_limits<std::uint64_t>::max() / elem_size)
    return data_loss(std::string(what) + ": size overflows");
  const std::uint64_t want = std::uint64_t{elem_size} * count;
  if (ref.len != want) {
    return data_loss(std::string(what) + ": " + std::to_string(ref.len) + " bytes, expected " +
                     std::to_string(want));
  }
  if (want == 0) return static_cast<const std::byte*>(nullptr);
  if (ref.off > img.size() || want > img.size() - ref.off) {
    return data_loss(std::string(what) + ": bytes [" + std::to_string(ref.off) + ", +" +
                     std::to_string(want) + ") lie outside the " + std::to_string(img.size()) +
                     "-byte file");
  }
  if (ref.off % kAlign != 0 && elem_size > 1)
    return data_loss(std::string(what) + ": offset " + std::to_string(ref.off) +
                     " is not 64-byte aligned");
  return img.data() + ref.off;
}

Status expect_dtype(const ValueInfo& v, DType dtype, std::string_view role) {
  if (v.dtype == dtype) return {};
  return invalid_argument(std::string(role) + " '" + std::string(v.name) + "' is " +
                          std::string(to_string(v.dtype)) + ", expected " +
                          std::string(to_string(dtype)));
}

std::string dims_string(const ValueInfo& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.rank; ++i) {
    if (i) s += ", ";
    s += (i == 0 && v.batched) ? std::string("N") : std::to_string(v.dims[i]);
  }
  return s + "]";
}

void split_at(const ValueInfo& v, std::size_t axis, std::uint64_t& outer_static,
              std::uint64_t& axis_len, std::uint64_t& inner) {
  outer_static = 1;
  axis_len = 1;
  inner = 1;
  for (std::size_t d = 0; d < v.rank; ++d) {
    if (d == 0 && v.batched) continue;
    const auto n = static_cast<std::uint64_t>(v.dims[d]);
    if (d < axis) {
      outer_static *= n;
    } else if (d == axis) {
      axis_len = n;
    } else {
      inner *= n;
    }
  }
}

Result<std::unique_ptr<Plan>> bind_plan(std::span<const std::byte> image,
                                        std::shared_ptr<const void> owner, std::string source,
                                        std::string origin, const LoadOptions& options) {
  auto fail = [&origin](Status s) { return std::move(s).with_context(origin); };
  FileHeader h;
  if (image.size() < sizeof(h))
    return fail(data_loss("truncated: " + std::to_string(image.size()) +
                          " bytes is shorter than the 96-byte .mylm header"));
  std::memcpy(&h, image.data(), sizeof(h));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0)
    return fail(parse_error("not a .mylm file (bad magic)"));
  if (h.version != kFormatVersion)
    return fail(unimplemented(".mylm version " + std::to_string(h.version) +
                              " is not supported; this build reads version " +
                              std::to_string(kFormatVersion)));
  if (h.header_size != sizeof(h))
    return fail(data_loss("header size " + std::to_string(h.header_size) + ", expected 96"));
  if (h.file_size != image.size())
    return fail(data_loss("truncated or padded: header says " + std::to_string(h.file_size) +
                          " bytes, file has " + std::to_string(image.size())));
  if (h.flags != 0) return fail(data_loss("unknown flags " + std::to_string(h.flags)));
  const std::uint32_t crc = crc32c(image.subspan(sizeof(h)));
  if (crc != h.checksum)
    return fail(data_loss("checksum mismatch (stored " + std::to_string(h.checksum) +
                          ", computed " + std::to_string(crc) + "): the file is corrupt"));
  if (h.num_values > kMaxValues || h.num_steps > kMaxSteps || h.num_inputs > h.num_values ||
      h.num_outputs > h.num_values)
    return fail(data_loss("table counts out of range"));

  auto plan = std::make_unique<Plan>();
  plan->image = image;
  plan->owner = std::move(owner);
  plan->source = std::move(source);
  plan->origin = origin;
  plan->kernels = kernels_for(options.isa, &plan->isa);
  if (!plan->kernels)
    return fail(unimplemented("kernels for " + std::string(to_string(options.isa)) +
                              " are not available on this CPU"));
  MYELIN_RETURN_IF_ERROR(bind_values(image, h, plan->values).with_context(origin));
  auto& values = plan->values;

  if (h.num_inputs == 0 || h.num_outputs == 0)
    return fail(data_loss("the plan has " + std::to_string(h.num_inputs) + " inputs and " +
                          std::to_string(h.num_outputs) +
                          " outputs; a model needs at least one of each"));
  auto io = resolve(image, h.io, 4, std::size_t{h.num_inputs} + h.num_outputs, "I/O table");
  if (!io) return fail(std::move(io).error());
  std::vector<std::uint32_t> ids(std::size_t{h.num_inputs} + h.num_outputs);
  if (!ids.empty()) std::memcpy(ids.data(), *io, ids.size() * 4);
  std::vector<std::uint8_t> fed(values.size(), 0);  // 1 input, 2 output
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const bool is_input = i < h.num_inputs;
    if (ids[i] >= values.size()) return fail(data_loss("I/O table: value id out of range"));
    const ValueInfo& v = values[ids[i]];
    const std::uint8_t bit = is_input ? 1 : 2;
    if (fed[ids[i]] & bit)
      return fail(data_loss(value_label(v, ids[i]) + " listed twice as a graph " +
                            (is_input ? "input" : "output")));
    fed[ids[i]] |= bit;
    if (is_input && v.kind != ValueKind::kInput)
      return fail(data_loss(value_label(v, ids[i]) + " is listed as an input but is not one"));
    (is_input ? plan->input_ids : plan->output_ids).push_back(ids[i]);
  }
  for (std::uint32_t i = 0; i < values.size(); ++i) {
    if (values[i].kind == ValueKind::kInput && !(fed[i] & 1))
      return fail(data_loss(value_label(values[i], i) + " is an input missing from the I/O table"));
  }

  auto step_table = resolve(image, h.steps, sizeof(StepRec), h.num_steps, "step table");
  if (!step_table) return fail(std::move(step_table).error());
  const std::byte* steps = *step_table;
  plan->steps.resize(h.num_steps);
  for (std::uint32_t i = 0; i < h.num_steps; ++i) {
    StepRec rec;
    std::memcpy(&rec, steps + std::size_t{i} * sizeof(StepRec), sizeof(rec));
    RtStep& s = plan->steps[i];
    std::string where = "step " + std::to_string(i);
    if (rec.name.len > kMaxName) return fail(data_loss(where + ": name too long"));
    auto name = resolve(image, rec.name, 1, rec.name.len, where);
    if (!name) return fail(std::move(name).error());
    s.name = std::string_view(reinterpret_cast<const char*>(*name), rec.name.len);
    where += " ('" + std::string(s.name) + "')";
    s.op = static_cast<OpKind>(rec.op);
    if (rec.num_inputs > kMaxStepIds || rec.num_outputs > kMaxStepIds)
      return fail(data_loss(where + ": too many operands"));
    auto sids =
        resolve(image, rec.ids, 4, std::size_t{rec.num_inputs} + rec.num_outputs, where + " ids");
    if (!sids) return fail(std::move(sids).error());
    const auto* u = reinterpret_cast<const std::uint32_t*>(*sids);
    s.in = {u, rec.num_inputs};
    s.out = {u + rec.num_inputs, rec.num_outputs};
    for (std::uint32_t id : s.in) {
      if (id >= values.size()) return fail(data_loss(where + ": input id out of range"));
      const ValueInfo& v = values[id];
      if (v.kind == ValueKind::kIntermediate && v.producer < 0)
        return fail(data_loss(where + ": reads " + value_label(v, id) + " before it is written"));
    }
    for (std::uint32_t id : s.out) {
      if (id >= values.size()) return fail(data_loss(where + ": output id out of range"));
      ValueInfo& v = values[id];
      if (v.kind != ValueKind::kIntermediate || v.producer >= 0)
        return fail(data_loss(where + ": writes " + value_label(v, id) +
                              ", which is an input, a constant or written already"));
      v.producer = static_cast<std::int32_t>(i);
    }
    auto params_ref = resolve(image, rec.params, 1, rec.params.len, where + " params");
    if (!params_ref) return fail(std::move(params_ref).error());
    const std::byte* params = *params_ref;
    if (rec.params.len != 0 && rec.params.off % kAlign != 0)
      return fail(data_loss(where + ": params are not 64-byte aligned"));
    BindCtx ctx{image, values, rec, params, plan->kernels};
    s.param_bytes = rec.params.len;
    std::size_t params_size = 0;
    auto run = bind_step(s.op, ctx, s, params_size);
    if (!run) return fail(std::move(run).error().with_context(where));
    s.run = *run;
  }
  fuse_dense_relu(*plan);
  for (std::uint32_t id : plan->output_ids) {
    const ValueInfo& v = values[id];
    if (v.kind == ValueKind::kIntermediate && v.producer < 0)
      return fail(data_loss("output " + value_label(v, id) + " is never written"));
    if (v.kind != ValueKind::kIntermediate) plan->copied_outputs.push_back(id);
  }
  // The model budget: its weights (the image) and one sample's workspace.
  const std::uint64_t per_sample = workspace_bytes(*plan, 1);
  if (options.max_model_bytes != 0 &&
      (per_sample > options.max_model_bytes || image.size() > options.max_model_bytes - per_sample))
    return fail(out_of_range("the plan needs " + std::to_string(image.size()) +
                             " bytes of weights and " + std::to_string(per_sample) +
                             " bytes of workspace per sample, over the model budget "
                             "max_model_bytes = " +
                             std::to_string(options.max_model_bytes)));
  plan->max_request_bytes = options.max_request_bytes;
  for (std::uint32_t id : plan->input_ids) plan->input_info.push_back(make_info(values[id]));
  for (std::uint32_t id : plan->output_ids) plan->output_info.push_back(make_info(values[id]));
  return plan;
}

}  // namespace myelin::model::detail
