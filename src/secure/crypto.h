// The secure channel's primitives, each a thin wrapper over OpenSSL 3 EVP.
//
// Nothing else in myelin calls OpenSSL's crypto directly: the handshake and
// the record layer see only these functions, which report failures as Status
// and keep key material in Secret<N>. Algorithms are fetched from the default
// library context once per process (a read-only cache, safe from any thread);
// contexts (X25519KeyPair, Aead) belong to one thread at a time.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <utility>

#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "src/secure/secret.h"

namespace myelin::secure::detail {

using Bytes = std::span<const std::byte>;
using Digest = std::array<std::byte, 32>;

// Fills `out` from OpenSSL's CSPRNG.
Status random_bytes(std::span<std::byte> out);

// Constant-time equality (CRYPTO_memcmp); false when the sizes differ.
bool equal_ct(Bytes a, Bytes b) noexcept;

// SHA-256 over the concatenation of `parts`.
Digest sha256(std::initializer_list<Bytes> parts);

// An owned digest context. OpenSSL's SHA-256 wipes its state when freed.
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// HMAC-SHA256 under one key, for many messages (RFC 2104). The key is
// absorbed once: the object keeps two SHA-256 states, after (key ^ ipad) and
// after (key ^ opad), and each compute() hashes from copies of them. A
// handshake derives a dozen values from one PRK; EVP_MAC re-initialises and
// re-dispatches through the provider on every call, which cost four times the
// hashing of a 32-byte input on this path.
class HmacSha256 {
 public:
  static Result<HmacSha256> create(Bytes key);

  // HMAC(key, concatenation of `parts`).
  Status compute(std::initializer_list<Bytes> parts, std::span<std::byte, 32> out);

 private:
  HmacSha256(MdCtx inner, MdCtx outer, MdCtx work)
      : inner_(std::move(inner)), outer_(std::move(outer)), work_(std::move(work)) {}
  MdCtx inner_;  // SHA-256 having absorbed key ^ ipad
  MdCtx outer_;  // SHA-256 having absorbed key ^ opad
  MdCtx work_;   // a copy of one of them, hashed to the end
};

// HMAC-SHA256(key, concatenation of `parts`), one-shot.
Status hmac_sha256(Bytes key, std::initializer_list<Bytes> parts, std::span<std::byte, 32> out);

// RFC 5869 with SHA-256, built on HmacSha256: Extract is HMAC(salt, ikm)
// (an empty salt means 32 zero bytes); Expand chains T(i) = HMAC(prk,
// T(i-1) || info || i).
Status hkdf_extract(Bytes salt, Bytes ikm, std::span<std::byte, 32> prk);
Status hkdf_expand(Bytes prk, Bytes info, std::span<std::byte> out);

// Many Expands from one PRK, keying HMAC once.
class HkdfExpander {
 public:
  static Result<HkdfExpander> create(Bytes prk);
  // out.size() in 1..8160 (255 blocks).
  Status expand(Bytes info, std::span<std::byte> out);

 private:
  explicit HkdfExpander(HmacSha256 mac) : mac_(std::move(mac)) {}
  HmacSha256 mac_;
};

// An X25519 key pair (RFC 7748). The private key stays inside the EVP_PKEY,
// which OpenSSL wipes when it is freed.
class X25519KeyPair {
 public:
  static Result<X25519KeyPair> generate();
  // For known-answer tests: a fixed private scalar.
  static Result<X25519KeyPair> from_private(std::span<const std::byte, 32> priv);

  X25519KeyPair(X25519KeyPair&& other) noexcept
      : pkey_(std::exchange(other.pkey_, nullptr)),
        derive_(std::exchange(other.derive_, nullptr)),
        peer_(std::exchange(other.peer_, nullptr)),
        pub_(other.pub_) {}
  X25519KeyPair& operator=(X25519KeyPair&& other) noexcept;
  X25519KeyPair(const X25519KeyPair&) = delete;
  X25519KeyPair& operator=(const X25519KeyPair&) = delete;
  ~X25519KeyPair();

  [[nodiscard]] std::span<const std::byte, 32> public_key() const noexcept { return pub_; }
  // X25519(priv, peer); fails on an all-zero result (RFC 7748 section 6.1).
  // The first call uses the OpenSSL objects generate() prepared.
  [[nodiscard]] Result<Key32> agree(std::span<const std::byte, 32> peer);
  // Frees (and so wipes) the private key; agree() fails afterwards.
  void erase() noexcept;

 private:
  X25519KeyPair(EVP_PKEY* pkey, const std::array<std::byte, 32>& pub) : pkey_(pkey), pub_(pub) {}
  // Builds what agree() needs besides the peer's key: a derive context
  // for the private key, and a public-key object for the peer's key to be
  // written into. With OpenSSL 3 each costs 1.5-3 µs of provider lookups,
  // so a pooled key pair (KeyPool) keeps them off the handshake's critical
  // path. Best effort: agree() builds them itself if this failed.
  void prepare() noexcept;
  EVP_PKEY* pkey_ = nullptr;
  EVP_PKEY_CTX* derive_ = nullptr;  // derive-initialised for pkey_
  EVP_PKEY* peer_ = nullptr;        // an X25519 public key, overwritten by agree()
  std::array<std::byte, 32> pub_{};
};

// What one side of a handshake draws at random before it starts: its
// ephemeral key pair and its 32-byte nonce, both used for that handshake
// only. Drawn together so that a KeyPool can take both off the critical path
// (the nonce alone is an OpenSSL DRBG call, ~2 µs here).
struct HandshakeRandom {
  static Result<HandshakeRandom> generate();
  X25519KeyPair key;
  std::array<std::byte, 32> nonce{};
};

enum class AeadAlg : std::uint16_t { kChaCha20Poly1305 = 1, kAes256Gcm = 2 };
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kNonceSize = 12;

// One direction's AEAD context, keyed once; each record only sets the nonce,
// so sealing does no allocation and no algorithm lookup. Input may be given
// in several pieces (update), which lets a record be sealed straight from the
// caller's buffers into the output without an intermediate copy.
class Aead {
 public:
  static Result<Aead> create(AeadAlg alg, std::span<const std::byte, 32> key);
  Aead(Aead&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)), alg_(other.alg_) {}
  Aead& operator=(Aead&& other) noexcept;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;
  ~Aead();

  // Replaces the key (key update); the context is reused.
  Status rekey(std::span<const std::byte, 32> key);

  // Sealing: begin, any number of update (out may equal in), finish.
  Status seal_begin(std::span<const std::byte, kNonceSize> nonce, Bytes aad);
  Status seal_update(Bytes in, std::byte* out);
  Status seal_finish(std::span<std::byte, kTagSize> tag);
  // Opening: begin, update (out may equal in), then finish checks the tag in
  // constant time (inside OpenSSL) and returns authentication_failed on a
  // mismatch; the caller must then discard everything update produced.
  Status open_begin(std::span<const std::byte, kNonceSize> nonce, Bytes aad);
  Status open_update(Bytes in, std::byte* out);
  Status open_finish(std::span<const std::byte, kTagSize> tag);

  // One-shot helpers for tests and the handshake.
  Status seal(std::span<const std::byte, kNonceSize> nonce, Bytes aad, Bytes in, std::byte* out,
              std::span<std::byte, kTagSize> tag);
  Status open(std::span<const std::byte, kNonceSize> nonce, Bytes aad, Bytes in, std::byte* out,
              std::span<const std::byte, kTagSize> tag);

  [[nodiscard]] AeadAlg alg() const noexcept { return alg_; }

 private:
  Aead(EVP_CIPHER_CTX* ctx, AeadAlg alg) : ctx_(ctx), alg_(alg) {}
  EVP_CIPHER_CTX* ctx_ = nullptr;
  AeadAlg alg_;
};

}  // namespace myelin::secure::detail
