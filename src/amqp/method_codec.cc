#include <array>
#include <string>
#include <utility>

#include "src/amqp/byte_reader.h"
#include "src/amqp/method.h"

namespace myelin::amqp::wire {
namespace {

// The mirror of MethodEncoder: reads each argument in order, packs of bits
// from one octet, and keeps the first error with "method: argument: " put
// in front of the reader's message.
class MethodDecoder {
 public:
  MethodDecoder(ByteReader& in, std::string_view method) noexcept : in_(in), method_(method) {}

  void u8(std::string_view name, std::uint8_t& v) {
    scalar(name, [&] { return in_.u8(v); });
  }
  void u16(std::string_view name, std::uint16_t& v) {
    scalar(name, [&] { return in_.u16(v); });
  }
  void u32(std::string_view name, std::uint32_t& v) {
    scalar(name, [&] { return in_.u32(v); });
  }
  void u64(std::string_view name, std::uint64_t& v) {
    scalar(name, [&] { return in_.u64(v); });
  }
  void shortstr(std::string_view name, std::string& s) {
    scalar(name, [&] { return in_.shortstr(s); });
  }
  void longstr(std::string_view name, std::string& s) {
    scalar(name, [&] { return in_.longstr(s); });
  }
  void table(std::string_view name, FieldTable& t) {
    scalar(name, [&] { return in_.table(t); });
  }
  void bit(std::string_view name, bool& b) {
    if (!status_.ok()) return;
    if (bits_ == 0 || bits_ == 8) {
      if (Status s = in_.u8(octet_); !s.ok()) return fail(name, std::move(s));
      bits_ = 0;
    }
    b = ((octet_ >> bits_) & 1u) != 0;
    ++bits_;
  }

  Status finish() && {
    if (status_.ok() && !in_.at_end()) {
      return parse_error(std::string(method_) + ": " + std::to_string(in_.remaining()) +
                         " unexpected bytes after the last argument, at offset " +
                         std::to_string(in_.offset()) + " of the " + std::to_string(in_.size()) +
                         "-byte frame payload");
    }
    return std::move(status_);
  }

 private:
  template <typename F>
  void scalar(std::string_view name, F&& read) {
    if (!status_.ok()) return;
    bits_ = 0;
    if (Status s = read(); !s.ok()) fail(name, std::move(s));
  }
  void fail(std::string_view name, Status s) {
    status_ = std::move(s).with_context(name).with_context(method_);
  }

  ByteReader& in_;
  std::string_view method_;
  Status status_;
  std::uint8_t octet_ = 0;
  int bits_ = 0;
};

template <typename T>
Result<Method> decode_as(ByteReader& in) {
  Method m(std::in_place_type<T>);
  MethodDecoder dec(in, T::kName);
  T::fields(std::get<T>(m), dec);
  MYELIN_RETURN_IF_ERROR(std::move(dec).finish());
  return m;
}

struct Entry {
  MethodKey key;
  std::string_view name;
  Result<Method> (*decode)(ByteReader&);
};

template <std::size_t... I>
constexpr std::array<Entry, sizeof...(I)> make_table(std::index_sequence<I...>) {
  return {Entry{{std::variant_alternative_t<I, Method>::kClassId,
                 std::variant_alternative_t<I, Method>::kMethodId},
                std::variant_alternative_t<I, Method>::kName,
                &decode_as<std::variant_alternative_t<I, Method>>}...};
}

constexpr auto kTable = make_table(std::make_index_sequence<std::variant_size_v<Method>>());

const Entry* find(MethodKey key) noexcept {
  for (const Entry& e : kTable) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string_view class_name(std::uint16_t id) {
  switch (id) {
    case class_id::kConnection:
      return "connection";
    case class_id::kChannel:
      return "channel";
    case class_id::kAccess:
      return "access";
    case class_id::kExchange:
      return "exchange";
    case class_id::kQueue:
      return "queue";
    case class_id::kBasic:
      return "basic";
    case class_id::kConfirm:
      return "confirm";
    case class_id::kTx:
      return "tx";
    default:
      return "";
  }
}

}  // namespace

std::string_view method_name(const Method& m) noexcept {
  return std::visit([](const auto& x) { return std::remove_cvref_t<decltype(x)>::kName; }, m);
}

std::string_view method_name(MethodKey key) noexcept {
  const Entry* e = find(key);
  return e ? e->name : std::string_view();
}

bool has_content(const Method& m) noexcept {
  return std::visit([](const auto& x) { return kHasContent<std::remove_cvref_t<decltype(x)>>; }, m);
}

MethodKey method_key(const Method& m) noexcept {
  return std::visit(
      [](const auto& x) {
        using T = std::remove_cvref_t<decltype(x)>;
        return MethodKey{T::kClassId, T::kMethodId};
      },
      m);
}

void encode_method(const Method& m, ByteWriter& out) {
  std::visit([&](const auto& x) { encode_method(x, out); }, m);
}

Result<Method> decode_method(std::span<const std::byte> payload) {
  ByteReader in(payload);
  if (payload.size() < kMethodHeaderSize) {
    return parse_error("method frame payload of " + std::to_string(payload.size()) +
                       " bytes is shorter than its 4-byte class-id and method-id");
  }
  MethodKey key;
  MYELIN_RETURN_IF_ERROR(in.u16(key.class_id));
  MYELIN_RETURN_IF_ERROR(in.u16(key.method_id));
  const Entry* e = find(key);
  if (e == nullptr) {
    const std::string_view cls = class_name(key.class_id);
    if (cls.empty() || key.class_id == class_id::kAccess) {
      return protocol_error("unknown method class " + std::to_string(key.class_id) + " (method " +
                            std::to_string(key.method_id) + ")" +
                            (cls.empty() ? "" : ": the deprecated access class is not supported"));
    }
    return protocol_error("unknown method " + std::to_string(key.method_id) + " of class " +
                          std::to_string(key.class_id) + " (" + std::string(cls) + ")");
  }
  return e->decode(in);
}

}  // namespace myelin::amqp::wire
