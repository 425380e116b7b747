#include "src/amqp/byte_writer.h"

#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "src/amqp/wire.h"

namespace myelin::amqp::wire {

void ByteWriter::bytes(std::span<const std::byte> b) {
  if (b.empty()) return;
  const std::size_t at = out_->size();
  out_->resize(at + b.size());
  std::memcpy(out_->data() + at, b.data(), b.size());
}

void ByteWriter::shortstr(std::string_view s) {
  if (s.size() > kMaxShortString) {
    fail(invalid_argument("short string of " + std::to_string(s.size()) +
                          " bytes exceeds the 255-byte limit"));
    return;
  }
  u8(static_cast<std::uint8_t>(s.size()));
  bytes(s);
}

void ByteWriter::longstr(std::string_view s) {
  if (s.size() > std::numeric_limits<std::uint32_t>::max()) {
    fail(invalid_argument("long string of " + std::to_string(s.size()) +
                          " bytes exceeds the 4 GiB limit"));
    return;
  }
  u32(static_cast<std::uint32_t>(s.size()));
  bytes(s);
}

void ByteWriter::patch_u32(std::size_t at, std::uint32_t v) noexcept {
  std::byte* p = out_->data() + at;
  for (int i = 0; i < 4; ++i) p[i] = std::byte(static_cast<std::uint8_t>(v >> (24 - 8 * i)));
}

void ByteWriter::close_length(std::size_t at, std::string_view what) {
  const std::size_t n = out_->size() - at - 4;
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    fail(invalid_argument(std::string(what) + " of " + std::to_string(n) +
                          " bytes exceeds the 4 GiB limit"));
    return;
  }
  patch_u32(at, static_cast<std::uint32_t>(n));
}

void ByteWriter::table_at_depth(const FieldTable& t, int depth) {
  if (depth >= kMaxFieldNesting) {
    fail(invalid_argument("field tables and arrays nested deeper than " +
                          std::to_string(kMaxFieldNesting) + " levels"));
    return;
  }
  const std::size_t at = placeholder_u32();
  for (const auto& [name, value] : t) {
    if (name.size() > kMaxShortString) {
      fail(invalid_argument("field table name of " + std::to_string(name.size()) +
                            " bytes exceeds the 255-byte limit"));
      return;
    }
    shortstr(name);
    const bool was_ok = ok();
    value_at_depth(value, depth + 1);
    if (was_ok && !ok()) {
      add_context("field '" + name + "'");
      return;
    }
  }
  close_length(at, "field table");
}

void ByteWriter::array_at_depth(const FieldArray& a, int depth) {
  if (depth >= kMaxFieldNesting) {
    fail(invalid_argument("field tables and arrays nested deeper than " +
                          std::to_string(kMaxFieldNesting) + " levels"));
    return;
  }
  const std::size_t at = placeholder_u32();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool was_ok = ok();
    value_at_depth(a[i], depth + 1);
    if (was_ok && !ok()) {
      add_context("array element " + std::to_string(i));
      return;
    }
  }
  close_length(at, "field array");
}

void ByteWriter::value_at_depth(const FieldValue& v, int depth) {
  std::visit(
      [&](const auto& x) {
        using T = std::remove_cvref_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          u8('V');
        } else if constexpr (std::is_same_v<T, bool>) {
          u8('t');
          u8(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::int8_t>) {
          u8('b');
          u8(static_cast<std::uint8_t>(x));
        } else if constexpr (std::is_same_v<T, std::uint8_t>) {
          u8('B');
          u8(x);
        } else if constexpr (std::is_same_v<T, std::int16_t>) {
          u8('s');
          u16(static_cast<std::uint16_t>(x));
        } else if constexpr (std::is_same_v<T, std::uint16_t>) {
          u8('u');
          u16(x);
        } else if constexpr (std::is_same_v<T, std::int32_t>) {
          u8('I');
          u32(static_cast<std::uint32_t>(x));
        } else if constexpr (std::is_same_v<T, std::uint32_t>) {
          u8('i');
          u32(x);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          u8('l');
          u64(static_cast<std::uint64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          u8('f');
          u32(std::bit_cast<std::uint32_t>(x));
        } else if constexpr (std::is_same_v<T, double>) {
          u8('d');
          u64(std::bit_cast<std::uint64_t>(x));
        } else if constexpr (std::is_same_v<T, Decimal>) {
          u8('D');
          u8(x.scale);
          u32(x.value);
        } else if constexpr (std::is_same_v<T, std::string>) {
          u8('S');
          longstr(x);
        } else if constexpr (std::is_same_v<T, ByteArray>) {
          u8('x');
          longstr(x.bytes);
        } else if constexpr (std::is_same_v<T, FieldArray>) {
          u8('A');
          array_at_depth(x, depth);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          u8('T');
          u64(x.seconds);
        } else {
          static_assert(std::is_same_v<T, FieldTable>);
          u8('F');
          table_at_depth(x, depth);
        }
      },
      v.value);
}

}  // namespace myelin::amqp::wire
