// The guest-side providers against fake kernels: SevGuestProvider with a
// fake SNP_GET_REPORT ioctl, TsmReportProvider with a configfs-tsm entry
// imitated in a temp directory. Every failure the kernel can return is
// refused with a message naming the device and the cause. Neither provider
// can run for real on a machine that is not an SEV-SNP / TDX guest.
#include <gtest/gtest.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "myelin/secure/sev_snp.h"
#include "myelin/secure/tdx.h"
#include "myelin/secure/tee_provider.h"
#include "src/secure/attestation/testdata_util.h"

namespace myelin::secure {
namespace {

namespace td = secure::testdata;
namespace fs = std::filesystem;

std::array<std::byte, 32> session_data() {
  std::array<std::byte, 32> rd{};
  for (std::size_t i = 0; i < rd.size(); ++i) rd[i] = std::byte(0xA0 + i);
  return rd;
}

std::string message_of(const Status& s) { return std::string(s.message()); }

// --- sev-guest -----------------------------------------------------------------

// Answers SNP_GET_REPORT like the driver: the real report with the request's
// user data as REPORT_DATA, or the failure a test sets.
class FakeSevGuest final : public DeviceIo {
 public:
  int open_result = 7;  // fd, or -errno
  int ioctl_errno = 0;
  std::uint32_t fw_error = 0;
  std::uint32_t vmm_error = 0;
  std::uint32_t status = 0;
  std::uint32_t report_size = snp::kReportSize;
  bool echo_user_data = true;
  std::vector<std::byte> report = td::unhex(td::read(td::dir("sev-snp") + "/report.hex"));
  mutable std::uint32_t seen_vmpl = 99;
  mutable std::uint8_t seen_msg_version = 0;
  mutable int closed = -1;

  int open(const std::string&) const override { return open_result; }
  int ioctl(int fd, unsigned long request, void* arg) const override {
    EXPECT_EQ(fd, open_result);
    EXPECT_EQ(request, static_cast<unsigned long>(SNP_GET_REPORT));
    auto* g = static_cast<snp_guest_request_ioctl*>(arg);
    seen_msg_version = g->msg_version;
    const auto* req = reinterpret_cast<const snp_report_req*>(g->req_data);
    auto* resp = reinterpret_cast<snp_report_resp*>(g->resp_data);
    seen_vmpl = req->vmpl;
    if (ioctl_errno != 0) {
      g->fw_error = fw_error;
      g->vmm_error = vmm_error;
      return -ioctl_errno;
    }
    std::memcpy(resp->data, &status, 4);  // little-endian host (x86-64, the only SNP guest)
    std::memcpy(resp->data + 4, &report_size, 4);
    std::memcpy(resp->data + 0x20, report.data(), report.size());
    if (echo_user_data) std::memcpy(resp->data + 0x20 + 0x50, req->user_data, 64);
    return 0;
  }
  void close(int fd) const override { closed = fd; }
};

Result<std::unique_ptr<SevGuestProvider>> open_fake(std::shared_ptr<FakeSevGuest> dev) {
  SevGuestProvider::Options o;
  o.vmpl = 1;
  o.io = std::move(dev);
  return SevGuestProvider::open(std::move(o));
}

TEST(SevGuestProvider, ReportCarriesTheBinding) {
  auto dev = std::make_shared<FakeSevGuest>();
  {
    auto p = open_fake(dev);
    ASSERT_TRUE(p) << p.error().to_string();
    std::vector<std::byte> evidence;
    ASSERT_TRUE((*p)->attest(session_data(), evidence).ok());
    ASSERT_EQ(evidence.size(), snp::kReportSize);
    auto report = snp::parse_report(evidence);
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_EQ(report->report_data, snp::binding_report_data(session_data()));
    EXPECT_EQ(dev->seen_vmpl, 1u);
    EXPECT_EQ(dev->seen_msg_version, 1);
    EXPECT_EQ(dev->closed, -1);
  }
  EXPECT_EQ(dev->closed, 7);  // the descriptor is closed with the provider
}

TEST(SevGuestProvider, DeviceMissingOrForbidden) {
  SevGuestProvider::Options o;
  o.device = "/nonexistent/sev-guest";  // the real open(2)
  auto missing = SevGuestProvider::open(o);
  ASSERT_FALSE(missing);
  EXPECT_NE(message_of(missing.error())
                .find("cannot open /nonexistent/sev-guest: No such file or "
                      "directory (not an SEV-SNP guest"),
            std::string::npos)
      << missing.error().to_string();
  auto dev = std::make_shared<FakeSevGuest>();
  dev->open_result = -EACCES;
  auto denied = open_fake(dev);
  ASSERT_FALSE(denied);
  EXPECT_NE(message_of(denied.error()).find("Permission denied (permission denied"),
            std::string::npos)
      << denied.error().to_string();
}

TEST(SevGuestProvider, EveryFailureIsPrecise) {
  struct Case {
    std::function<void(FakeSevGuest&)> setup;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](FakeSevGuest& d) { d.ioctl_errno = EPERM; },
       "SNP_GET_REPORT failed: Operation not permitted"},
      {[](FakeSevGuest& d) {
         d.ioctl_errno = EIO;
         d.fw_error = 0x16;
       },
       "SNP_GET_REPORT failed: Input/output error, firmware error 0x16"},
      {[](FakeSevGuest& d) {
         d.ioctl_errno = EAGAIN;
         d.vmm_error = SNP_GUEST_VMM_ERR_BUSY;
       },
       "VMM error: busy"},
      {[](FakeSevGuest& d) { d.status = 0x16; }, "firmware status 0x16 (INVALID_PARAM)"},
      {[](FakeSevGuest& d) { d.report_size = 100; }, "REPORT_SIZE is 100, expected 1184"},
      {[](FakeSevGuest& d) { d.echo_user_data = false; },
       "the report's REPORT_DATA is not the one requested"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    auto dev = std::make_shared<FakeSevGuest>();
    c.setup(*dev);
    auto p = open_fake(dev);
    ASSERT_TRUE(p);
    std::vector<std::byte> evidence;
    Status s = (*p)->attest(session_data(), evidence);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(message_of(s).find("SEV-SNP provider: /dev/sev-guest"), std::string::npos)
        << s.to_string();
    EXPECT_NE(message_of(s).find(c.expected), std::string::npos) << s.to_string();
    EXPECT_TRUE(evidence.empty());
  }
}

// --- configfs-tsm ---------------------------------------------------------------

// A configfs-tsm report root in a temp directory. mkdir makes the entry with
// its provider and generation attributes; writing inblob bumps generation and
// produces outblob (the real quote with the inblob as REPORT_DATA, or what
// the test asks for); rmdir removes the attribute files first, as configfs
// needs no such step. File reads and writes are PosixTsmFs's own.
class FakeTsm final : public TsmFs {
 public:
  explicit FakeTsm(fs::path root) : root_(std::move(root)) {}
  std::string provider = "tdx_guest\n";
  int mkdir_errno = 0;
  int rmdir_errno = 0;
  std::uint64_t extra_writes = 0;           // another writer bumps generation this often
  std::optional<std::size_t> outblob_size;  // truncate outblob
  bool echo_inblob = true;
  std::vector<std::byte> quote = td::read(td::dir("tdx") + "/quote.dat");
  mutable int entries_made = 0;

  Status make_dir(const std::string& path) const override {
    if (mkdir_errno != 0) return errno_error("mkdir " + path, mkdir_errno);
    MYELIN_RETURN_IF_ERROR(real_.make_dir(path));
    ++entries_made;
    std::ofstream(path + "/provider") << provider;
    std::ofstream(path + "/generation") << "0\n";
    return ok_status();
  }
  Status remove_dir(const std::string& path) const override {
    for (const char* f : {"provider", "generation", "inblob", "outblob"}) {
      fs::remove(fs::path(path) / f);
    }
    if (rmdir_errno != 0) return errno_error("rmdir " + path, rmdir_errno);
    return real_.remove_dir(path);
  }
  Status is_dir(const std::string& path) const override { return real_.is_dir(path); }
  Status write_file(const std::string& path, std::span<const std::byte> data) const override {
    std::ofstream(path, std::ios::binary).flush();  // configfs attributes exist; files do not
    MYELIN_RETURN_IF_ERROR(real_.write_file(path, data));
    const fs::path entry = fs::path(path).parent_path();
    auto gen = real_.read_file((entry / "generation").string(), 64);
    const std::uint64_t g =
        std::stoull(std::string(reinterpret_cast<const char*>(gen->data()), gen->size()));
    std::ofstream(entry / "generation") << (g + 1 + extra_writes) << "\n";
    std::vector<std::byte> out = quote;
    if (echo_inblob) std::copy(data.begin(), data.end(), out.begin() + 48 + 520);
    if (outblob_size) out.resize(*outblob_size);
    std::ofstream((entry / "outblob").string(), std::ios::binary)
        .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    return ok_status();
  }
  Result<std::vector<std::byte>> read_file(const std::string& path,
                                           std::size_t max) const override {
    return real_.read_file(path, max);
  }

 private:
  fs::path root_;
  PosixTsmFs real_;
};

class TsmReport : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(root_); }
  void TearDown() override { fs::remove_all(root_.parent_path()); }
  Result<std::unique_ptr<TsmReportProvider>> open(std::shared_ptr<FakeTsm> fake) {
    TsmReportProvider::Options o;
    o.root = root_.string();
    o.fs = std::move(fake);
    return TsmReportProvider::open(std::move(o));
  }
  bool root_is_empty() const { return fs::is_empty(root_); }

  fs::path root_ =
      fs::temp_directory_path() / ("myelin_tsm_test_" + std::to_string(::getpid())) / "report";
};

TEST_F(TsmReport, QuoteCarriesTheBindingAndTheEntryIsRemoved) {
  auto fake = std::make_shared<FakeTsm>(root_);
  auto p = open(fake);
  ASSERT_TRUE(p) << p.error().to_string();
  for (int i = 0; i < 2; ++i) {
    std::vector<std::byte> evidence;
    Status s = (*p)->attest(session_data(), evidence);
    ASSERT_TRUE(s.ok()) << s.to_string();
    auto quote = tdx::parse_quote(evidence);
    ASSERT_TRUE(quote) << quote.error().to_string();
    EXPECT_EQ(quote->td.report_data, tdx::binding_report_data(session_data()));
    EXPECT_TRUE(root_is_empty());
  }
  EXPECT_EQ(fake->entries_made, 2);  // one fresh entry per report
}

TEST_F(TsmReport, RootMissing) {
  TsmReportProvider::Options o;
  o.root = (root_ / "absent").string();  // the real PosixTsmFs
  auto p = TsmReportProvider::open(o);
  ASSERT_FALSE(p);
  EXPECT_NE(message_of(p.error()).find("configfs-tsm report interface unavailable: " + o.root +
                                       ": No such file or directory (not a TDX guest"),
            std::string::npos)
      << p.error().to_string();
}

TEST_F(TsmReport, EveryFailureIsPreciseAndCleansUp) {
  struct Case {
    std::function<void(FakeTsm&)> setup;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](FakeTsm& f) { f.mkdir_errno = EPERM; }, "Operation not permitted"},
      {[](FakeTsm& f) { f.outblob_size = 100; },
       "outblob (100 bytes) is not a TDX quote: TDX quote: 100 bytes"},
      {[](FakeTsm& f) { f.outblob_size = 0; }, "outblob (0 bytes) is not a TDX quote"},
      {[](FakeTsm& f) { f.extra_writes = 1; },
       "generation went from 0 to 2 across one write: another writer"},
      {[](FakeTsm& f) { f.provider = "sev_guest\n"; },
       "provider is 'sev_guest', expected 'tdx_guest'"},
      {[](FakeTsm& f) { f.echo_inblob = false; },
       "the quote's REPORT_DATA is not the inblob written"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    auto fake = std::make_shared<FakeTsm>(root_);
    c.setup(*fake);
    auto p = open(fake);
    ASSERT_TRUE(p);
    std::vector<std::byte> evidence;
    Status s = (*p)->attest(session_data(), evidence);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(message_of(s).rfind("TDX provider: ", 0), 0u) << s.to_string();
    EXPECT_NE(message_of(s).find(root_.string() + "/myelin-"), std::string::npos) << s.to_string();
    EXPECT_NE(message_of(s).find(c.expected), std::string::npos) << s.to_string();
    EXPECT_TRUE(evidence.empty());
    EXPECT_TRUE(root_is_empty());  // the entry is removed on failure too
  }
}

TEST_F(TsmReport, EntryThatCannotBeRemovedIsReported) {
  auto fake = std::make_shared<FakeTsm>(root_);
  fake->rmdir_errno = EBUSY;
  auto p = open(fake);
  ASSERT_TRUE(p);
  std::vector<std::byte> evidence;
  Status s = (*p)->attest(session_data(), evidence);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(message_of(s).find("TDX provider: rmdir " + root_.string() + "/myelin-"),
            std::string::npos)
      << s.to_string();
  EXPECT_NE(message_of(s).find("Device or resource busy"), std::string::npos) << s.to_string();
  EXPECT_TRUE(evidence.empty());
  fake->provider = "other\n";  // a failed report and a failed rmdir: both named
  s = (*p)->attest(session_data(), evidence);
  EXPECT_NE(message_of(s).find("provider is 'other'"), std::string::npos) << s.to_string();
  EXPECT_NE(message_of(s).find("; and rmdir "), std::string::npos) << s.to_string();
}

TEST_F(TsmReport, PlainDirectoryIsNotAnEntry) {
  // The real PosixTsmFs over a plain directory: mkdir works but the entry has
  // no attributes, as on a kernel whose TSM does not populate them.
  TsmReportProvider::Options o;
  o.root = root_.string();
  auto p = TsmReportProvider::open(o);
  ASSERT_TRUE(p) << p.error().to_string();
  std::vector<std::byte> evidence;
  Status s = (*p)->attest(session_data(), evidence);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(message_of(s).find("/generation: No such file or directory"), std::string::npos)
      << s.to_string();
  EXPECT_TRUE(root_is_empty());
}

}  // namespace
}  // namespace myelin::secure
