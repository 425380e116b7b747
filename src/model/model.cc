// Model: loading (ONNX compile or .mylm mmap), workspaces and predict.
#include "myelin/model/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "src/model/onnx_import.h"
#include "src/model/plan.h"

namespace myelin::model {
namespace {

using detail::Plan;
using detail::ValueInfo;

// A 64-byte-aligned heap copy (what SIMD loads and the format's offsets assume).
std::shared_ptr<std::byte> aligned_copy(std::span<const std::byte> bytes) {
  const std::size_t size = (bytes.size() + detail::kAlign - 1) / detail::kAlign * detail::kAlign;
  auto* p = static_cast<std::byte*>(
      std::aligned_alloc(detail::kAlign, size == 0 ? detail::kAlign : size));
  if (!p) throw std::bad_alloc();
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return std::shared_ptr<std::byte>(p, [](std::byte* q) { std::free(q); });
}

bool is_mylm(std::span<const std::byte> bytes) {
  return bytes.size() >= sizeof(detail::kMagic) &&
         std::memcmp(bytes.data(), detail::kMagic, sizeof(detail::kMagic)) == 0;
}

struct Mapping {
  void* addr = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (addr) ::munmap(addr, size);
  }
};

std::string shape_text(const Shape& s) { return s.to_string(); }

}  // namespace

void Workspace::Free::operator()(std::byte* p) const noexcept { std::free(p); }

std::string TensorInfo::to_string() const {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += (i == 0 && batched) ? std::string("N") : std::to_string(dims[i]);
  }
  s += "] ";
  s += myelin::to_string(dtype);
  if (declared_dtype != dtype)
    s += " (declared " + std::string(myelin::to_string(declared_dtype)) + ")";
  return s;
}

Model::~Model() = default;

// No exception crosses the API: an allocation that fails while loading or
// predicting (std::bad_alloc, or protobuf's length_error) becomes an error
// naming what was being done.
template <typename F>
auto no_throw(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return resource_exhausted(std::string(what) + ": out of memory");
  } catch (const std::length_error&) {
    return resource_exhausted(std::string(what) + ": out of memory (length error)");
  }
}

Result<Model> Model::load(std::span<const std::byte> bytes, const LoadOptions& options,
                          std::string_view origin) {
  return no_throw(origin, [&]() -> Result<Model> { return load_bytes(bytes, options, origin); });
}

Result<Model> Model::load_bytes(std::span<const std::byte> bytes, const LoadOptions& options,
                                std::string_view origin) {
  if (options.max_model_bytes != 0 && bytes.size() > options.max_model_bytes)
    return out_of_range(std::string(origin) + ": " + std::to_string(bytes.size()) +
                        " bytes, over the model budget max_model_bytes = " +
                        std::to_string(options.max_model_bytes));
  if (is_mylm(bytes)) {
    auto copy = aligned_copy(bytes);
    std::span<const std::byte> image(copy.get(), bytes.size());
    MYELIN_ASSIGN_OR_RETURN(
        auto plan, detail::bind_plan(image, copy, "mylm (memory)", std::string(origin), options));
    return Model(std::shared_ptr<const Plan>(std::move(plan)));
  }
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> image, compile_onnx(bytes, origin));
  auto copy = aligned_copy(image);
  MYELIN_ASSIGN_OR_RETURN(auto plan, detail::bind_plan({copy.get(), image.size()}, copy, "onnx",
                                                       std::string(origin), options));
  return Model(std::shared_ptr<const Plan>(std::move(plan)));
}

Result<std::vector<std::byte>> Model::compile_onnx(std::span<const std::byte> onnx,
                                                   std::string_view origin) {
  return no_throw(origin, [&] { return detail::import_onnx(onnx, origin); });
}

Result<Model> Model::load(const std::string& path, const LoadOptions& options) {
  return no_throw(path, [&] { return load_file(path, options); });
}

Result<Model> Model::load_file(const std::string& path, const LoadOptions& options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return errno_error("stat " + path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(path + ": not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return parse_error(path + ": empty file");
  }
  // Refused before mapping: MAP_POPULATE would read the whole file.
  if (options.max_model_bytes != 0 && size > options.max_model_bytes) {
    ::close(fd);
    return out_of_range(path + ": " + std::to_string(size) +
                        " bytes, over the model budget max_model_bytes = " +
                        std::to_string(options.max_model_bytes));
  }
  auto map = std::make_shared<Mapping>();
  map->addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  const int e = errno;
  ::close(fd);
  if (map->addr == MAP_FAILED) {
    map->addr = nullptr;
    return errno_error("mmap " + path, e);
  }
  map->size = size;
  std::span<const std::byte> bytes(static_cast<const std::byte*>(map->addr), size);
  if (is_mylm(bytes)) {
    // Used in place: the plan keeps the mapping alive.
    MYELIN_ASSIGN_OR_RETURN(auto plan, detail::bind_plan(bytes, map, "mylm (mmap)", path, options));
    return Model(std::shared_ptr<const Plan>(std::move(plan)));
  }
  return load_bytes(bytes, options, path);
}

std::span<const TensorInfo> Model::inputs() const noexcept { return plan_->input_info; }
std::span<const TensorInfo> Model::outputs() const noexcept { return plan_->output_info; }
std::span<const std::byte> Model::plan_bytes() const noexcept { return plan_->image; }
std::string_view Model::source() const noexcept { return plan_->source; }
Isa Model::isa() const noexcept { return plan_->isa; }

std::vector<StepInfo> Model::steps() const {
  std::vector<StepInfo> out;
  for (const detail::RtStep& s : plan_->steps) {
    StepInfo i;
    i.name = std::string(s.name);
    i.op = std::string(detail::to_string(s.op));
    for (std::uint32_t id : s.in) i.inputs.emplace_back(plan_->values[id].name);
    for (std::uint32_t id : s.out) i.outputs.emplace_back(plan_->values[id].name);
    i.param_bytes = s.param_bytes;
    i.kernel = std::string(s.kernel);
    out.push_back(std::move(i));
  }
  return out;
}

std::uint64_t Model::workspace_bytes(std::size_t batch) const noexcept {
  return detail::workspace_bytes(*plan_, batch);
}

Result<Workspace> Model::make_workspace(std::size_t max_batch) const {
  if (max_batch == 0 || max_batch > (std::size_t{1} << 24))
    return invalid_argument("max_batch must be in [1, 2^24], got " + std::to_string(max_batch));
  const std::uint64_t need = workspace_bytes(max_batch);
  if (plan_->max_request_bytes != 0 && need > plan_->max_request_bytes)
    return out_of_range(plan_->origin + ": a workspace for batch " + std::to_string(max_batch) +
                        " needs " + std::to_string(need) +
                        " bytes, over the request budget max_request_bytes = " +
                        std::to_string(plan_->max_request_bytes));
  return no_throw(plan_->origin, [&] { return make_workspace_unchecked(max_batch); });
}

Result<Workspace> Model::make_workspace_unchecked(std::size_t max_batch) const {
  Workspace ws;
  ws.plan_ = plan_.get();
  ws.max_batch_ = max_batch;
  ws.offsets_.assign(plan_->values.size(), SIZE_MAX);
  std::size_t total = 0;
  auto reserve = [&](std::size_t v) {
    const ValueInfo& info = plan_->values[v];
    const std::size_t bytes = info.elems(max_batch) * dtype_size(info.dtype);
    ws.offsets_[v] = total;
    total += (bytes + detail::kAlign - 1) / detail::kAlign * detail::kAlign;
  };
  for (std::size_t v = 0; v < plan_->values.size(); ++v) {
    const ValueInfo& info = plan_->values[v];
    // Intermediates, and inputs that may arrive as f64 and need converting.
    if (info.kind != detail::ValueKind::kConstant) reserve(v);
  }
  ws.size_ = total;
  auto* p = static_cast<std::byte*>(
      std::aligned_alloc(detail::kAlign, total == 0 ? detail::kAlign : total));
  if (!p) return resource_exhausted("workspace of " + std::to_string(total) + " bytes");
  ws.buffer_.reset(p);
  ws.ptrs_.assign(plan_->values.size(), nullptr);
  for (std::size_t v = 0; v < plan_->values.size(); ++v) {
    const ValueInfo& info = plan_->values[v];
    ws.ptrs_[v] = info.kind == detail::ValueKind::kConstant ? const_cast<void*>(info.data)
                                                            : p + ws.offsets_[v];
  }
  return ws;
}

Result<Shape> Model::output_shape(std::size_t index, std::size_t batch) const {
  if (index >= plan_->output_ids.size())
    return out_of_range(plan_->origin + ": output " + std::to_string(index) +
                        " does not exist (the model has " +
                        std::to_string(plan_->output_ids.size()) + " outputs)");
  const ValueInfo& v = plan_->values[plan_->output_ids[index]];
  std::array<std::int64_t, kMaxRank> d{};
  for (std::size_t i = 0; i < v.rank; ++i) d[i] = v.dims[i];
  if (v.batched) d[0] = static_cast<std::int64_t>(batch);
  return Shape::from(std::span<const std::int64_t>(d.data(), v.rank));
}

Result<std::size_t> Model::check_inputs(std::span<const TensorView> inputs,
                                        std::size_t max_batch) const {
  const Plan& plan = *plan_;
  if (inputs.size() != plan.input_ids.size()) [[unlikely]]
    return invalid_argument(plan.origin + ": expected " + std::to_string(plan.input_ids.size()) +
                            " inputs, got " + std::to_string(inputs.size()));
  // The batch: from the first batched input (all batched inputs must agree).
  std::size_t batch = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const TensorView& in = inputs[i];
    const ValueInfo& v = plan.values[plan.input_ids[i]];
    bool ok = in.shape.rank() == v.rank;
    for (std::size_t d = (v.batched ? 1 : 0); ok && d < v.rank; ++d) ok = in.shape[d] == v.dims[d];
    if (!ok) [[unlikely]]
      return invalid_argument(plan.origin + ": input '" + std::string(v.name) + "' has shape " +
                              shape_text(in.shape) + ", expected " + detail::dims_string(v));
    if (!v.batched) continue;
    if (in.shape[0] < 1) [[unlikely]]
      return invalid_argument(plan.origin + ": input '" + std::string(v.name) + "' has batch " +
                              std::to_string(in.shape[0]) + "; need >= 1");
    const auto n = static_cast<std::size_t>(in.shape[0]);
    if (batch == 0) batch = n;
    if (n != batch) [[unlikely]]
      return invalid_argument(plan.origin + ": input '" + std::string(v.name) + "' has batch " +
                              std::to_string(n) + " but another input has " +
                              std::to_string(batch));
    if (n > max_batch) [[unlikely]]
      return invalid_argument(plan.origin + ": batch " + std::to_string(n) +
                              " exceeds the workspace capacity " + std::to_string(max_batch));
  }
  return batch == 0 ? std::size_t{1} : batch;
}

Status Model::predict(std::span<const TensorView> inputs,
                      std::span<const MutableTensorView> outputs, Workspace& ws) const {
  const Plan& plan = *plan_;
  if (ws.plan_ != &plan) [[unlikely]]
    return invalid_argument("the workspace was made for another model");
  if (inputs.size() != plan.input_ids.size() || outputs.size() != plan.output_ids.size())
      [[unlikely]]
    return invalid_argument(plan.origin + ": expected " + std::to_string(plan.input_ids.size()) +
                            " inputs and " + std::to_string(plan.output_ids.size()) +
                            " outputs, got " + std::to_string(inputs.size()) + " and " +
                            std::to_string(outputs.size()));
  MYELIN_ASSIGN_OR_RETURN(std::size_t batch, check_inputs(inputs, ws.max_batch_));
  void** ptr = ws.ptrs_.data();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const TensorView& in = inputs[i];
    const std::uint32_t id = plan.input_ids[i];
    const ValueInfo& v = plan.values[id];
    const std::size_t n = v.batched ? batch : 1;
    const std::size_t elems = v.elems(n);
    if (in.dtype == DType::kF32 && in.data.size() == elems * 4) [[likely]] {
      ptr[id] = const_cast<std::byte*>(in.data.data());
    } else if (in.dtype == DType::kF64 && in.data.size() == elems * 8) {
      auto* dst = reinterpret_cast<float*>(ws.buffer_.get() + ws.offsets_[id]);
      const auto* src = reinterpret_cast<const double*>(in.data.data());
      for (std::size_t e = 0; e < elems; ++e) dst[e] = static_cast<float>(src[e]);
      ptr[id] = dst;
    } else {
      return invalid_argument(plan.origin + ": input '" + std::string(v.name) + "' is " +
                              std::string(to_string(in.dtype)) + " with " +
                              std::to_string(in.data.size()) + " bytes; expected f32 or f64 " +
                              detail::dims_string(v) + " (" + std::to_string(elems) + " elements)");
    }
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const MutableTensorView& out = outputs[i];
    const std::uint32_t id = plan.output_ids[i];
    const ValueInfo& v = plan.values[id];
    bool ok = out.dtype == v.dtype && out.shape.rank() == v.rank;
    for (std::size_t d = 0; ok && d < v.rank; ++d)
      ok = out.shape[d] == ((d == 0 && v.batched) ? static_cast<std::int64_t>(batch) : v.dims[d]);
    // Plan values are f32 or i64 only (bind_plan checks), so no table lookup here.
    ok = ok && out.data.size() == v.elems(batch) * (v.dtype == DType::kI64 ? 8 : 4);
    if (!ok) [[unlikely]]
      return invalid_argument(plan.origin + ": output '" + std::string(v.name) + "' view is " +
                              std::string(to_string(out.dtype)) + " " + shape_text(out.shape) +
                              " with " + std::to_string(out.data.size()) + " bytes; expected " +
                              std::string(to_string(v.dtype)) + " " +
                              shape_text(output_shape(i, batch).value()));
    if (v.kind == detail::ValueKind::kIntermediate) ptr[id] = out.data.data();
  }
  const detail::ExecCtx ctx{batch, ptr, plan.kernels};
  for (const detail::RtStep& s : plan.steps) s.run(s, ctx);
  for (std::uint32_t id : plan.copied_outputs) {
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (plan.output_ids[i] != id) continue;
      if (!outputs[i].data.empty())
        std::memcpy(outputs[i].data.data(), ptr[id], outputs[i].data.size());
    }
  }
  return {};
}

Result<std::vector<Tensor>> Model::predict(std::span<const TensorView> inputs) const {
  // Shapes first, then the budget, and only then allocate: a request's
  // claimed batch never costs memory before it is known to fit.
  MYELIN_ASSIGN_OR_RETURN(const std::size_t batch, check_inputs(inputs, std::size_t{1} << 24));
  const Plan& plan = *plan_;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t need = workspace_bytes(batch);
  auto add = [&need](std::uint64_t b) { need = b > kMax - need ? kMax : need + b; };
  for (const TensorView& in : inputs) add(in.data.size());
  for (std::uint32_t id : plan.output_ids) {
    const ValueInfo& v = plan.values[id];
    add(v.sample_elems * dtype_size(v.dtype) * (v.batched ? batch : 1));
  }
  if (plan.max_request_bytes != 0 && need > plan.max_request_bytes)
    return out_of_range(plan.origin + ": the request (batch " + std::to_string(batch) + ") needs " +
                        std::to_string(need) +
                        " bytes of inputs, outputs and workspace, over the request budget "
                        "max_request_bytes = " +
                        std::to_string(plan.max_request_bytes));
  return no_throw(plan.origin, [&]() -> Result<std::vector<Tensor>> {
    MYELIN_ASSIGN_OR_RETURN(Workspace ws, make_workspace_unchecked(batch));
    std::vector<Tensor> out(plan.output_ids.size());
    std::vector<MutableTensorView> views;
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i].dtype = plan.output_info[i].dtype;
      MYELIN_ASSIGN_OR_RETURN(out[i].shape, output_shape(i, batch));
      out[i].bytes.resize(plan.values[plan.output_ids[i]].elems(batch) * dtype_size(out[i].dtype));
      views.push_back({out[i].dtype, out[i].shape, out[i].bytes});
    }
    MYELIN_RETURN_IF_ERROR(predict(inputs, views, ws));
    return out;
  });
}

}  // namespace myelin::model
