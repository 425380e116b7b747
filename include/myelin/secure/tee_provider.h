// Attestation providers for a guest that attests itself (docs/attestation.md,
// "Providers"):
//
//   SevGuestProvider  AMD SEV-SNP, the SNP_GET_REPORT ioctl of the Linux
//                     sev-guest driver (/dev/sev-guest, <linux/sev-guest.h>).
//   TsmReportProvider Intel TDX (or any TSM the kernel offers), the
//                     configfs-tsm report interface (/sys/kernel/config/tsm/
//                     report): mkdir an entry, write inblob, read outblob,
//                     provider and generation, rmdir.
//
// Both put the session's binding (binding_report_data: report_data then 32
// zeros) in REPORT_DATA and check that the evidence they got back carries it.
// The kernel interfaces are injected (DeviceIo, TsmFs) so tests run against
// fakes; the Posix implementations are the real ones. open() fails with a
// precise message when the device is absent, so a server refuses to start.
//
// Providers are immutable after open() and safe to call from several threads
// (the sev-guest driver serialises requests on its descriptor; each TSM
// report uses its own configfs entry).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/secure/attestation.h"

namespace myelin::secure {

// The system calls SevGuestProvider makes; each returns -errno on failure.
class DeviceIo {
 public:
  virtual ~DeviceIo() = default;
  virtual int open(const std::string& path) const = 0;  // O_RDWR | O_CLOEXEC: fd or -errno
  virtual int ioctl(int fd, unsigned long request, void* arg) const = 0;  // >= 0 or -errno
  virtual void close(int fd) const = 0;
};

class PosixDeviceIo final : public DeviceIo {
 public:
  int open(const std::string& path) const override;
  int ioctl(int fd, unsigned long request, void* arg) const override;
  void close(int fd) const override;
};

class SevGuestProvider final : public AttestationProvider {
 public:
  struct Options {
    std::string device = "/dev/sev-guest";
    std::uint32_t vmpl = 0;              // the VMPL the report is requested for
    std::shared_ptr<const DeviceIo> io;  // default: PosixDeviceIo
  };
  // Opens the device (kept open for the provider's lifetime).
  static Result<std::unique_ptr<SevGuestProvider>> open(Options options);
  ~SevGuestProvider() override;
  SevGuestProvider(const SevGuestProvider&) = delete;
  SevGuestProvider& operator=(const SevGuestProvider&) = delete;

  [[nodiscard]] std::string_view kind() const noexcept override { return "sev-snp"; }
  // One SNP_GET_REPORT: evidence is the 0x4A0-byte report.
  Status attest(std::span<const std::byte, 32> report_data,
                std::vector<std::byte>& evidence) const override;

 private:
  SevGuestProvider(Options options, int fd) : options_(std::move(options)), fd_(fd) {}
  Options options_;
  int fd_;
};

// File operations on configfs-tsm. Paths are absolute.
class TsmFs {
 public:
  virtual ~TsmFs() = default;
  virtual Status make_dir(const std::string& path) const = 0;
  virtual Status remove_dir(const std::string& path) const = 0;
  virtual Status is_dir(const std::string& path) const = 0;  // ok if it is a directory
  virtual Status write_file(const std::string& path, std::span<const std::byte> data) const = 0;
  // At most `max` bytes; more is an error.
  virtual Result<std::vector<std::byte>> read_file(const std::string& path,
                                                   std::size_t max) const = 0;
};

class PosixTsmFs final : public TsmFs {
 public:
  Status make_dir(const std::string& path) const override;
  Status remove_dir(const std::string& path) const override;
  Status is_dir(const std::string& path) const override;
  Status write_file(const std::string& path, std::span<const std::byte> data) const override;
  Result<std::vector<std::byte>> read_file(const std::string& path, std::size_t max) const override;
};

class TsmReportProvider final : public AttestationProvider {
 public:
  struct Options {
    std::string root = "/sys/kernel/config/tsm/report";
    // The `provider` attribute the evidence must come from; "tdx_guest"
    // means a TDX quote (checked to parse, with our REPORT_DATA).
    std::string expected_provider = "tdx_guest";
    std::shared_ptr<const TsmFs> fs;  // default: PosixTsmFs
  };
  // Checks that the root exists.
  static Result<std::unique_ptr<TsmReportProvider>> open(Options options);

  [[nodiscard]] std::string_view kind() const noexcept override { return "tdx"; }
  Status attest(std::span<const std::byte, 32> report_data,
                std::vector<std::byte>& evidence) const override;

 private:
  explicit TsmReportProvider(Options options) : options_(std::move(options)) {}
  Status attest_in(const std::string& entry, std::span<const std::byte, 32> report_data,
                   std::vector<std::byte>& evidence) const;
  Options options_;
  mutable std::atomic<std::uint64_t> next_entry_{0};
};

}  // namespace myelin::secure
