// The inference envelope (docs/serving.md, "The inference envelope").
#include "myelin/serve/envelope.h"

#include <array>
#include <cstring>

namespace myelin::serve {
namespace {

constexpr std::array<char, 4> kRequestMagic = {'M', 'S', 'R', 'Q'};
constexpr std::array<char, 4> kReplyMagic = {'M', 'S', 'R', 'P'};

template <typename T>
void put_le(std::vector<std::byte>& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<std::byte>(static_cast<std::uint64_t>(v) >> (8 * i)));
  }
}

template <typename T>
T get_le(const std::byte* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<T>(static_cast<T>(std::to_integer<std::uint8_t>(p[i])) << (8 * i));
  }
  return v;
}

void put_bytes(std::vector<std::byte>& out, std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

bool magic_is(std::span<const std::byte> m, const std::array<char, 4>& magic) {
  return m.size() >= 4 && std::memcmp(m.data(), magic.data(), 4) == 0;
}

// Reads the fields of a message in order; every failure names the field
// and the byte offset where it starts.
struct Reader {
  std::span<const std::byte> m;
  std::size_t pos = 0;
  const char* what;  // "request", "reply"

  Status fail(std::string_view field, std::string_view problem) const {
    return parse_error(std::string(what) + " envelope: " + std::string(field) + " at byte " +
                       std::to_string(pos) + ": " + std::string(problem));
  }
  [[nodiscard]] std::size_t left() const { return m.size() - pos; }
  Status need(std::string_view field, std::size_t n) const {
    if (left() >= n) return ok_status();
    return fail(field, "truncated (" + std::to_string(n) + " bytes needed, " +
                           std::to_string(left()) + " left)");
  }
  template <typename T>
  Result<T> le(std::string_view field) {
    MYELIN_RETURN_IF_ERROR(need(field, sizeof(T)));
    const T v = get_le<T>(m.data() + pos);
    pos += sizeof(T);
    return v;
  }
  // le16 length || UTF-8 bytes, with the length in [min, max].
  Result<std::string_view> name(std::string_view field, std::size_t min, std::size_t max) {
    const std::size_t at = pos;
    MYELIN_ASSIGN_OR_RETURN(const std::uint16_t n, le<std::uint16_t>(field));
    if (n < min || n > max) {
      pos = at;
      return fail(field, "length " + std::to_string(n) + " outside [" + std::to_string(min) + ", " +
                             std::to_string(max) + "]");
    }
    if (Status s = need(field, n); !s.ok()) {
      pos = at;
      return s;
    }
    const auto bytes = m.subspan(pos, n);
    if (!secure::valid_utf8(bytes)) {
      pos = at;
      return fail(field, "not valid UTF-8");
    }
    pos += n;
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

Status check_name(std::string_view field, std::string_view s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) {
    return invalid_argument("envelope: " + std::string(field) + " of " + std::to_string(s.size()) +
                            " bytes, outside [" + std::to_string(min) + ", " + std::to_string(max) +
                            "]");
  }
  if (!secure::valid_utf8(std::as_bytes(std::span(s.data(), s.size())))) {
    return invalid_argument("envelope: " + std::string(field) + " is not valid UTF-8");
  }
  return ok_status();
}

}  // namespace

std::string_view to_string(ReplyCode code) noexcept {
  switch (code) {
    case ReplyCode::kOk:
      return "ok";
    case ReplyCode::kBadRequest:
      return "bad_request";
    case ReplyCode::kNotFound:
      return "not_found";
    case ReplyCode::kUnavailable:
      return "unavailable";
    case ReplyCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case ReplyCode::kInternal:
      return "internal";
  }
  return "unknown";
}

ReplyCode reply_code_for(const Status& status) noexcept {
  switch (status.code()) {
    case ErrorCode::kOk:
      return ReplyCode::kOk;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParseError:
    case ErrorCode::kOutOfRange:
      return ReplyCode::kBadRequest;
    case ErrorCode::kNotFound:
      return ReplyCode::kNotFound;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kUnavailable:
    case ErrorCode::kClosed:
      return ReplyCode::kUnavailable;
    case ErrorCode::kDeadlineExceeded:
      return ReplyCode::kDeadlineExceeded;
    default:
      return ReplyCode::kInternal;
  }
}

Result<std::vector<std::byte>> encode_request(const RequestEnvelope& r) {
  MYELIN_RETURN_IF_ERROR(check_name("model", r.model, 1, kMaxModelName));
  MYELIN_RETURN_IF_ERROR(check_name("version", r.version, 0, kMaxVersionName));
  if (r.outputs.size() > kMaxRequestedOutputs) {
    return invalid_argument("envelope: " + std::to_string(r.outputs.size()) +
                            " requested outputs, above 64");
  }
  for (std::string_view o : r.outputs) {
    MYELIN_RETURN_IF_ERROR(check_name("output name", o, 1, secure::kMaxTensorName));
  }
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> tensors, secure::encode_tensors(r.inputs));
  std::vector<std::byte> out;
  out.reserve(kRequestFixedSize + 4 + r.model.size() + r.version.size() + tensors.size());
  put_bytes(out, {kRequestMagic.data(), 4});
  out.push_back(std::byte{kEnvelopeVersion});
  out.push_back(std::byte{0});  // flags
  put_le(out, r.id);
  put_le(out, r.timeout_us);
  put_le(out, static_cast<std::uint16_t>(r.model.size()));
  put_bytes(out, r.model);
  put_le(out, static_cast<std::uint16_t>(r.version.size()));
  put_bytes(out, r.version);
  put_le(out, static_cast<std::uint16_t>(r.outputs.size()));
  for (std::string_view o : r.outputs) {
    put_le(out, static_cast<std::uint16_t>(o.size()));
    put_bytes(out, o);
  }
  out.insert(out.end(), tensors.begin(), tensors.end());
  return out;
}

Status decode_request(std::span<const std::byte> m, RequestEnvelope& out) {
  out.outputs.clear();
  out.inputs.clear();
  Reader rd{m, 0, "request"};
  MYELIN_RETURN_IF_ERROR(rd.need("magic", 4));
  if (!magic_is(m, kRequestMagic)) return rd.fail("magic", "not \"MSRQ\"");
  rd.pos = 4;
  MYELIN_ASSIGN_OR_RETURN(const std::uint8_t version, rd.le<std::uint8_t>("version"));
  if (version != kEnvelopeVersion) {
    --rd.pos;
    return rd.fail("version", std::to_string(version) + ", expected 1");
  }
  MYELIN_ASSIGN_OR_RETURN(const std::uint8_t flags, rd.le<std::uint8_t>("flags"));
  if (flags != 0) {
    --rd.pos;
    return rd.fail("flags", std::to_string(flags) + ", expected 0");
  }
  MYELIN_ASSIGN_OR_RETURN(out.id, rd.le<std::uint64_t>("id"));
  MYELIN_ASSIGN_OR_RETURN(out.timeout_us, rd.le<std::uint64_t>("timeout_us"));
  MYELIN_ASSIGN_OR_RETURN(out.model, rd.name("model", 1, kMaxModelName));
  MYELIN_ASSIGN_OR_RETURN(out.version, rd.name("version", 0, kMaxVersionName));
  const std::size_t count_at = rd.pos;
  MYELIN_ASSIGN_OR_RETURN(const std::uint16_t n_outputs, rd.le<std::uint16_t>("n_outputs"));
  if (n_outputs > kMaxRequestedOutputs) {
    rd.pos = count_at;
    return rd.fail("n_outputs", std::to_string(n_outputs) + " above 64");
  }
  out.outputs.reserve(n_outputs);
  for (std::uint16_t i = 0; i < n_outputs; ++i) {
    MYELIN_ASSIGN_OR_RETURN(
        auto name, rd.name("outputs[" + std::to_string(i) + "]", 1, secure::kMaxTensorName));
    out.outputs.push_back(name);
  }
  const std::size_t tensors_at = rd.pos;
  if (Status s = secure::decode_tensors(m.subspan(tensors_at), out.inputs); !s.ok()) {
    return parse_error("request envelope: inputs at byte " + std::to_string(tensors_at) + ": " +
                       std::string(s.message()));
  }
  return ok_status();
}

std::uint64_t request_id_of(std::span<const std::byte> m) noexcept {
  if (m.size() < 14 || !magic_is(m, kRequestMagic)) return 0;
  return get_le<std::uint64_t>(m.data() + 6);
}

Result<std::vector<std::byte>> encode_reply(const ReplyEnvelope& r) {
  std::vector<std::byte> out;
  std::vector<std::byte> tensors;
  std::string_view message = r.message;
  if (r.code == ReplyCode::kOk) {
    MYELIN_ASSIGN_OR_RETURN(tensors, secure::encode_tensors(r.outputs));
  } else if (message.size() > kMaxReplyMessage) {
    // Cut at a character boundary, so the message stays valid UTF-8.
    std::size_t n = kMaxReplyMessage;
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xc0) == 0x80) --n;
    message = message.substr(0, n);
  }
  if (r.code != ReplyCode::kOk &&
      !secure::valid_utf8(std::as_bytes(std::span(message.data(), message.size())))) {
    return invalid_argument("envelope: reply message is not valid UTF-8");
  }
  out.reserve(kReplyFixedSize + 4 + message.size() + tensors.size());
  put_bytes(out, {kReplyMagic.data(), 4});
  out.push_back(std::byte{kEnvelopeVersion});
  out.push_back(std::byte{static_cast<std::uint8_t>(r.code)});
  put_le(out, r.id);
  if (r.code == ReplyCode::kOk) {
    out.insert(out.end(), tensors.begin(), tensors.end());
  } else {
    put_le(out, static_cast<std::uint32_t>(message.size()));
    put_bytes(out, message);
  }
  return out;
}

Status decode_reply(std::span<const std::byte> m, ReplyEnvelope& out) {
  out.outputs.clear();
  out.message = {};
  Reader rd{m, 0, "reply"};
  MYELIN_RETURN_IF_ERROR(rd.need("magic", 4));
  if (!magic_is(m, kReplyMagic)) return rd.fail("magic", "not \"MSRP\"");
  rd.pos = 4;
  MYELIN_ASSIGN_OR_RETURN(const std::uint8_t version, rd.le<std::uint8_t>("version"));
  if (version != kEnvelopeVersion) {
    --rd.pos;
    return rd.fail("version", std::to_string(version) + ", expected 1");
  }
  MYELIN_ASSIGN_OR_RETURN(const std::uint8_t code, rd.le<std::uint8_t>("code"));
  if (code > static_cast<std::uint8_t>(ReplyCode::kInternal)) {
    --rd.pos;
    return rd.fail("code", "unknown code " + std::to_string(code));
  }
  out.code = static_cast<ReplyCode>(code);
  MYELIN_ASSIGN_OR_RETURN(out.id, rd.le<std::uint64_t>("id"));
  if (out.code == ReplyCode::kOk) {
    const std::size_t at = rd.pos;
    if (Status s = secure::decode_tensors(m.subspan(at), out.outputs); !s.ok()) {
      return parse_error("reply envelope: outputs at byte " + std::to_string(at) + ": " +
                         std::string(s.message()));
    }
    return ok_status();
  }
  const std::size_t len_at = rd.pos;
  MYELIN_ASSIGN_OR_RETURN(const std::uint32_t len, rd.le<std::uint32_t>("message_len"));
  if (len > kMaxReplyMessage || len != rd.left()) {
    rd.pos = len_at;
    return rd.fail("message_len", std::to_string(len) + " but " +
                                      std::to_string(m.size() - len_at - 4) +
                                      " bytes follow (at most 65535)");
  }
  const auto bytes = m.subspan(rd.pos, len);
  if (!secure::valid_utf8(bytes)) return rd.fail("message", "not valid UTF-8");
  out.message = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return ok_status();
}

}  // namespace myelin::serve
