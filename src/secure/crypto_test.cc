// Known-answer tests for every primitive the channel uses: RFC 7748 (X25519),
// RFC 5869 (HKDF-SHA256), RFC 8439 (ChaCha20-Poly1305 AEAD), plus HMAC and
// the AES-256-GCM suite's round trip and tamper behaviour.
#include "src/secure/crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "src/secure/test_util.h"

namespace myelin::secure::detail {
namespace {

using testing::hex;

template <std::size_t N>
std::span<const std::byte, N> fixed(const std::vector<std::byte>& v) {
  EXPECT_EQ(v.size(), N);
  return std::span<const std::byte, N>(v.data(), N);
}

TEST(X25519Kat, Rfc7748Section6_1DiffieHellman) {
  const auto a_priv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const auto a_pub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  const auto b_priv = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const auto b_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const auto shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  auto a = X25519KeyPair::from_private(fixed<32>(a_priv));
  auto b = X25519KeyPair::from_private(fixed<32>(b_priv));
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(equal_ct(a->public_key(), a_pub));
  EXPECT_TRUE(equal_ct(b->public_key(), b_pub));
  auto k1 = a->agree(fixed<32>(b_pub));
  auto k2 = b->agree(fixed<32>(a_pub));
  ASSERT_TRUE(k1 && k2);
  EXPECT_TRUE(equal_ct(k1->span(), shared));
  EXPECT_TRUE(equal_ct(k2->span(), shared));
}

TEST(X25519Kat, Rfc7748Section5_2Vector1) {
  const auto scalar = hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  const auto u = hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  const auto out = hex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  auto k = X25519KeyPair::from_private(fixed<32>(scalar));
  ASSERT_TRUE(k);
  auto s = k->agree(fixed<32>(u));  // through the objects prepared with the key
  ASSERT_TRUE(s);
  EXPECT_TRUE(equal_ct(s->span(), out));
  auto again = k->agree(fixed<32>(u));  // the prepared objects are spent: built afresh
  ASSERT_TRUE(again);
  EXPECT_TRUE(equal_ct(again->span(), out));
}

TEST(X25519, LowOrderPeerKeyIsRejected) {
  auto k = X25519KeyPair::generate();
  ASSERT_TRUE(k);
  const std::array<std::byte, 32> zero{};          // u = 0: a low-order point, all-zero result
  for (int attempt = 0; attempt < 2; ++attempt) {  // prepared objects, then fresh ones
    auto s = k->agree(zero);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), ErrorCode::kAuthenticationFailed);
  }
}

TEST(X25519, ErasedKeyCannotAgree) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  ASSERT_TRUE(a && b);
  a->erase();
  EXPECT_FALSE(a->agree(b->public_key()));
}

TEST(HkdfKat, Rfc5869TestCase1) {
  const auto ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const auto salt = hex("000102030405060708090a0b0c");
  const auto info = hex("f0f1f2f3f4f5f6f7f8f9");
  const auto prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  const auto okm =
      hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  std::array<std::byte, 32> p;
  ASSERT_TRUE(hkdf_extract(salt, ikm, p).ok());
  EXPECT_TRUE(equal_ct(p, prk));
  std::vector<std::byte> o(42);
  ASSERT_TRUE(hkdf_expand(p, info, o).ok());
  EXPECT_EQ(o, okm);
}

TEST(HkdfKat, Rfc5869TestCase3EmptySaltAndInfo) {
  const auto ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const auto prk = hex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
  const auto okm =
      hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  std::array<std::byte, 32> p;
  ASSERT_TRUE(hkdf_extract({}, ikm, p).ok());
  EXPECT_TRUE(equal_ct(p, prk));
  std::vector<std::byte> o(42);
  ASSERT_TRUE(hkdf_expand(p, {}, o).ok());
  EXPECT_EQ(o, okm);
}

TEST(HmacKat, Rfc4231TestCase2) {
  const auto key = to_bytes("Jefe");
  const auto data = to_bytes("what do ya want for nothing?");
  const auto mac = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  std::array<std::byte, 32> out;
  ASSERT_TRUE(hmac_sha256(key, {data}, out).ok());
  EXPECT_TRUE(equal_ct(out, mac));
  // The same MAC over the data given in two pieces.
  ASSERT_TRUE(hmac_sha256(key, {std::span(data).first(5), std::span(data).subspan(5)}, out).ok());
  EXPECT_TRUE(equal_ct(out, mac));
}

// RFC 4231 cases 1, 6 and 7: a short key, and keys longer than SHA-256's
// 64-byte block, which HMAC hashes first; each through the one-shot function
// and through a keyed HmacSha256 used twice (its state must not carry over).
TEST(HmacKat, Rfc4231Cases1_6_7) {
  struct Case {
    std::vector<std::byte> key;
    std::string data;
    const char* mac;
  };
  const std::vector<Case> cases = {
      {std::vector<std::byte>(20, std::byte{0x0b}), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {std::vector<std::byte>(131, std::byte{0xaa}),
       "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {std::vector<std::byte>(131, std::byte{0xaa}),
       "This is a test using a larger than block-size key and a larger than block-size data. The "
       "key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.data);
    const auto data = to_bytes(c.data);
    const auto want = hex(c.mac);
    std::array<std::byte, 32> out{};
    ASSERT_TRUE(hmac_sha256(c.key, {data}, out).ok());
    EXPECT_TRUE(equal_ct(out, want));
    auto mac = HmacSha256::create(c.key);
    ASSERT_TRUE(mac.has_value());
    for (int round = 0; round < 2; ++round) {
      out.fill(std::byte{0});
      ASSERT_TRUE(mac->compute({data}, out).ok());
      EXPECT_TRUE(equal_ct(out, want)) << "round " << round;
    }
  }
}

// Every key length around the block size (0..130 bytes) and messages of
// several lengths, against OpenSSL's own HMAC as the oracle.
TEST(Hmac, MatchesOpenSslAcrossKeyAndMessageLengths) {
  std::vector<std::byte> key(130), msg(200);
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = std::byte(i * 7 + 1);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = std::byte(i * 13 + 5);
  for (std::size_t klen = 0; klen <= key.size(); ++klen) {
    const std::span<const std::byte> k(key.data(), klen);
    auto mac = HmacSha256::create(k);
    ASSERT_TRUE(mac.has_value());
    for (std::size_t mlen : {0, 1, 55, 56, 64, 119, 200}) {
      const std::span<const std::byte> m(msg.data(), mlen);
      std::array<unsigned char, 32> want{};
      std::size_t want_len = 0;
      static const unsigned char kNoKey[1] = {0};
      ASSERT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr,
                          klen == 0 ? kNoKey : reinterpret_cast<const unsigned char*>(k.data()),
                          klen, reinterpret_cast<const unsigned char*>(m.data()), mlen, want.data(),
                          want.size(), &want_len),
                nullptr);
      ASSERT_EQ(want_len, 32u);
      const auto want_bytes = std::as_bytes(std::span(want));
      std::array<std::byte, 32> one_shot{}, keyed{};
      ASSERT_TRUE(hmac_sha256(k, {m.first(mlen / 2), m.subspan(mlen / 2)}, one_shot).ok());
      ASSERT_TRUE(mac->compute({m}, keyed).ok());
      EXPECT_TRUE(equal_ct(one_shot, want_bytes)) << "key " << klen << " msg " << mlen;
      EXPECT_TRUE(equal_ct(keyed, want_bytes)) << "key " << klen << " msg " << mlen;
    }
  }
}

TEST(AeadKat, Rfc8439Section2_8_2) {
  const auto key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const auto nonce = hex("070000004041424344454647");
  const auto aad = hex("50515253c0c1c2c3c4c5c6c7");
  const auto pt = to_bytes(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.");
  const auto ct = hex(
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92"
      "728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b"
      "4831d7bc3ff4def08e4b7a9de576d26586cec64b6116");
  const auto tag = hex("1ae10b594f09e26a7e902ecbd0600691");
  auto aead = Aead::create(AeadAlg::kChaCha20Poly1305, fixed<32>(key));
  ASSERT_TRUE(aead);
  std::vector<std::byte> out(pt.size());
  std::array<std::byte, 16> t;
  ASSERT_TRUE(aead->seal(fixed<12>(nonce), aad, pt, out.data(), t).ok());
  EXPECT_EQ(out, ct);
  EXPECT_TRUE(equal_ct(t, tag));

  auto opener = Aead::create(AeadAlg::kChaCha20Poly1305, fixed<32>(key));
  ASSERT_TRUE(opener);
  std::vector<std::byte> back(ct.size());
  ASSERT_TRUE(opener->open(fixed<12>(nonce), aad, ct, back.data(), fixed<16>(tag)).ok());
  EXPECT_EQ(back, pt);
  // Any flipped bit of the ciphertext, AAD or tag fails authentication.
  auto bad = ct;
  bad[7] ^= std::byte{1};
  EXPECT_EQ(opener->open(fixed<12>(nonce), aad, bad, back.data(), fixed<16>(tag)).code(),
            ErrorCode::kAuthenticationFailed);
  auto bad_aad = aad;
  bad_aad[0] ^= std::byte{0x80};
  EXPECT_FALSE(opener->open(fixed<12>(nonce), bad_aad, ct, back.data(), fixed<16>(tag)).ok());
  // And the context still works afterwards (no sticky state).
  EXPECT_TRUE(opener->open(fixed<12>(nonce), aad, ct, back.data(), fixed<16>(tag)).ok());
}

TEST(Aead, InPlaceMultiPartSealMatchesOneShot) {
  for (AeadAlg alg : {AeadAlg::kChaCha20Poly1305, AeadAlg::kAes256Gcm}) {
    std::array<std::byte, 32> key{};
    key[0] = std::byte{9};
    std::array<std::byte, 12> nonce{};
    std::vector<std::byte> msg(1000);
    for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = std::byte(i * 7);
    auto a = Aead::create(alg, key);
    ASSERT_TRUE(a);
    std::vector<std::byte> one(msg.size());
    std::array<std::byte, 16> t1, t2;
    ASSERT_TRUE(a->seal(nonce, {}, msg, one.data(), t1).ok());
    std::vector<std::byte> inplace = msg;
    ASSERT_TRUE(a->seal_begin(nonce, {}).ok());
    ASSERT_TRUE(a->seal_update(std::span(inplace).first(333), inplace.data()).ok());
    ASSERT_TRUE(a->seal_update(std::span(inplace).subspan(333), inplace.data() + 333).ok());
    ASSERT_TRUE(a->seal_finish(t2).ok());
    EXPECT_EQ(one, inplace);
    EXPECT_TRUE(equal_ct(t1, t2));
    ASSERT_TRUE(a->open(nonce, {}, inplace, inplace.data(), t2).ok());
    EXPECT_EQ(inplace, msg);
  }
}

TEST(Secret, WipesOnMoveAndWipe) {
  Key32 k;
  k.span()[0] = std::byte{0xaa};
  Key32 moved = std::move(k);
  EXPECT_EQ(k.span()[0], std::byte{0});  // NOLINT(bugprone-use-after-move): wiped on move
  EXPECT_EQ(moved.span()[0], std::byte{0xaa});
  moved.wipe();
  EXPECT_EQ(moved.span()[0], std::byte{0});
}

}  // namespace
}  // namespace myelin::secure::detail
