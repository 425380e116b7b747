// TsmReportProvider (include/myelin/secure/tee_provider.h): a TDX quote
// through the kernel's configfs-tsm report interface, as the Linux ABI
// document (Documentation/ABI/testing/configfs-tsm) describes it: an entry
// made with mkdir under the report root has the attributes inblob (write, at
// most 64 bytes), outblob (read: the evidence), provider (read, e.g.
// "tdx_guest") and generation (read, decimal: it counts the writes to the
// entry). Reading generation before writing and after reading outblob
// detects another writer in between; the entry is removed with rmdir.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "myelin/secure/tdx.h"
#include "myelin/secure/tee_provider.h"

namespace myelin::secure {
namespace {

constexpr std::size_t kSmallAttribute = 64;  // provider, generation

std::string text_of(const std::vector<std::byte>& bytes) {
  std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

Status PosixTsmFs::make_dir(const std::string& path) const {
  if (::mkdir(path.c_str(), 0700) != 0) return errno_error("mkdir " + path, errno);
  return ok_status();
}

Status PosixTsmFs::remove_dir(const std::string& path) const {
  if (::rmdir(path.c_str()) != 0) return errno_error("rmdir " + path, errno);
  return ok_status();
}

Status PosixTsmFs::is_dir(const std::string& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(path, errno);
  if (!S_ISDIR(st.st_mode)) return failed_precondition(path + ": not a directory");
  return ok_status();
}

Status PosixTsmFs::write_file(const std::string& path, std::span<const std::byte> data) const {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path, errno);
  // configfs takes a binary attribute's value in one write.
  ssize_t n;
  do {
    n = ::write(fd, data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  (void)::close(fd);
  if (n < 0) return errno_error("write " + path, err);
  if (static_cast<std::size_t>(n) != data.size()) {
    return io_error("write " + path + ": short write (" + std::to_string(n) + " of " +
                    std::to_string(data.size()) + " bytes)");
  }
  return ok_status();
}

Result<std::vector<std::byte>> PosixTsmFs::read_file(const std::string& path,
                                                     std::size_t max) const {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path, errno);
  std::vector<std::byte> out;
  std::byte buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      (void)::close(fd);
      return errno_error("read " + path, err);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max) {
      (void)::close(fd);
      return resource_exhausted("read " + path + ": more than " + std::to_string(max) + " bytes");
    }
    out.insert(out.end(), buf, buf + n);
  }
  (void)::close(fd);
  return out;
}

Result<std::unique_ptr<TsmReportProvider>> TsmReportProvider::open(Options options) {
  if (!options.fs) options.fs = std::make_shared<PosixTsmFs>();
  if (Status s = options.fs->is_dir(options.root); !s.ok()) {
    return failed_precondition(
        "TDX provider: configfs-tsm report interface unavailable: " + std::string(s.message()) +
        " (not a TDX guest, configfs not mounted at /sys/kernel/config, "
        "or the kernel has no TSM report support)");
  }
  return std::unique_ptr<TsmReportProvider>(new TsmReportProvider(std::move(options)));
}

Status TsmReportProvider::attest(std::span<const std::byte, 32> report_data,
                                 std::vector<std::byte>& evidence) const {
  const std::string entry = options_.root + "/myelin-" + std::to_string(::getpid()) + "-" +
                            std::to_string(next_entry_.fetch_add(1, std::memory_order_relaxed));
  if (Status s = options_.fs->make_dir(entry); !s.ok()) {
    return io_error("TDX provider: " + std::string(s.message()));
  }
  Status result = attest_in(entry, report_data, evidence);
  Status removed = options_.fs->remove_dir(entry);
  if (!removed.ok()) {
    // A leftover entry costs the kernel memory until someone removes it: say so.
    evidence.clear();
    return io_error(
        (result.ok() ? std::string("TDX provider: ") : std::string(result.message()) + "; and ") +
        std::string(removed.message()));
  }
  return result;
}

Status TsmReportProvider::attest_in(const std::string& entry,
                                    std::span<const std::byte, 32> report_data,
                                    std::vector<std::byte>& evidence) const {
  const std::string prefix = "TDX provider: " + entry + ": ";
  auto generation = [&]() -> Result<std::uint64_t> {
    MYELIN_ASSIGN_OR_RETURN(auto bytes,
                            options_.fs->read_file(entry + "/generation", kSmallAttribute));
    const std::string text = text_of(bytes);
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
      return parse_error("generation '" + text + "' is not a number");
    }
    return v;
  };
  auto before = generation();
  if (!before) return io_error(prefix + std::string(before.error().message()));
  const auto binding = tdx::binding_report_data(report_data);
  if (Status s = options_.fs->write_file(entry + "/inblob", binding); !s.ok()) {
    return io_error(prefix + std::string(s.message()));
  }
  auto outblob = options_.fs->read_file(entry + "/outblob", tdx::kMaxQuoteSize);
  if (!outblob) return io_error(prefix + std::string(outblob.error().message()));
  auto provider = options_.fs->read_file(entry + "/provider", kSmallAttribute);
  if (!provider) return io_error(prefix + std::string(provider.error().message()));
  auto after = generation();
  if (!after) return io_error(prefix + std::string(after.error().message()));
  if (*after != *before + 1) {
    return aborted(prefix + "generation went from " + std::to_string(*before) + " to " +
                   std::to_string(*after) +
                   " across one write: another writer changed the entry, the outblob may not be "
                   "ours");
  }
  const std::string name = text_of(*provider);
  if (name != options_.expected_provider) {
    return failed_precondition(prefix + "provider is '" + name + "', expected '" +
                               options_.expected_provider + "'");
  }
  if (name == "tdx_guest") {
    auto quote = tdx::parse_quote(*outblob);
    if (!quote) {
      return data_loss(prefix + "outblob (" + std::to_string(outblob->size()) +
                       " bytes) is not a TDX quote: " + std::string(quote.error().message()));
    }
    if (quote->td.report_data != binding) {
      return data_loss(prefix + "the quote's REPORT_DATA is not the inblob written");
    }
  } else if (outblob->empty()) {
    return data_loss(prefix + "outblob is empty");
  }
  evidence = std::move(*outblob);
  return ok_status();
}

}  // namespace myelin::secure
