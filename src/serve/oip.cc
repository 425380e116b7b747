#include "src/serve/oip.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

namespace myelin::serve::detail {
namespace dom = simdjson::dom;
namespace {

struct DtypeName {
  DType dtype;
  std::string_view name;
};
constexpr DtypeName kDtypes[] = {
    {DType::kF32, "FP32"},  {DType::kF64, "FP64"},  {DType::kF16, "FP16"}, {DType::kBF16, "BF16"},
    {DType::kI32, "INT32"}, {DType::kI64, "INT64"}, {DType::kU8, "UINT8"}, {DType::kU32, "UINT32"},
};

Status bad(const std::string& where, std::string_view what) {
  return invalid_argument(where + ": " + std::string(what));
}

Status json_error(const std::string& where, simdjson::error_code e) {
  return invalid_argument(where + ": malformed JSON (" + std::string(simdjson::error_message(e)) +
                          ")");
}

// Where decoded numbers go: straight into the dtype once it is known, else
// into doubles converted at the end ("data" may come before "datatype").
struct DataSink {
  std::optional<DType> dtype;
  std::vector<std::byte>* out = nullptr;
  std::vector<double> pending;
  std::uint64_t count = 0;

  template <typename T>
  void put(T v) {
    const std::size_t at = out->size();
    out->resize(at + sizeof(T));
    std::memcpy(out->data() + at, &v, sizeof(T));
  }
};

Status put_integer(DataSink& sink, std::int64_t v, const std::string& where) {
  switch (*sink.dtype) {
    case DType::kI64:
      sink.put<std::int64_t>(v);
      return {};
    case DType::kI32:
      if (v < INT32_MIN || v > INT32_MAX) return bad(where, "value out of range for INT32");
      sink.put<std::int32_t>(static_cast<std::int32_t>(v));
      return {};
    case DType::kU32:
      if (v < 0 || v > static_cast<std::int64_t>(UINT32_MAX)) {
        return bad(where, "value out of range for UINT32");
      }
      sink.put<std::uint32_t>(static_cast<std::uint32_t>(v));
      return {};
    case DType::kU8:
      if (v < 0 || v > 255) return bad(where, "value out of range for UINT8");
      sink.put<std::uint8_t>(static_cast<std::uint8_t>(v));
      return {};
    default:
      return bad(where, "datatype " + std::string(oip_datatype(*sink.dtype)) +
                            " is only accepted as binary data");
  }
}

Status put_value(DataSink& sink, dom::element& v, const std::string& where) {
  ++sink.count;
  if (!sink.dtype) {
    double d;
    if (v.get_double().get(d)) return bad(where, "expected numbers");
    sink.pending.push_back(d);
    return {};
  }
  if (*sink.dtype == DType::kF32 || *sink.dtype == DType::kF64) {
    double d;
    if (v.get_double().get(d)) return bad(where, "expected numbers");
    if (*sink.dtype == DType::kF32) {
      sink.put<float>(static_cast<float>(d));
    } else {
      sink.put<double>(d);
    }
    return {};
  }
  std::int64_t i;
  if (v.get_int64().get(i)) return bad(where, "expected integers");
  return put_integer(sink, i, where);
}

Status read_data(dom::element v, std::size_t depth, DataSink& sink, const std::string& where) {
  const dom::element_type t = v.type();
  if (t == dom::element_type::ARRAY) {
    if (depth >= kMaxRank) return bad(where, "nested deeper than " + std::to_string(kMaxRank));
    dom::array a;
    if (auto e = v.get_array().get(a)) return json_error(where, e);
    for (dom::element ev : a) MYELIN_RETURN_IF_ERROR(read_data(ev, depth + 1, sink, where));
    return {};
  }
  if (t == dom::element_type::INT64 || t == dom::element_type::UINT64 ||
      t == dom::element_type::DOUBLE) {
    return put_value(sink, v, where);
  }
  if (t == dom::element_type::BOOL) return bad(where, "BOOL data is not supported");
  return bad(where, "expected numbers or arrays of numbers");
}

Result<std::int64_t> read_int(dom::element v, const std::string& where) {
  std::int64_t i;
  if (v.get_int64().get(i)) return bad(where, "expected an integer");
  return i;
}

Result<std::string> read_string(dom::element v, const std::string& where) {
  std::string_view s;
  if (v.get_string().get(s)) return bad(where, "expected a string");
  return std::string(s);
}

Result<bool> read_bool(dom::element v, const std::string& where) {
  bool b;
  if (v.get_bool().get(b)) return bad(where, "expected true or false");
  return b;
}

struct BinaryInput {
  std::size_t input;
  std::uint64_t size;
};

Status read_input(dom::element v, std::size_t k, InferenceRequest& request,
                  std::vector<BinaryInput>& binary) {
  const std::string where = "inputs[" + std::to_string(k) + "]";
  dom::object obj;
  if (v.get_object().get(obj)) return bad(where, "expected an object");
  InputTensor& in = request.inputs.emplace_back();
  std::vector<std::int64_t> dims;
  bool have_shape = false, have_datatype = false, have_data = false;
  std::optional<std::uint64_t> binary_size;
  DataSink sink;
  sink.out = &in.owned;
  for (auto field : obj) {
    const std::string_view key = field.key;
    dom::element fv = field.value;
    if (key == "name") {
      MYELIN_ASSIGN_OR_RETURN(in.name, read_string(fv, where + ".name"));
    } else if (key == "shape") {
      dom::array a;
      if (fv.get_array().get(a)) return bad(where + ".shape", "expected an array");
      for (dom::element ev : a) {
        MYELIN_ASSIGN_OR_RETURN(auto d, read_int(ev, where + ".shape"));
        if (d < 0) return bad(where + ".shape", "dimensions must be >= 0");
        if (dims.size() == kMaxRank) {
          return bad(where + ".shape", "more than " + std::to_string(kMaxRank) + " dimensions");
        }
        dims.push_back(d);
      }
      have_shape = true;
    } else if (key == "datatype") {
      if (have_datatype) return bad(where, "'datatype' given twice");
      MYELIN_ASSIGN_OR_RETURN(auto name, read_string(fv, where + ".datatype"));
      auto dt = parse_oip_datatype(name);
      if (!dt) return bad(where + ".datatype", "unsupported datatype '" + name + "'");
      if (have_data) {  // numbers came first: convert them now
        sink.dtype = *dt;
        for (double d : sink.pending) {
          if (*dt == DType::kF32) {
            sink.put<float>(static_cast<float>(d));
          } else if (*dt == DType::kF64) {
            sink.put<double>(d);
          } else {
            if (d != std::floor(d) || std::fabs(d) > 9.007199254740992e15) {
              return bad(where + ".data", "expected integers");
            }
            MYELIN_RETURN_IF_ERROR(
                put_integer(sink, static_cast<std::int64_t>(d), where + ".data"));
          }
        }
        sink.pending.clear();
      }
      sink.dtype = *dt;
      in.dtype = *dt;
      have_datatype = true;
    } else if (key == "data") {
      if (have_data) return bad(where, "'data' given twice");
      MYELIN_RETURN_IF_ERROR(read_data(fv, 0, sink, where + ".data"));
      have_data = true;
    } else if (key == "parameters") {
      dom::object p;
      if (fv.get_object().get(p)) return bad(where + ".parameters", "expected an object");
      for (auto pf : p) {
        const std::string_view pk = pf.key;
        dom::element pv = pf.value;
        if (pk == "binary_data_size") {
          MYELIN_ASSIGN_OR_RETURN(auto n, read_int(pv, where + ".parameters.binary_data_size"));
          if (n < 0) return bad(where + ".parameters.binary_data_size", "must be >= 0");
          binary_size = static_cast<std::uint64_t>(n);
        }
      }
    }
    // Other keys are ignored, as the protocol allows extensions.
  }
  if (in.name.empty()) return bad(where, "missing 'name'");
  const std::string label = where + " '" + in.name + "'";
  if (!have_shape) return bad(label, "missing 'shape'");
  if (!have_datatype) return bad(label, "missing 'datatype'");
  auto shape = Shape::from(dims);
  if (!shape) return bad(label + ".shape", shape.error().message());
  in.shape = *shape;
  auto elems = in.shape.element_count();
  if (!elems) return bad(label + ".shape", elems.error().message());
  if (binary_size) {
    if (have_data) return bad(label, "has both 'data' and binary_data_size");
    binary.push_back({k, *binary_size});
    return {};
  }
  if (!have_data) return bad(label, "missing 'data' (or a binary_data_size parameter)");
  if (sink.count != *elems) {
    return bad(label, std::to_string(sink.count) + " values in 'data' for shape " +
                          in.shape.to_string() + " (" + std::to_string(*elems) + " elements)");
  }
  in.data = in.owned;
  return {};
}

Status read_outputs(dom::element v, InferenceRequest& request) {
  dom::array a;
  if (v.get_array().get(a)) return bad("outputs", "expected an array");
  std::size_t k = 0;
  for (auto el : a) {
    const std::string where = "outputs[" + std::to_string(k) + "]";
    if (k == 64) return bad(where, "more than 64 outputs requested");
    dom::object obj;
    if (el.get_object().get(obj)) return bad(where, "expected an object");
    std::string name;
    for (auto field : obj) {
      const std::string_view key = field.key;
      dom::element fv = field.value;
      if (key == "name") {
        MYELIN_ASSIGN_OR_RETURN(name, read_string(fv, where + ".name"));
      } else if (key == "parameters") {
        dom::object p;
        if (fv.get_object().get(p)) return bad(where + ".parameters", "expected an object");
        for (auto pf : p) {
          const std::string_view pk = pf.key;
          dom::element pv = pf.value;
          if (pk == "binary_data") {
            MYELIN_ASSIGN_OR_RETURN(bool b, read_bool(pv, where + ".parameters.binary_data"));
            if (b) request.binary_outputs |= std::uint64_t{1} << k;
          }
        }
      }
    }
    if (name.empty()) return bad(where, "missing 'name'");
    request.requested_outputs.push_back(std::move(name));
    ++k;
  }
  return {};
}

template <typename T>
void append_number(std::string& out, T v) {
  char buf[32];
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      out += "null";
      return;
    }
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void append_values(std::string& out, const OutputTensor& t) {
  out += '[';
  const std::size_t n = t.bytes.size() / std::max<std::size_t>(1, dtype_size(t.dtype));
  auto each = [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, t.bytes.data() + i * sizeof(T), sizeof(T));
      if (i) out += ',';
      append_number(out, v);
    }
  };
  switch (t.dtype) {
    case DType::kF32:
      each(float{});
      break;
    case DType::kF64:
      each(double{});
      break;
    case DType::kI32:
      each(std::int32_t{});
      break;
    case DType::kI64:
      each(std::int64_t{});
      break;
    case DType::kU8:
      each(std::uint8_t{});
      break;
    case DType::kU32:
      each(std::uint32_t{});
      break;
    default:
      break;  // f16/bf16 outputs only go as binary data
  }
  out += ']';
}

void append_shape(std::string& out, std::span<const std::int64_t> dims) {
  out += '[';
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) out += ',';
    append_number(out, dims[i]);
  }
  out += ']';
}

void append_tensor_metadata(std::string& out, std::span<const model::TensorInfo> infos) {
  out += '[';
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":";
    append_json_string(out, infos[i].name);
    out += ",\"datatype\":\"";
    out += oip_datatype(infos[i].declared_dtype);
    out += "\",\"shape\":";
    append_shape(out, infos[i].dims);
    out += '}';
  }
  out += ']';
}

}  // namespace

std::optional<DType> parse_oip_datatype(std::string_view name) noexcept {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

std::string_view oip_datatype(DType dtype) noexcept {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "UNKNOWN";
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
static std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {  // outside bytes may be any bytes: the answer stays valid JSON
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(s.data() + i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

Status decode_infer_request(dom::parser& parser, std::size_t json_length, InferenceRequest& request,
                            DecodedOptions& options) {
  std::string& body = request.body;
  if (json_length > body.size()) {
    return invalid_argument("Inference-Header-Content-Length " + std::to_string(json_length) +
                            " exceeds the body's " + std::to_string(body.size()) + " bytes");
  }
  if (body.capacity() < json_length + simdjson::SIMDJSON_PADDING) {
    body.reserve(json_length + simdjson::SIMDJSON_PADDING);
  }
  dom::element doc;
  if (auto e = parser.parse(body.data(), json_length, false).get(doc)) {
    return json_error("request body", e);
  }
  dom::object obj;
  if (doc.get_object().get(obj)) return bad("request body", "expected a JSON object");
  std::vector<BinaryInput> binary;
  bool have_inputs = false;
  for (auto field : obj) {
    const std::string_view key = field.key;
    dom::element v = field.value;
    if (key == "id") {
      MYELIN_ASSIGN_OR_RETURN(request.id, read_string(v, "id"));
    } else if (key == "inputs") {
      dom::array a;
      if (v.get_array().get(a)) return bad("inputs", "expected an array");
      std::size_t k = 0;
      for (dom::element ev : a) {
        MYELIN_RETURN_IF_ERROR(read_input(ev, k++, request, binary));
      }
      have_inputs = true;
    } else if (key == "outputs") {
      MYELIN_RETURN_IF_ERROR(read_outputs(v, request));
    } else if (key == "parameters") {
      dom::object p;
      if (v.get_object().get(p)) return bad("parameters", "expected an object");
      for (auto pf : p) {
        const std::string_view pk = pf.key;
        dom::element pv = pf.value;
        if (pk == "timeout") {
          MYELIN_ASSIGN_OR_RETURN(auto t, read_int(pv, "parameters.timeout"));
          if (t <= 0) return bad("parameters.timeout", "must be > 0 (microseconds)");
          options.timeout_us = t;
        } else if (pk == "binary_data_output") {
          MYELIN_ASSIGN_OR_RETURN(bool b, read_bool(pv, "parameters.binary_data_output"));
          if (b) request.binary_outputs = ~std::uint64_t{0};
        }
      }
    }
  }
  if (!have_inputs || request.inputs.empty()) return bad("inputs", "missing or empty");
  // Binary tensor data follows the JSON, in input order.
  std::size_t at = json_length;
  for (const auto& b : binary) {
    InputTensor& in = request.inputs[b.input];
    const std::string label = "inputs[" + std::to_string(b.input) + "] '" + in.name + "'";
    if (b.size > body.size() - at) {
      return bad(label, "binary_data_size " + std::to_string(b.size) + " runs past the body (" +
                            std::to_string(body.size() - at) + " bytes of binary data left)");
    }
    in.data = std::as_bytes(std::span<const char>(body.data() + at, b.size));
    at += b.size;
  }
  if (at != body.size()) {
    return bad("request body", std::to_string(body.size() - at) +
                                   " bytes after the JSON and binary inputs are not claimed by "
                                   "any binary_data_size");
  }
  return {};
}

std::size_t encode_infer_response(const InferenceRequest& r,
                                  std::span<const model::TensorInfo> outputs, std::string& out) {
  const std::size_t start = out.size();
  out += "{\"model_name\":";
  append_json_string(out, r.model);
  out += ",\"model_version\":";
  append_json_string(out, r.version);
  if (!r.id.empty()) {
    out += ",\"id\":";
    append_json_string(out, r.id);
  }
  out += ",\"outputs\":[";
  bool any_binary = false;
  for (std::size_t k = 0; k < r.output_index.size(); ++k) {
    const std::size_t j = r.output_index[k];
    const OutputTensor& t = r.outputs[j];
    if (k) out += ',';
    out += "{\"name\":";
    append_json_string(out, outputs[j].name);
    out += ",\"datatype\":\"";
    out += oip_datatype(t.dtype);
    out += "\",\"shape\":";
    append_shape(out, t.shape.dims());
    const bool binary = k < 64 && ((r.binary_outputs >> k) & 1) != 0;
    if (binary) {
      out += ",\"parameters\":{\"binary_data_size\":";
      append_number(out, static_cast<std::uint64_t>(t.bytes.size()));
      out += "}}";
      any_binary = true;
    } else {
      out += ",\"data\":";
      append_values(out, t);
      out += '}';
    }
  }
  out += "]}";
  const std::size_t json_length = out.size() - start;
  if (any_binary) {
    for (std::size_t k = 0; k < r.output_index.size() && k < 64; ++k) {
      if (((r.binary_outputs >> k) & 1) == 0) continue;
      const OutputTensor& t = r.outputs[r.output_index[k]];
      out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    }
  }
  return json_length;
}

void encode_error(std::string_view message, std::string& out) {
  out += "{\"error\":";
  append_json_string(out, message);
  out += '}';
}

void encode_model_metadata(std::string_view name, std::string_view version,
                           std::string_view platform, const model::Model& model, std::string& out) {
  out += "{\"name\":";
  append_json_string(out, name);
  out += ",\"versions\":[";
  append_json_string(out, version);
  out += "],\"platform\":";
  append_json_string(out, platform);
  out += ",\"inputs\":";
  append_tensor_metadata(out, model.inputs());
  out += ",\"outputs\":";
  append_tensor_metadata(out, model.outputs());
  out += '}';
}

}  // namespace myelin::serve::detail
