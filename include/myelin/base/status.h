// Status: the outcome of an operation that returns no value.
//
// An ok Status is a null pointer: constructing, moving, testing and destroying
// it costs nothing and allocates nothing, so it is fine on hot paths. An error
// Status owns a heap-allocated (code, message) pair; errors are the slow path.
// Status is a value type: copies are deep, moves are cheap. Not thread-safe to
// mutate concurrently; distinct objects may be used from distinct threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "myelin/base/error_code.h"

namespace myelin {

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  // A code of kOk makes an ok Status whatever the message.
  Status(ErrorCode code, std::string message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  [[nodiscard]] bool ok() const noexcept { return rep_ == nullptr; }
  [[nodiscard]] ErrorCode code() const noexcept { return rep_ ? rep_->code : ErrorCode::kOk; }
  // The message alone, without the code; empty for ok.
  [[nodiscard]] std::string_view message() const noexcept {
    return rep_ ? std::string_view(rep_->message) : std::string_view();
  }
  // "invalid_argument: --cores: must be >= 1, got 0", or "ok".
  [[nodiscard]] std::string to_string() const;

  // Returns this status with "context: " put before the message, so callers
  // up the stack can say where ("model.onnx: node 'gemm_3': ..."). No-op when ok.
  [[nodiscard]] Status with_context(std::string_view context) &&;
  [[nodiscard]] Status with_context(std::string_view context) const&;

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    ErrorCode code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

inline Status ok_status() noexcept { return Status(); }

// Helpers that read like the error they build: invalid_argument("...").
Status invalid_argument(std::string message);
Status out_of_range(std::string message);
Status not_found(std::string message);
Status failed_precondition(std::string message);
Status resource_exhausted(std::string message);
Status deadline_exceeded(std::string message);
Status cancelled(std::string message);
Status unavailable(std::string message);
Status closed(std::string message);
Status io_error(std::string message);
Status parse_error(std::string message);
Status protocol_error(std::string message);
Status authentication_failed(std::string message);
Status unimplemented(std::string message);
Status data_loss(std::string message);
Status internal_error(std::string message);
Status aborted(std::string message);
Status connection_lost(std::string message);

// An io_error whose message ends with strerror(errnum): "open model.onnx: No such file".
Status errno_error(std::string_view what, int errnum);

}  // namespace myelin

// Returns from the enclosing function if `expr` (a Status or a Result) is an
// error. The enclosing function must return Status or Result<U>.
#define MYELIN_RETURN_IF_ERROR(expr)                                                   \
  do {                                                                                 \
    auto&& myelin_status_or_result_ = (expr);                                          \
    if (!::myelin::detail::is_ok(myelin_status_or_result_)) [[unlikely]]               \
      return ::myelin::detail::take_error(                                             \
          std::forward<decltype(myelin_status_or_result_)>(myelin_status_or_result_)); \
  } while (false)

namespace myelin::detail {
inline bool is_ok(const Status& s) noexcept { return s.ok(); }
inline Status take_error(Status&& s) noexcept { return std::move(s); }
inline Status take_error(const Status& s) { return s; }
inline Status take_error(Status& s) { return s; }
}  // namespace myelin::detail
