#include "myelin/secure/tensor_frame.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace myelin::secure {
namespace {

// Framing integers are little-endian (like the data), unlike frame headers.
template <typename T>
void put_le(std::byte* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = std::byte((v >> (8 * i)) & 0xff);
}
template <typename T>
T get_le(const std::byte* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<T>(std::to_integer<T>(p[i]) << (8 * i));
  return v;
}

// Per tensor: u16 name_len, name, u8 dtype, u8 rank, u64 dims, u64 data_len.
std::size_t header_size(const NamedTensor& t) {
  return 2 + t.name.size() + 1 + 1 + 8 * t.tensor.shape.rank() + 8;
}

Status check_tensor(const NamedTensor& t, std::size_t i) {
  auto where = [&] { return "tensor " + std::to_string(i) + " ('" + std::string(t.name) + "')"; };
  if (t.name.size() > kMaxTensorName) {
    return invalid_argument(where() + ": name longer than 1024 bytes");
  }
  if (!valid_utf8(std::as_bytes(std::span(t.name.data(), t.name.size())))) {
    return invalid_argument(where() + ": name is not valid UTF-8");
  }
  Status s = t.tensor.validate();
  if (!s.ok()) return std::move(s).with_context(where());
  return ok_status();
}

}  // namespace

Status frame_tensors(std::span<const NamedTensor> tensors, std::vector<std::byte>& scratch,
                     std::vector<std::span<const std::byte>>& parts) {
  if (tensors.size() > std::numeric_limits<std::uint32_t>::max()) {
    return invalid_argument("tensor framing: too many tensors");
  }
  std::size_t need = 4;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    MYELIN_RETURN_IF_ERROR(check_tensor(tensors[i], i));
    need += header_size(tensors[i]);
  }
  if (scratch.size() < need) scratch.resize(need);  // grows once, then reused
  parts.clear();
  std::byte* p = scratch.data();
  put_le<std::uint32_t>(p, static_cast<std::uint32_t>(tensors.size()));
  const std::byte* run = p;  // start of header bytes not yet in `parts`
  p += 4;
  for (const NamedTensor& t : tensors) {
    put_le<std::uint16_t>(p, static_cast<std::uint16_t>(t.name.size()));
    if (!t.name.empty()) std::memcpy(p + 2, t.name.data(), t.name.size());
    p += 2 + t.name.size();
    p[0] = std::byte(static_cast<std::uint8_t>(t.tensor.dtype));
    p[1] = std::byte(t.tensor.shape.rank());
    p += 2;
    for (std::int64_t d : t.tensor.shape.dims()) {
      put_le<std::uint64_t>(p, static_cast<std::uint64_t>(d));
      p += 8;
    }
    put_le<std::uint64_t>(p, t.tensor.data.size());
    p += 8;
    if (!t.tensor.data.empty()) {
      parts.emplace_back(run, static_cast<std::size_t>(p - run));
      parts.push_back(t.tensor.data);
      run = p;
    }
  }
  if (p != run) parts.emplace_back(run, static_cast<std::size_t>(p - run));
  return ok_status();
}

Result<std::vector<std::byte>> encode_tensors(std::span<const NamedTensor> tensors) {
  std::vector<std::byte> scratch;
  std::vector<std::span<const std::byte>> parts;
  MYELIN_RETURN_IF_ERROR(frame_tensors(tensors, scratch, parts));
  std::vector<std::byte> out;
  for (auto part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

bool valid_utf8(std::span<const std::byte> s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned c = std::to_integer<unsigned>(s[i]);
    std::size_t n = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const unsigned cc = std::to_integer<unsigned>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr unsigned kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

Status decode_tensors(std::span<const std::byte> m, std::vector<NamedTensor>& out) {
  out.clear();
  std::size_t pos = 0;
  auto left = [&] { return m.size() - pos; };
  if (m.size() < 4)
    return parse_error("tensor message: " + std::to_string(m.size()) +
                       " bytes, shorter than the 4-byte count");
  const std::uint32_t n = get_le<std::uint32_t>(m.data());
  pos = 4;
  // Each tensor takes at least 12 bytes, so a huge count in a short message
  // is rejected before anything is reserved for it.
  if (n > left() / 12) {
    return parse_error("tensor message: n_tensors " + std::to_string(n) + " cannot fit in " +
                       std::to_string(left()) + " bytes");
  }
  out.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    // Built only on error: decoding a valid message allocates nothing.
    auto where = [i] { return "tensor " + std::to_string(i) + ": "; };
    if (left() < 2) return parse_error(where() + "truncated name_len");
    const std::size_t name_len = get_le<std::uint16_t>(m.data() + pos);
    pos += 2;
    if (name_len > kMaxTensorName) {
      return parse_error(where() + "name_len " + std::to_string(name_len) + " above 1024");
    }
    if (left() < name_len + 2) return parse_error(where() + "truncated name");
    const auto name = m.subspan(pos, name_len);
    if (!valid_utf8(name)) return parse_error(where() + "name is not valid UTF-8");
    pos += name_len;
    const auto dtype_id = std::to_integer<std::uint8_t>(m[pos]);
    const auto rank = std::to_integer<std::uint8_t>(m[pos + 1]);
    pos += 2;
    const auto dtype = dtype_from_id(dtype_id);
    if (!dtype) return parse_error(where() + "unknown dtype " + std::to_string(dtype_id));
    if (rank > kMaxRank) return parse_error(where() + "rank " + std::to_string(rank) + " above 8");
    if (left() < 8u * rank + 8) return parse_error(where() + "truncated shape or data_len");
    std::int64_t dims[kMaxRank];
    std::uint64_t count = 1;
    bool overflow = false;
    for (std::size_t d = 0; d < rank; ++d) {
      const std::uint64_t dim = get_le<std::uint64_t>(m.data() + pos);
      pos += 8;
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return parse_error(where() + "dim " + std::to_string(d) + " above 2^63-1");
      }
      dims[d] = static_cast<std::int64_t>(dim);
      if (dim != 0 && count > std::numeric_limits<std::uint64_t>::max() / dim) overflow = true;
      count *= dim;
    }
    const std::uint64_t data_len = get_le<std::uint64_t>(m.data() + pos);
    pos += 8;
    const std::uint64_t elem = dtype_size(*dtype);
    if (overflow || (count != 0 && count > std::numeric_limits<std::uint64_t>::max() / elem)) {
      return parse_error(where() + "element count overflows u64");
    }
    if (data_len != count * elem) {
      return parse_error(where() + "data_len " + std::to_string(data_len) +
                         " but shape and dtype " + std::string(to_string(*dtype)) + " need " +
                         std::to_string(count * elem));
    }
    if (left() < data_len) {
      return parse_error(where() + "data truncated: " + std::to_string(left()) + " of " +
                         std::to_string(data_len) + " bytes present");
    }
    MYELIN_ASSIGN_OR_RETURN(Shape shape, Shape::from(std::span<const std::int64_t>(dims, rank)));
    out.push_back({std::string_view(reinterpret_cast<const char*>(name.data()), name.size()),
                   TensorView{*dtype, shape, m.subspan(pos, data_len)}});
    pos += data_len;
  }
  if (pos != m.size()) {
    return parse_error("tensor message: " + std::to_string(m.size() - pos) +
                       " bytes left over after " + std::to_string(n) + " tensors");
  }
  return ok_status();
}

}  // namespace myelin::secure
