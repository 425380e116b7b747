// ByteReader: bounds-checked decoding of AMQP 0-9-1 data types from a span.
//
// Never reads past the end. Every failure is a kParseError whose message says
// what was being read, at which offset, and the size of what ran out:
// "short string of 40 bytes at offset 9 runs past the end of the 12-byte
// frame payload". Callers prefix the method and field name with
// Status::with_context. Field tables and arrays are decoded with a nested
// reader over exactly their announced bytes, so a bad inner length cannot
// escape its table. The reader views the caller's bytes; it does not own them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "myelin/amqp/types.h"
#include "myelin/base/status.h"

namespace myelin::amqp::wire {

class ByteReader {
 public:
  // `container` names what `in` is ("frame payload", "field table") in errors.
  explicit ByteReader(std::span<const std::byte> in,
                      std::string_view container = "frame payload") noexcept
      : in_(in), container_(container) {}

  [[nodiscard]] std::size_t offset() const noexcept { return pos_; }
  [[nodiscard]] std::size_t size() const noexcept { return in_.size(); }
  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }
  [[nodiscard]] bool at_end() const noexcept { return pos_ == in_.size(); }

  Status u8(std::uint8_t& v);
  Status u16(std::uint16_t& v);
  Status u32(std::uint32_t& v);
  Status u64(std::uint64_t& v);
  // Views the next `n` bytes; `what` names them in the error.
  Status bytes(std::size_t n, std::span<const std::byte>& out, std::string_view what);

  Status shortstr(std::string& s);
  Status longstr(std::string& s);
  Status table(FieldTable& t) { return table_at_depth(t, 0); }
  Status array(FieldArray& a) { return array_at_depth(a, 0); }
  Status field_value(FieldValue& v) { return value_at_depth(v, 0); }

  // "<what> at offset N runs past the end of the M-byte <container>".
  [[nodiscard]] Status overrun(std::string_view what) const;

 private:
  template <typename T>
  Status get_be(T& v, std::string_view what);
  Status table_at_depth(FieldTable& t, int depth);
  Status array_at_depth(FieldArray& a, int depth);
  Status value_at_depth(FieldValue& v, int depth);
  // Reads a u32 length and views that many bytes for a nested table/array.
  Status nested(std::string_view what, std::span<const std::byte>& body);

  std::span<const std::byte> in_;
  std::string_view container_;
  std::size_t pos_ = 0;
};

}  // namespace myelin::amqp::wire
