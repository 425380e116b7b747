#include "myelin/base/status.h"

#include <cstring>
#include <string>

namespace myelin {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
#define MYELIN_X_NAME(e, v, name, meaning) \
  case ErrorCode::e:                       \
    return name;
    MYELIN_ERROR_CODES(MYELIN_X_NAME)
#undef MYELIN_X_NAME
  }
  return "unknown";
}

std::string_view describe(ErrorCode code) noexcept {
  switch (code) {
#define MYELIN_X_MEANING(e, v, name, meaning) \
  case ErrorCode::e:                          \
    return meaning;
    MYELIN_ERROR_CODES(MYELIN_X_MEANING)
#undef MYELIN_X_MEANING
  }
  return "an error code outside myelin's table";
}

Status::Status(ErrorCode code, std::string message) {
  if (code != ErrorCode::kOk) rep_ = std::make_unique<Rep>(Rep{code, std::move(message)});
}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  return *this;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string out(myelin::to_string(rep_->code));
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  return out;
}

Status Status::with_context(std::string_view context) && {
  if (rep_ && !context.empty()) {
    std::string message(context);
    message += ": ";
    message += rep_->message;
    rep_->message = std::move(message);
  }
  return std::move(*this);
}

Status Status::with_context(std::string_view context) const& {
  return Status(*this).with_context(context);
}

Status invalid_argument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
Status out_of_range(std::string m) { return {ErrorCode::kOutOfRange, std::move(m)}; }
Status not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
Status failed_precondition(std::string m) { return {ErrorCode::kFailedPrecondition, std::move(m)}; }
Status resource_exhausted(std::string m) { return {ErrorCode::kResourceExhausted, std::move(m)}; }
Status deadline_exceeded(std::string m) { return {ErrorCode::kDeadlineExceeded, std::move(m)}; }
Status cancelled(std::string m) { return {ErrorCode::kCancelled, std::move(m)}; }
Status unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
Status closed(std::string m) { return {ErrorCode::kClosed, std::move(m)}; }
Status io_error(std::string m) { return {ErrorCode::kIoError, std::move(m)}; }
Status parse_error(std::string m) { return {ErrorCode::kParseError, std::move(m)}; }
Status protocol_error(std::string m) { return {ErrorCode::kProtocolError, std::move(m)}; }
Status authentication_failed(std::string m) {
  return {ErrorCode::kAuthenticationFailed, std::move(m)};
}
Status unimplemented(std::string m) { return {ErrorCode::kUnimplemented, std::move(m)}; }
Status data_loss(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
Status internal_error(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
Status aborted(std::string m) { return {ErrorCode::kAborted, std::move(m)}; }
Status connection_lost(std::string m) { return {ErrorCode::kConnectionLost, std::move(m)}; }

Status errno_error(std::string_view what, int errnum) {
  char buf[256];
  // GNU strerror_r returns the message pointer (which may not be buf).
  const char* text = strerror_r(errnum, buf, sizeof buf);
  std::string message(what);
  message += ": ";
  message += text;
  return io_error(std::move(message));
}

}  // namespace myelin
