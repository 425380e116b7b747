// ByteWriter: appends AMQP 0-9-1 data types to a caller-owned byte vector.
//
// Big-endian integers, short strings (<= 255 bytes, enforced), long strings,
// field tables and arrays in RabbitMQ's dialect (see types.h). Length
// prefixes are written as placeholders and patched afterwards, so encoding
// allocates nothing once the vector has capacity.
//
// Errors are sticky, like a stream's failbit: the first invalid value (an
// over-long short string, a table nested too deeply) records a Status and
// later ones are ignored; callers check status() once at the end and discard
// what was appended. Single-threaded; the vector must outlive the writer.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "myelin/amqp/types.h"
#include "myelin/base/status.h"

namespace myelin::amqp::wire {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::byte>& out) noexcept : out_(&out) {}

  void u8(std::uint8_t v) { out_->push_back(std::byte{v}); }
  void u16(std::uint16_t v) { put_be(v); }
  void u32(std::uint32_t v) { put_be(v); }
  void u64(std::uint64_t v) { put_be(v); }
  void bytes(std::span<const std::byte> b);
  void bytes(std::string_view s) { bytes(std::as_bytes(std::span(s.data(), s.size()))); }

  // Length octet then bytes; fails for more than 255 bytes.
  void shortstr(std::string_view s);
  // Length as u32 then bytes.
  void longstr(std::string_view s);
  // u32 byte count, then (shortstr name, tag, value) entries.
  void table(const FieldTable& t) { table_at_depth(t, 0); }
  // u32 byte count, then (tag, value) entries.
  void array(const FieldArray& a) { array_at_depth(a, 0); }
  // Tag octet then the value.
  void field_value(const FieldValue& v) { value_at_depth(v, 0); }

  // Reserves a u32 to be patched once the length it counts is known.
  std::size_t placeholder_u32() {
    const std::size_t at = out_->size();
    u32(0);
    return at;
  }
  void patch_u32(std::size_t at, std::uint32_t v) noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return out_->size(); }
  [[nodiscard]] std::vector<std::byte>& buffer() noexcept { return *out_; }

  [[nodiscard]] bool ok() const noexcept { return status_.ok(); }
  [[nodiscard]] const Status& status() const noexcept { return status_; }
  // Records `s` unless an error is recorded already.
  void fail(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  // Prefixes the recorded error with "context: " (callers add field names).
  void add_context(std::string_view context) {
    if (!status_.ok()) status_ = std::move(status_).with_context(context);
  }

 private:
  template <typename T>
  void put_be(T v) {
    const std::size_t at = out_->size();
    out_->resize(at + sizeof(T));
    std::byte* p = out_->data() + at;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      p[i] = std::byte(static_cast<std::uint8_t>(v >> (8 * (sizeof(T) - 1 - i))));
    }
  }
  void table_at_depth(const FieldTable& t, int depth);
  void array_at_depth(const FieldArray& a, int depth);
  void value_at_depth(const FieldValue& v, int depth);
  // Patches the u32 at `at` with the byte count written since; fails past 4 GiB.
  void close_length(std::size_t at, std::string_view what);

  std::vector<std::byte>* out_;
  Status status_;
};

}  // namespace myelin::amqp::wire
