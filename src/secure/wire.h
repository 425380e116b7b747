// MSC1 wire constants and the frame header (docs/secure-channel.md section 3).
//
// Every number the protocol puts on the wire is defined here and nowhere
// else; the static_asserts pin the sizes the document states.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace myelin::secure::detail {

inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::size_t kKeySize = 32;
inline constexpr std::size_t kIvSize = 12;
inline constexpr std::size_t kAeadTagSize = 16;
inline constexpr std::size_t kPublicKeySize = 32;
inline constexpr std::size_t kNonceRandomSize = 32;
inline constexpr std::size_t kFinishedSize = 32;
inline constexpr std::size_t kSessionIdSize = 16;
inline constexpr std::uint16_t kVersion = 1;

inline constexpr std::size_t kMaxEvidence = 65536;
// Largest handshake frame body (section 3): evidence plus fixed fields.
inline constexpr std::size_t kMaxHandshakeBody = 65536 + 1024;
inline constexpr std::size_t kMaxSuitesOffered = 8;
inline constexpr std::uint32_t kMinMaxRecord = 1024;
inline constexpr std::uint32_t kMaxMaxRecord = 16 * 1024 * 1024;

inline constexpr std::uint8_t kFlagMore = 0x01;

enum class FrameType : std::uint8_t {
  kHello = 0x01,
  kResponse = 0x02,
  kFinish = 0x03,
  kData = 0x10,
  kKeyUpdate = 0x11,
  kPing = 0x12,
  kPong = 0x13,
  kClose = 0x14,
};

inline constexpr std::size_t kPingPayload = 8;
inline constexpr std::size_t kClosePayload = 2;

// Hello body: version(2) n(1) suites(2n) min(1) max(1) max_record(4) e_i(32) nonce_i(32).
inline constexpr std::size_t hello_body_size(std::size_t n_suites) {
  return 2 + 1 + 2 * n_suites + 1 + 1 + 4 + kPublicKeySize + kNonceRandomSize;
}
// Response clear part: suite(2) mode(1) max_record(4) e_r(32) nonce_r(32).
inline constexpr std::size_t kResponseClearSize = 2 + 1 + 4 + kPublicKeySize + kNonceRandomSize;
static_assert(kResponseClearSize == 71);
static_assert(hello_body_size(1) == 75);
// Inner part of messages 2 and 3: u32 evidence length, evidence, finished.
inline constexpr std::size_t inner_size(std::size_t evidence) {
  return 4 + evidence + kFinishedSize;
}
static_assert(kResponseClearSize + inner_size(kMaxEvidence) + kAeadTagSize <= kMaxHandshakeBody);

struct FrameHeader {
  FrameType type{};
  std::uint8_t flags = 0;
  std::uint32_t length = 0;
  std::uint64_t seq = 0;
};

inline void put_u16(std::byte* p, std::uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v);
}
inline void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = std::byte(v >> (24 - 8 * i));
}
inline void put_u64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = std::byte(v >> (56 - 8 * i));
}
inline std::uint16_t get_u16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
inline std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

inline void encode_header(const FrameHeader& h, std::byte* out) {
  out[0] = std::byte(static_cast<std::uint8_t>(h.type));
  out[1] = std::byte(h.flags);
  out[2] = std::byte{0};
  out[3] = std::byte{0};
  put_u32(out + 4, h.length);
  put_u64(out + 8, h.seq);
}

// Decodes without validating (validation depends on the session's state).
inline FrameHeader decode_header(const std::byte* in, std::uint16_t* reserved) {
  FrameHeader h;
  h.type = static_cast<FrameType>(std::to_integer<std::uint8_t>(in[0]));
  h.flags = std::to_integer<std::uint8_t>(in[1]);
  *reserved = get_u16(in + 2);
  h.length = get_u32(in + 4);
  h.seq = get_u64(in + 8);
  return h;
}

// nonce := iv XOR (u32 0 || u64 seq)   (section 5.1)
inline std::array<std::byte, kIvSize> record_nonce(std::span<const std::byte, kIvSize> iv,
                                                   std::uint64_t seq) {
  std::array<std::byte, kIvSize> n;
  std::memcpy(n.data(), iv.data(), kIvSize);
  for (int i = 0; i < 8; ++i) n[4 + i] ^= std::byte(seq >> (56 - 8 * i));
  return n;
}

}  // namespace myelin::secure::detail
