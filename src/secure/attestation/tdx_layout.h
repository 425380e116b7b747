// Byte offsets of an Intel TDX quote, version 4 (Intel's "TDX DCAP Quote
// Generation Library and Quote Verification Library" data structures):
// header, TD report body (TDREPORT's TD info and TEE TCB info as the quote
// carries them), signature data, and the SGX report body of the QE. All
// integers little-endian; signatures and keys are big-endian r||s and x||y.
#pragma once

#include <cstddef>

#include "myelin/secure/tdx.h"

namespace myelin::secure::tdx::detail::layout {

// Header (48 bytes).
inline constexpr std::size_t kVersion = 0;             // u16
inline constexpr std::size_t kAttestationKeyType = 2;  // u16, 2 = ECDSA P-256
inline constexpr std::size_t kTeeType = 4;             // u32, 0x81 = TDX
inline constexpr std::size_t kQeVendorId = 12;         // 16 bytes
inline constexpr std::size_t kUserData = 28;           // 20 bytes
static_assert(kUserData + 20 == kHeaderSize);

// TD report body (584 bytes), offsets from its start.
inline constexpr std::size_t kTeeTcbSvn = 0;         // 16
inline constexpr std::size_t kMrSeam = 16;           // 48
inline constexpr std::size_t kMrSignerSeam = 64;     // 48
inline constexpr std::size_t kSeamAttributes = 112;  // u64
inline constexpr std::size_t kTdAttributes = 120;    // u64
inline constexpr std::size_t kXfam = 128;            // u64
inline constexpr std::size_t kMrTd = 136;            // 48
inline constexpr std::size_t kMrConfigId = 184;      // 48
inline constexpr std::size_t kMrOwner = 232;         // 48
inline constexpr std::size_t kMrOwnerConfig = 280;   // 48
inline constexpr std::size_t kRtmr0 = 328;           // 4 x 48
inline constexpr std::size_t kReportData = 520;      // 64
static_assert(kMrSeam == kTeeTcbSvn + 16 && kMrSignerSeam == kMrSeam + 48);
static_assert(kSeamAttributes == kMrSignerSeam + 48 && kTdAttributes == kSeamAttributes + 8);
static_assert(kXfam == kTdAttributes + 8 && kMrTd == kXfam + 8);
static_assert(kMrConfigId == kMrTd + 48 && kMrOwner == kMrConfigId + 48);
static_assert(kMrOwnerConfig == kMrOwner + 48 && kRtmr0 == kMrOwnerConfig + 48);
static_assert(kReportData == kRtmr0 + 4 * 48 && kReportData + 64 == kTdReportSize);

// After the signed part: u32 signature data length, then the signature data.
inline constexpr std::size_t kSigDataLength = kSignedSize;  // u32
inline constexpr std::size_t kSigData = kSignedSize + 4;
// Signature data, offsets from its start.
inline constexpr std::size_t kQuoteSignature = 0;   // 64
inline constexpr std::size_t kAttestationKey = 64;  // 64
inline constexpr std::size_t kCertData = 128;       // u16 type, u32 size, data
static_assert(kAttestationKey == kQuoteSignature + 64 && kCertData == kAttestationKey + 64);
inline constexpr std::size_t kCertHeader = 6;
inline constexpr std::uint16_t kCertTypeQeReport = 6;
inline constexpr std::uint16_t kCertTypePckChain = 5;

// SGX report body of the QE (384 bytes).
inline constexpr std::size_t kQeCpuSvn = 0;        // 16
inline constexpr std::size_t kQeMiscSelect = 16;   // u32
inline constexpr std::size_t kQeAttributes = 48;   // 16
inline constexpr std::size_t kQeMrEnclave = 64;    // 32
inline constexpr std::size_t kQeMrSigner = 128;    // 32
inline constexpr std::size_t kQeIsvProdId = 256;   // u16
inline constexpr std::size_t kQeIsvSvn = 258;      // u16
inline constexpr std::size_t kQeReportData = 320;  // 64
static_assert(kQeReportData + 64 == kQeReportSize);

}  // namespace myelin::secure::tdx::detail::layout
