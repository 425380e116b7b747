// ONNX graph walking, tensors, attributes and shapes (ops: import_nn.cc,
// import_ml.cc, import_tree.cc).
#include "src/model/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <limits>

namespace myelin::model::detail {
namespace {

constexpr std::uint64_t kMaxConstElems = std::uint64_t{1} << 28;

Result<std::uint64_t> checked_count(std::span<const std::int64_t> dims) {
  std::uint64_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0) return invalid_argument("negative dimension " + std::to_string(d));
    n *= static_cast<std::uint64_t>(d);
    if (n > kMaxConstElems) return out_of_range("tensor larger than 2^28 elements");
  }
  return n;
}

template <typename T>
std::vector<T> raw_as(const std::string& raw) {
  std::vector<T> v(raw.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), raw.data(), v.size() * sizeof(T));
  return v;
}

std::string domain_name(std::string_view d) { return d.empty() ? "ai.onnx" : std::string(d); }

// The opsets whose operators myelin implements (docs/model-format.md): an
// opset outside these ranges may change an operator's meaning, so it is
// refused rather than guessed at.
constexpr std::int64_t kMinOpset = 1, kMaxOpset = 21;
constexpr std::int64_t kMinMlOpset = 1, kMaxMlOpset = 4;

Status check_opset(std::string_view domain, std::int64_t version) {
  const bool ml = domain == "ai.onnx.ml";
  const std::int64_t lo = ml ? kMinMlOpset : kMinOpset, hi = ml ? kMaxMlOpset : kMaxOpset;
  if (version >= lo && version <= hi) return {};
  return unimplemented("opset " + std::to_string(version) + " of domain " + domain_name(domain) +
                       " is not supported (myelin implements " + std::to_string(lo) + " to " +
                       std::to_string(hi) + ")");
}

}  // namespace

std::uint64_t VShape::sample_elems() const {
  std::uint64_t n = 1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i == 0 && batched) continue;
    n *= static_cast<std::uint64_t>(dims[i]);
  }
  return n;
}

std::string VShape::str() const {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += (i == 0 && batched) ? std::string("N") : std::to_string(dims[i]);
  }
  return s + "]";
}

Result<ConstTensor> parse_tensor(const onnx::TensorProto& t) {
  ConstTensor c;
  c.dims.assign(t.dims().begin(), t.dims().end());
  if (c.dims.size() > kMaxRank) return unimplemented("tensor '" + t.name() + "' has rank > 8");
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    return unimplemented("tensor '" + t.name() + "' uses external data");
  MYELIN_ASSIGN_OR_RETURN(const std::uint64_t n, checked_count(c.dims));
  const bool raw = t.has_raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      c.f = raw ? raw_as<float>(t.raw_data())
                : std::vector<float>(t.float_data().begin(), t.float_data().end());
      break;
    case onnx::TensorProto::DOUBLE: {
      const std::vector<double> d =
          raw ? raw_as<double>(t.raw_data())
              : std::vector<double>(t.double_data().begin(), t.double_data().end());
      c.f.assign(d.begin(), d.end());
      break;
    }
    case onnx::TensorProto::INT64:
      c.dtype = DType::kI64;
      c.i = raw ? raw_as<std::int64_t>(t.raw_data())
                : std::vector<std::int64_t>(t.int64_data().begin(), t.int64_data().end());
      break;
    case onnx::TensorProto::INT32: {
      c.dtype = DType::kI64;
      const std::vector<std::int32_t> d =
          raw ? raw_as<std::int32_t>(t.raw_data())
              : std::vector<std::int32_t>(t.int32_data().begin(), t.int32_data().end());
      c.i.assign(d.begin(), d.end());
      break;
    }
    default:
      return unimplemented("tensor '" + t.name() + "' has element type " +
                           std::to_string(t.data_type()) +
                           "; supported: float, double, int32, int64");
  }
  if (c.count() != n)
    return parse_error("tensor '" + t.name() + "' has " + std::to_string(c.count()) +
                       " elements, its dims say " + std::to_string(n));
  return c;
}

Status Importer::fail(Status s) const {
  if (s.ok()) return s;
  std::string where = origin_;
  if (node) {
    where += ": node '" + node_name() + "' (" + node->op_type() + ", domain " +
             domain_name(node->domain()) + ", opset " + std::to_string(node_opset) + ")";
  }
  return std::move(s).with_context(where);
}

std::string Importer::node_name() const {
  if (!node) return "";
  if (!node->name().empty()) return node->name();
  return node->op_type() + (node->output_size() ? "->" + node->output(0) : std::string());
}

const ConstTensor* Importer::constant(const std::string& name) const {
  auto it = consts.find(name);
  return it == consts.end() ? nullptr : &it->second;
}

Result<std::uint32_t> Importer::operand(const std::string& name) {
  if (auto it = values.find(name); it != values.end()) return it->second;
  const ConstTensor* c = constant(name);
  if (!c)
    return not_found("input '" + name +
                     "' is not a graph input, an initializer or an earlier node's output");
  if (c->depends_on_batch()) return batch_as_data(name);
  const Ref data =
      c->dtype == DType::kF32 ? b.add_array<float>(c->f) : b.add_array<std::int64_t>(c->i);
  const std::uint32_t id =
      b.add_value(name, c->dtype, c->dtype, ValueKind::kConstant, false, c->dims, data);
  values.emplace(name, id);
  shapes.resize(id + 1);
  shapes[id] = VShape{c->dtype, false, c->dims};
  return id;
}

std::uint32_t Importer::define(const std::string& name, DType dtype, bool batched,
                               std::vector<std::int64_t> dims) {
  const std::uint32_t id = b.add_value(name, dtype, dtype, ValueKind::kIntermediate, batched, dims);
  if (batched && !dims.empty()) dims[0] = -1;
  values[name] = id;
  shapes.resize(id + 1);
  shapes[id] = VShape{dtype, batched, std::move(dims)};
  return id;
}

std::uint32_t Importer::temp(std::string_view suffix, DType dtype, bool batched,
                             std::vector<std::int64_t> dims) {
  return define(node_name() + "/" + std::string(suffix), dtype, batched, std::move(dims));
}

const onnx::AttributeProto* Importer::attr(std::string_view name) const {
  for (const auto& a : node->attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}
std::int64_t Importer::attr_i(std::string_view name, std::int64_t fallback) const {
  const auto* a = attr(name);
  return a ? a->i() : fallback;
}
float Importer::attr_f(std::string_view name, float fallback) const {
  const auto* a = attr(name);
  return a ? a->f() : fallback;
}
std::string Importer::attr_s(std::string_view name, std::string fallback) const {
  const auto* a = attr(name);
  return a ? a->s() : fallback;
}
std::vector<std::int64_t> Importer::attr_ints(std::string_view name) const {
  const auto* a = attr(name);
  return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end())
           : std::vector<std::int64_t>{};
}
std::vector<float> Importer::attr_floats(std::string_view name) const {
  if (const auto* a = attr(name)) return std::vector<float>(a->floats().begin(), a->floats().end());
  if (const auto* a = attr(std::string(name) + "_as_tensor")) {
    auto t = parse_tensor(a->t());
    if (t && t->dtype == DType::kF32) return t->f;
  }
  return {};
}
std::vector<std::string> Importer::attr_strings(std::string_view name) const {
  const auto* a = attr(name);
  return a ? std::vector<std::string>(a->strings().begin(), a->strings().end())
           : std::vector<std::string>{};
}

Result<PostTransform> parse_post_transform(const std::string& s) {
  if (s == "NONE" || s.empty()) return PostTransform::kNone;
  if (s == "LOGISTIC") return PostTransform::kLogistic;
  if (s == "SOFTMAX") return PostTransform::kSoftmax;
  if (s == "SOFTMAX_ZERO") return PostTransform::kSoftmaxZero;
  return unimplemented("post_transform '" + s +
                       "' is not supported (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO)");
}

Status Importer::compile_node(const onnx::NodeProto& n, std::string_view domain,
                              std::int64_t op_opset) {
  node = &n;
  node_opset = op_opset;
  if (skip.count(&n)) return {};  // fused into an earlier node
  bool known = false;
  Status s = domain.empty() || domain == "ai.onnx" ? compile_standard(*this, n, known)
             : domain == "ai.onnx.ml"              ? compile_ml(*this, n, known)
                                                   : Status();
  if (!known) {
    return unimplemented(origin_ + ": node '" + node_name() + "' uses unsupported op '" +
                         n.op_type() + "' (domain " + domain_name(domain) + ", opset " +
                         std::to_string(op_opset) + ")");
  }
  return fail(std::move(s));
}

Result<std::vector<std::byte>> import_onnx(std::span<const std::byte> bytes,
                                           std::string_view origin) {
  const std::string where(origin);
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    return out_of_range(where + ": ONNX file larger than 2 GiB");
  onnx::ModelProto m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return parse_error(where + ": not a valid ONNX model (protobuf parse failed)");
  if (!m.has_graph()) return parse_error(where + ": ONNX model has no graph");
  Importer im(where);
  bool has_opset = false, has_ml_opset = false;
  for (const auto& o : m.opset_import()) {
    const bool std_domain = o.domain().empty() || o.domain() == "ai.onnx";
    if (!std_domain && o.domain() != "ai.onnx.ml") continue;
    if (Status s = check_opset(o.domain(), o.version()); !s.ok())
      return std::move(s).with_context(where);
    (std_domain ? im.opset : im.ml_opset) = o.version();
    (std_domain ? has_opset : has_ml_opset) = true;
  }
  const onnx::GraphProto& g = m.graph();
  for (const auto& t : g.initializer()) {
    auto c = parse_tensor(t);
    if (!c) return std::move(c).error().with_context(where + ": initializer '" + t.name() + "'");
    im.consts[t.name()] = std::move(*c);
  }
  std::vector<std::uint32_t> inputs, outputs;
  for (const auto& in : g.input()) {
    if (im.consts.count(in.name())) continue;  // an initializer with a default: a constant
    const std::string what = where + ": input '" + in.name() + "'";
    if (!in.type().has_tensor_type()) return unimplemented(what + " is not a tensor");
    const auto& tt = in.type().tensor_type();
    DType declared;
    switch (tt.elem_type()) {
      case onnx::TensorProto::FLOAT:
        declared = DType::kF32;
        break;
      case onnx::TensorProto::DOUBLE:
        declared = DType::kF64;
        break;
      default:
        return unimplemented(what + " has element type " + std::to_string(tt.elem_type()) +
                             "; only float and double inputs are supported");
    }
    if (!tt.has_shape()) return invalid_argument(what + " has no shape");
    if (tt.shape().dim_size() > static_cast<int>(kMaxRank))
      return unimplemented(what + " has rank > 8");
    std::vector<std::int64_t> dims;
    bool batched = false;
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      if (dim.has_dim_value() && dim.dim_value() < 0) {
        return invalid_argument(what + ": dimension " + std::to_string(d) + " is negative (" +
                                std::to_string(dim.dim_value()) + ")");
      }
      if (dim.has_dim_value()) {
        dims.push_back(dim.dim_value());
      } else if (d == 0) {
        batched = true;
        dims.push_back(-1);
      } else {
        return unimplemented(what + ": dimension " + std::to_string(d) +
                             " is symbolic; only the first (batch) dimension may be");
      }
    }
    if (auto n = checked_count(std::span<const std::int64_t>(dims).subspan(batched ? 1 : 0)); !n)
      return n.error().with_context(what);
    const std::uint32_t id =
        im.b.add_value(in.name(), DType::kF32, declared, ValueKind::kInput, batched, dims);
    im.values[in.name()] = id;
    im.shapes.resize(id + 1);
    im.shapes[id] = VShape{DType::kF32, batched, dims};
    inputs.push_back(id);
  }
  for (const auto& n : g.node()) {
    for (const auto& name : n.input()) {
      if (name.empty()) continue;
      ++im.readers[name];
      im.last_reader[name] = &n;
    }
  }
  for (const auto& out : g.output()) {
    ++im.readers[out.name()];
    im.last_reader[out.name()] = nullptr;
  }
  for (const auto& n : g.node()) {
    const bool ml = n.domain() == "ai.onnx.ml";
    std::int64_t op_opset = ml ? im.ml_opset : im.opset;
    if (n.domain() != "" && n.domain() != "ai.onnx" && !ml) op_opset = 0;
    if ((n.domain().empty() || n.domain() == "ai.onnx" || ml) && !(ml ? has_ml_opset : has_opset))
      return unimplemented(where + ": node '" + (n.name().empty() ? n.op_type() : n.name()) +
                           "' (" + n.op_type() + ") is in domain " + domain_name(n.domain()) +
                           ", which the model's opset_import does not list");
    for (const auto& o : m.opset_import()) {
      if (o.domain() == n.domain()) op_opset = o.version();
    }
    MYELIN_RETURN_IF_ERROR(im.compile_node(n, n.domain(), op_opset));
  }
  im.node = nullptr;
  for (const auto& out : g.output()) {
    auto id = im.operand(out.name());
    if (!id) return not_found(where + ": graph output '" + out.name() + "' is never produced");
    if (std::find(outputs.begin(), outputs.end(), *id) != outputs.end())
      return unimplemented(where + ": graph output '" + out.name() + "' is listed twice");
    outputs.push_back(*id);
  }
  if (outputs.empty()) return invalid_argument(where + ": the graph has no outputs");
  if (inputs.empty()) return invalid_argument(where + ": the graph has no inputs");
  im.b.set_io(std::move(inputs), std::move(outputs));
  return im.b.finish();
}

}  // namespace myelin::model::detail
