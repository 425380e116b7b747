// SevGuestProvider (include/myelin/secure/tee_provider.h): SNP_GET_REPORT
// through the Linux sev-guest driver. The request and ioctl structures are
// the kernel's own (<linux/sev-guest.h> from linux-libc-dev); the layout of
// the response buffer is MSG_REPORT_RSP of AMD's SEV-SNP firmware ABI
// specification: STATUS (u32) at 0, REPORT_SIZE (u32) at 4, 24 reserved
// bytes, then the report at 0x20.
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "myelin/secure/sev_snp.h"
#include "myelin/secure/tee_provider.h"

namespace myelin::secure {
namespace {

constexpr std::size_t kRspStatus = 0x00;
constexpr std::size_t kRspReportSize = 0x04;
constexpr std::size_t kRspReport = 0x20;
static_assert(kRspReport + snp::kReportSize <= sizeof(snp_report_resp::data),
              "the response buffer holds a report");
constexpr std::size_t kReportDataOffset = 0x50;  // REPORT_DATA in the report

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

// strerror() is not thread-safe; GNU strerror_r returns the text (maybe not in buf).
std::string errno_text(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);
}

std::string open_hint(int err) {
  if (err == ENOENT || err == ENODEV || err == ENXIO) {
    return " (not an SEV-SNP guest, or the sev-guest driver is not loaded)";
  }
  if (err == EACCES || err == EPERM) return " (permission denied: the server needs access to it)";
  return "";
}

}  // namespace

int PosixDeviceIo::open(const std::string& path) const {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

int PosixDeviceIo::ioctl(int fd, unsigned long request, void* arg) const {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  return rc >= 0 ? rc : -errno;
}

void PosixDeviceIo::close(int fd) const { (void)::close(fd); }

Result<std::unique_ptr<SevGuestProvider>> SevGuestProvider::open(Options options) {
  if (!options.io) options.io = std::make_shared<PosixDeviceIo>();
  const int fd = options.io->open(options.device);
  if (fd < 0) {
    return io_error("SEV-SNP provider: cannot open " + options.device + ": " + errno_text(-fd) +
                    open_hint(-fd));
  }
  return std::unique_ptr<SevGuestProvider>(new SevGuestProvider(std::move(options), fd));
}

SevGuestProvider::~SevGuestProvider() { options_.io->close(fd_); }

Status SevGuestProvider::attest(std::span<const std::byte, 32> report_data,
                                std::vector<std::byte>& evidence) const {
  const auto binding = snp::binding_report_data(report_data);
  snp_report_req req{};
  std::memcpy(req.user_data, binding.data(), sizeof req.user_data);
  req.vmpl = options_.vmpl;
  snp_report_resp resp{};
  snp_guest_request_ioctl guest{};
  guest.msg_version = 1;
  guest.req_data = reinterpret_cast<std::uintptr_t>(&req);
  guest.resp_data = reinterpret_cast<std::uintptr_t>(&resp);
  const std::string what = "SEV-SNP provider: " + options_.device + ": SNP_GET_REPORT";
  const int rc = options_.io->ioctl(fd_, SNP_GET_REPORT, &guest);
  if (rc < 0) {
    std::string detail = errno_text(-rc);
    if (guest.fw_error != 0) detail += ", firmware error " + hex32(guest.fw_error);
    if (guest.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN) {
      detail += ", VMM error: invalid length";
    } else if (guest.vmm_error == SNP_GUEST_VMM_ERR_BUSY) {
      detail += ", VMM error: busy";
    } else if (guest.vmm_error != 0) {
      detail += ", VMM error " + hex32(guest.vmm_error);
    }
    return io_error(what + " failed: " + detail);
  }
  const std::uint32_t status = le32(resp.data + kRspStatus);
  if (status != 0) {
    return io_error(what + ": firmware status " + hex32(status) +
                    (status == 0x16 ? " (INVALID_PARAM)" : ""));
  }
  const std::uint32_t size = le32(resp.data + kRspReportSize);
  if (size != snp::kReportSize) {
    return data_loss(what + ": REPORT_SIZE is " + std::to_string(size) + ", expected " +
                     std::to_string(snp::kReportSize));
  }
  const auto* report = reinterpret_cast<const std::byte*>(resp.data + kRspReport);
  if (std::memcmp(report + kReportDataOffset, binding.data(), binding.size()) != 0) {
    return data_loss(what + ": the report's REPORT_DATA is not the one requested");
  }
  evidence.assign(report, report + snp::kReportSize);
  return ok_status();
}

}  // namespace myelin::secure
