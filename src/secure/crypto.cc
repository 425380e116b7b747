#include "src/secure/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>

namespace myelin::secure::detail {
namespace {

// The last OpenSSL error as text, for the local log (never sent to a peer).
std::string ssl_error(const char* what) {
  const unsigned long e = ERR_get_error();
  std::string msg = std::string(what) + " failed";
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  ERR_clear_error();
  return msg;
}

const unsigned char* u8(const std::byte* p) { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* u8(std::byte* p) { return reinterpret_cast<unsigned char*>(p); }

// Algorithms fetched once. Fetching costs a lock and a property query, which
// would otherwise be paid on every handshake; the fetched objects are
// immutable and shared by all threads.
struct Algorithms {
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_CIPHER* chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  EVP_CIPHER* aes_gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
};

const Algorithms& algs() {
  static const Algorithms a;  // process lifetime on purpose: never freed
  return a;
}

}  // namespace

Status random_bytes(std::span<std::byte> out) {
  if (RAND_bytes(u8(out.data()), static_cast<int>(out.size())) != 1) {
    return internal_error(ssl_error("RAND_bytes"));
  }
  return ok_status();
}

bool equal_ct(Bytes a, Bytes b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

constexpr std::size_t kShaBlock = 64;
constexpr unsigned char kIpad = 0x36;
constexpr unsigned char kOpad = 0x5c;

// SHA-256 started and fed `parts`; false on failure.
bool sha256_begin(EVP_MD_CTX* ctx, std::initializer_list<Bytes> parts) {
  bool ok = EVP_DigestInit_ex2(ctx, algs().sha256, nullptr) == 1;
  for (Bytes p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  return ok;
}

bool sha256_end(EVP_MD_CTX* ctx, std::span<std::byte, 32> out) {
  unsigned int len = 0;
  return EVP_DigestFinal_ex(ctx, u8(out.data()), &len) == 1 && len == 32;
}

// RFC 2104's K0: the key zero-padded to one block, or its hash when longer.
Secret<kShaBlock> hmac_block_key(Bytes key) {
  Secret<kShaBlock> k0;
  if (key.size() > kShaBlock) {
    Digest d = sha256({key});
    std::memcpy(k0.data(), d.data(), d.size());
    OPENSSL_cleanse(d.data(), d.size());
  } else if (!key.empty()) {
    std::memcpy(k0.data(), key.data(), key.size());
  }
  return k0;
}

// Starts `ctx` on K0 ^ pad (pad repeated over the block).
bool hmac_absorb_pad(EVP_MD_CTX* ctx, const Secret<kShaBlock>& k0, unsigned char pad) {
  Secret<kShaBlock> padded;
  for (std::size_t i = 0; i < kShaBlock; ++i) padded.data()[i] = k0.data()[i] ^ pad;
  return sha256_begin(ctx, {padded.span()});
}

}  // namespace

Digest sha256(std::initializer_list<Bytes> parts) {
  Digest out{};
  MdCtx ctx(EVP_MD_CTX_new());
  // SHA-256 cannot fail short of memory exhaustion.
  if (ctx == nullptr || !sha256_begin(ctx.get(), parts) || !sha256_end(ctx.get(), out))
    std::abort();
  return out;
}

Result<HmacSha256> HmacSha256::create(Bytes key) {
  MdCtx inner(EVP_MD_CTX_new());
  MdCtx outer(EVP_MD_CTX_new());
  MdCtx work(EVP_MD_CTX_new());
  const Secret<kShaBlock> k0 = hmac_block_key(key);
  if (inner == nullptr || outer == nullptr || work == nullptr ||
      !hmac_absorb_pad(inner.get(), k0, kIpad) || !hmac_absorb_pad(outer.get(), k0, kOpad)) {
    return internal_error(ssl_error("HMAC-SHA256 key"));
  }
  return HmacSha256(std::move(inner), std::move(outer), std::move(work));
}

Status HmacSha256::compute(std::initializer_list<Bytes> parts, std::span<std::byte, 32> out) {
  Secret<32> inner_hash;
  bool ok = EVP_MD_CTX_copy_ex(work_.get(), inner_.get()) == 1;
  for (Bytes p : parts) ok = ok && EVP_DigestUpdate(work_.get(), p.data(), p.size()) == 1;
  ok = ok && sha256_end(work_.get(), inner_hash.span());
  ok = ok && EVP_MD_CTX_copy_ex(work_.get(), outer_.get()) == 1 &&
       EVP_DigestUpdate(work_.get(), inner_hash.data(), inner_hash.kSize) == 1 &&
       sha256_end(work_.get(), out);
  return ok ? ok_status() : internal_error(ssl_error("HMAC-SHA256"));
}

Status hmac_sha256(Bytes key, std::initializer_list<Bytes> parts, std::span<std::byte, 32> out) {
  // One context, used for the inner and then the outer hash.
  MdCtx ctx(EVP_MD_CTX_new());
  const Secret<kShaBlock> k0 = hmac_block_key(key);
  Secret<32> inner_hash;
  bool ok = ctx != nullptr && hmac_absorb_pad(ctx.get(), k0, kIpad);
  for (Bytes p : parts) ok = ok && EVP_DigestUpdate(ctx.get(), p.data(), p.size()) == 1;
  ok = ok && sha256_end(ctx.get(), inner_hash.span()) && hmac_absorb_pad(ctx.get(), k0, kOpad) &&
       EVP_DigestUpdate(ctx.get(), inner_hash.data(), inner_hash.kSize) == 1 &&
       sha256_end(ctx.get(), out);
  return ok ? ok_status() : internal_error(ssl_error("HMAC-SHA256"));
}

Status hkdf_extract(Bytes salt, Bytes ikm, std::span<std::byte, 32> prk) {
  static constexpr std::array<std::byte, 32> kZeroSalt{};
  return hmac_sha256(salt.empty() ? Bytes(kZeroSalt) : salt, {ikm}, prk);
}

Result<HkdfExpander> HkdfExpander::create(Bytes prk) {
  MYELIN_ASSIGN_OR_RETURN(HmacSha256 mac, HmacSha256::create(prk));
  return HkdfExpander(std::move(mac));
}

Status HkdfExpander::expand(Bytes info, std::span<std::byte> out) {
  if (out.empty() || out.size() > 255 * 32) return invalid_argument("HKDF-Expand: bad length");
  Secret<32> t;  // T(i), wiped on return
  std::size_t done = 0;
  for (unsigned i = 1; done < out.size(); ++i) {
    const std::byte counter[1] = {std::byte(i)};
    const Bytes prev = i == 1 ? Bytes() : Bytes(t.span());
    MYELIN_RETURN_IF_ERROR(mac_.compute({prev, info, counter}, t.span()));
    const std::size_t n = std::min<std::size_t>(32, out.size() - done);
    std::memcpy(out.data() + done, t.data(), n);
    done += n;
  }
  return ok_status();
}

Status hkdf_expand(Bytes prk, Bytes info, std::span<std::byte> out) {
  if (out.empty() || out.size() > 255 * 32) return invalid_argument("HKDF-Expand: bad length");
  MYELIN_ASSIGN_OR_RETURN(HkdfExpander x, HkdfExpander::create(prk));
  return x.expand(info, out);
}

// --- X25519 ------------------------------------------------------------------

Result<HandshakeRandom> HandshakeRandom::generate() {
  MYELIN_ASSIGN_OR_RETURN(X25519KeyPair key, X25519KeyPair::generate());
  HandshakeRandom r{std::move(key)};
  MYELIN_RETURN_IF_ERROR(random_bytes(r.nonce));
  return r;
}

Result<X25519KeyPair> X25519KeyPair::generate() {
  EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr);
  EVP_PKEY* pkey = nullptr;
  const bool ok =
      kctx != nullptr && EVP_PKEY_keygen_init(kctx) == 1 && EVP_PKEY_keygen(kctx, &pkey) == 1;
  EVP_PKEY_CTX_free(kctx);
  if (!ok) return internal_error(ssl_error("X25519 keygen"));
  std::array<std::byte, 32> pub{};
  std::size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey, u8(pub.data()), &len) != 1 || len != 32) {
    EVP_PKEY_free(pkey);
    return internal_error(ssl_error("X25519 public key"));
  }
  X25519KeyPair pair(pkey, pub);
  pair.prepare();
  return pair;
}

void X25519KeyPair::prepare() noexcept {
  derive_ = EVP_PKEY_CTX_new(pkey_, nullptr);
  // Any valid X25519 public key will do as the placeholder: our own.
  peer_ = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, u8(pub_.data()), 32);
  if (derive_ == nullptr || peer_ == nullptr || EVP_PKEY_derive_init(derive_) != 1) {
    EVP_PKEY_CTX_free(std::exchange(derive_, nullptr));
    EVP_PKEY_free(std::exchange(peer_, nullptr));
    ERR_clear_error();
  }
}

Result<X25519KeyPair> X25519KeyPair::from_private(std::span<const std::byte, 32> priv) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, u8(priv.data()), 32);
  if (pkey == nullptr) return internal_error(ssl_error("X25519 private key"));
  std::array<std::byte, 32> pub{};
  std::size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey, u8(pub.data()), &len) != 1 || len != 32) {
    EVP_PKEY_free(pkey);
    return internal_error(ssl_error("X25519 public key"));
  }
  X25519KeyPair pair(pkey, pub);
  pair.prepare();
  return pair;
}

X25519KeyPair& X25519KeyPair::operator=(X25519KeyPair&& other) noexcept {
  if (this != &other) {
    erase();
    pkey_ = std::exchange(other.pkey_, nullptr);
    derive_ = std::exchange(other.derive_, nullptr);
    peer_ = std::exchange(other.peer_, nullptr);
    pub_ = other.pub_;
  }
  return *this;
}

X25519KeyPair::~X25519KeyPair() { erase(); }

void X25519KeyPair::erase() noexcept {
  EVP_PKEY_CTX_free(std::exchange(derive_, nullptr));  // holds a reference to pkey_
  EVP_PKEY_free(std::exchange(peer_, nullptr));
  EVP_PKEY_free(std::exchange(pkey_, nullptr));
}

Result<Key32> X25519KeyPair::agree(std::span<const std::byte, 32> peer) {
  if (pkey_ == nullptr) return failed_precondition("X25519: private key already erased");
  // The prepared objects serve one agreement; later calls build their own.
  EVP_PKEY_CTX* ctx = std::exchange(derive_, nullptr);
  EVP_PKEY* peer_key = std::exchange(peer_, nullptr);
  bool ok = true;
  if (ctx != nullptr && peer_key != nullptr) {
    ok = EVP_PKEY_set1_encoded_public_key(peer_key, u8(peer.data()), 32) == 1;
  } else {
    EVP_PKEY_CTX_free(std::exchange(ctx, EVP_PKEY_CTX_new(pkey_, nullptr)));
    EVP_PKEY_free(std::exchange(
        peer_key, EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, u8(peer.data()), 32)));
    if (ctx == nullptr || peer_key == nullptr || EVP_PKEY_derive_init(ctx) != 1) {
      EVP_PKEY_CTX_free(ctx);
      EVP_PKEY_free(peer_key);
      return internal_error(ssl_error("X25519 derive setup"));
    }
  }
  Key32 shared;
  std::size_t len = 32;
  // OpenSSL's X25519 derive already rejects the all-zero output (RFC 7748
  // section 6.1); the explicit check below keeps that property independent
  // of the provider. The peer key is not "validated" by set_peer: every
  // 32-byte string is a valid X25519 public value (RFC 7748 section 5), so
  // OpenSSL's check only confirms a public key is present, and it costs a
  // context of its own (about 1.3 µs of provider lookups here).
  ok = ok && EVP_PKEY_derive_set_peer_ex(ctx, peer_key, /*validate_peer=*/0) == 1 &&
       EVP_PKEY_derive(ctx, shared.data(), &len) == 1 && len == 32;
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer_key);
  if (!ok) {
    ERR_clear_error();
    return authentication_failed("X25519: peer public key gives no shared secret");
  }
  static constexpr std::array<std::byte, 32> kZero{};
  if (equal_ct(shared.span(), kZero)) {
    return authentication_failed("X25519: all-zero shared secret (low-order peer key)");
  }
  return shared;
}

// --- AEAD --------------------------------------------------------------------

Result<Aead> Aead::create(AeadAlg alg, std::span<const std::byte, 32> key) {
  const EVP_CIPHER* cipher = alg == AeadAlg::kChaCha20Poly1305 ? algs().chacha : algs().aes_gcm;
  if (cipher == nullptr) return unimplemented("AEAD suite not available in this OpenSSL");
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return internal_error(ssl_error("EVP_CIPHER_CTX_new"));
  // Encrypt direction by default; open_begin switches the direction without
  // re-keying. A 12-byte IV is the default for both suites.
  if (EVP_CipherInit_ex2(ctx, cipher, u8(key.data()), nullptr, 1, nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return internal_error(ssl_error("AEAD init"));
  }
  return Aead(ctx, alg);
}

Aead& Aead::operator=(Aead&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    alg_ = other.alg_;
  }
  return *this;
}

Aead::~Aead() { EVP_CIPHER_CTX_free(ctx_); }  // frees and cleanses the key schedule

Status Aead::rekey(std::span<const std::byte, 32> key) {
  if (EVP_CipherInit_ex2(ctx_, nullptr, u8(key.data()), nullptr, -1, nullptr) != 1) {
    return internal_error(ssl_error("AEAD rekey"));
  }
  return ok_status();
}

Status Aead::seal_begin(std::span<const std::byte, kNonceSize> nonce, Bytes aad) {
  int len = 0;
  if (EVP_CipherInit_ex2(ctx_, nullptr, nullptr, u8(nonce.data()), 1, nullptr) != 1 ||
      (!aad.empty() &&
       EVP_CipherUpdate(ctx_, nullptr, &len, u8(aad.data()), static_cast<int>(aad.size())) != 1)) {
    return internal_error(ssl_error("AEAD seal"));
  }
  return ok_status();
}

Status Aead::seal_update(Bytes in, std::byte* out) {
  int len = 0;
  if (in.empty()) return ok_status();
  if (EVP_CipherUpdate(ctx_, u8(out), &len, u8(in.data()), static_cast<int>(in.size())) != 1 ||
      static_cast<std::size_t>(len) != in.size()) {
    return internal_error(ssl_error("AEAD seal"));
  }
  return ok_status();
}

Status Aead::seal_finish(std::span<std::byte, kTagSize> tag) {
  int len = 0;
  unsigned char dummy[16];
  if (EVP_CipherFinal_ex(ctx_, dummy, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, kTagSize, tag.data()) != 1) {
    return internal_error(ssl_error("AEAD seal"));
  }
  return ok_status();
}

Status Aead::open_begin(std::span<const std::byte, kNonceSize> nonce, Bytes aad) {
  int len = 0;
  if (EVP_CipherInit_ex2(ctx_, nullptr, nullptr, u8(nonce.data()), 0, nullptr) != 1 ||
      (!aad.empty() &&
       EVP_CipherUpdate(ctx_, nullptr, &len, u8(aad.data()), static_cast<int>(aad.size())) != 1)) {
    return internal_error(ssl_error("AEAD open"));
  }
  return ok_status();
}

Status Aead::open_update(Bytes in, std::byte* out) {
  int len = 0;
  if (in.empty()) return ok_status();
  if (EVP_CipherUpdate(ctx_, u8(out), &len, u8(in.data()), static_cast<int>(in.size())) != 1 ||
      static_cast<std::size_t>(len) != in.size()) {
    return internal_error(ssl_error("AEAD open"));
  }
  return ok_status();
}

Status Aead::open_finish(std::span<const std::byte, kTagSize> tag) {
  int len = 0;
  unsigned char dummy[16];
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, kTagSize,
                          const_cast<std::byte*>(tag.data())) != 1) {
    return internal_error(ssl_error("AEAD set tag"));
  }
  if (EVP_CipherFinal_ex(ctx_, dummy, &len) != 1) {
    ERR_clear_error();
    return authentication_failed("AEAD tag mismatch");
  }
  return ok_status();
}

Status Aead::seal(std::span<const std::byte, kNonceSize> nonce, Bytes aad, Bytes in, std::byte* out,
                  std::span<std::byte, kTagSize> tag) {
  MYELIN_RETURN_IF_ERROR(seal_begin(nonce, aad));
  MYELIN_RETURN_IF_ERROR(seal_update(in, out));
  return seal_finish(tag);
}

Status Aead::open(std::span<const std::byte, kNonceSize> nonce, Bytes aad, Bytes in, std::byte* out,
                  std::span<const std::byte, kTagSize> tag) {
  MYELIN_RETURN_IF_ERROR(open_begin(nonce, aad));
  MYELIN_RETURN_IF_ERROR(open_update(in, out));
  return open_finish(tag);
}

}  // namespace myelin::secure::detail
