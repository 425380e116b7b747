// Byte offsets of the SEV-SNP ATTESTATION_REPORT structure (AMD's SEV-SNP
// firmware ABI specification, "ATTESTATION_REPORT Structure"; versions 2 and
// 3 share this layout, version 3 adds the CPUID bytes at 0x188). Every field
// is little-endian. The static_asserts tie each offset to the end of the
// field before it, so a typo in one shows up as a gap or an overlap.
#pragma once

#include <cstddef>

#include "myelin/secure/sev_snp.h"

namespace myelin::secure::snp::detail::layout {

inline constexpr std::size_t kVersion = 0x000;           // u32
inline constexpr std::size_t kGuestSvn = 0x004;          // u32
inline constexpr std::size_t kPolicy = 0x008;            // u64
inline constexpr std::size_t kFamilyId = 0x010;          // 16 bytes
inline constexpr std::size_t kImageId = 0x020;           // 16 bytes
inline constexpr std::size_t kVmpl = 0x030;              // u32
inline constexpr std::size_t kSignatureAlgo = 0x034;     // u32
inline constexpr std::size_t kCurrentTcb = 0x038;        // u64
inline constexpr std::size_t kPlatformInfo = 0x040;      // u64
inline constexpr std::size_t kKeyInfo = 0x048;           // u32, then 4 reserved
inline constexpr std::size_t kReportData = 0x050;        // 64 bytes
inline constexpr std::size_t kMeasurement = 0x090;       // 48 bytes
inline constexpr std::size_t kHostData = 0x0C0;          // 32 bytes
inline constexpr std::size_t kIdKeyDigest = 0x0E0;       // 48 bytes
inline constexpr std::size_t kAuthorKeyDigest = 0x110;   // 48 bytes
inline constexpr std::size_t kReportId = 0x140;          // 32 bytes
inline constexpr std::size_t kReportIdMa = 0x160;        // 32 bytes
inline constexpr std::size_t kReportedTcb = 0x180;       // u64
inline constexpr std::size_t kCpuidFamId = 0x188;        // u8 (v3)
inline constexpr std::size_t kCpuidModId = 0x189;        // u8 (v3)
inline constexpr std::size_t kCpuidStep = 0x18A;         // u8 (v3), then reserved
inline constexpr std::size_t kChipId = 0x1A0;            // 64 bytes
inline constexpr std::size_t kCommittedTcb = 0x1E0;      // u64
inline constexpr std::size_t kCurrentVersion = 0x1E8;    // build, minor, major, reserved
inline constexpr std::size_t kCommittedVersion = 0x1EC;  // build, minor, major, reserved
inline constexpr std::size_t kLaunchTcb = 0x1F0;         // u64, then reserved to 0x2A0
inline constexpr std::size_t kSignature = 0x2A0;         // 0x200 bytes
inline constexpr std::size_t kSigR = kSignature;         // 72 bytes, little-endian
inline constexpr std::size_t kSigS = kSignature + 72;    // 72 bytes, little-endian
inline constexpr std::size_t kSigComponent = 72;
inline constexpr std::size_t kP384Bytes = 48;

static_assert(kGuestSvn == kVersion + 4 && kPolicy == kGuestSvn + 4);
static_assert(kFamilyId == kPolicy + 8 && kImageId == kFamilyId + 16);
static_assert(kVmpl == kImageId + 16 && kSignatureAlgo == kVmpl + 4);
static_assert(kCurrentTcb == kSignatureAlgo + 4 && kPlatformInfo == kCurrentTcb + 8);
static_assert(kKeyInfo == kPlatformInfo + 8 && kReportData == kKeyInfo + 8);
static_assert(kMeasurement == kReportData + 64 && kHostData == kMeasurement + 48);
static_assert(kIdKeyDigest == kHostData + 32 && kAuthorKeyDigest == kIdKeyDigest + 48);
static_assert(kReportId == kAuthorKeyDigest + 48 && kReportIdMa == kReportId + 32);
static_assert(kReportedTcb == kReportIdMa + 32 && kCpuidFamId == kReportedTcb + 8);
static_assert(kChipId == 0x1A0 && kCommittedTcb == kChipId + 64);
static_assert(kCurrentVersion == kCommittedTcb + 8 && kCommittedVersion == kCurrentVersion + 4);
static_assert(kLaunchTcb == kCommittedVersion + 4);
static_assert(kSignature == kSignedSize && kSignature + 0x200 == kReportSize);
static_assert(kSigS + kSigComponent <= kReportSize);

}  // namespace myelin::secure::snp::detail::layout
