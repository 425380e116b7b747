// The single table of myelin error codes.
//
// Every failure in myelin carries one of these codes plus a message that says
// what was wrong and where. The table is an X-macro so the enum, its names
// and any future mapping (exit codes, wire error numbers) stay in one place.
// Codes are stable: append, never renumber.
#pragma once

#include <cstdint>
#include <string_view>

namespace myelin {

// X(enumerator, value, name, meaning)
#define MYELIN_ERROR_CODES(X)                                                      \
  X(kOk, 0, "ok", "no error")                                                      \
  X(kInvalidArgument, 1, "invalid_argument", "a caller-supplied value is invalid") \
  X(kOutOfRange, 2, "out_of_range", "a value lies outside the accepted range")     \
  X(kNotFound, 3, "not_found", "a named thing does not exist")                     \
  X(kAlreadyExists, 4, "already_exists", "a named thing exists already")           \
  X(kFailedPrecondition, 5, "failed_precondition",                                 \
    "the object is not in a state that allows the call")                           \
  X(kResourceExhausted, 6, "resource_exhausted", "a bounded resource is full")     \
  X(kDeadlineExceeded, 7, "deadline_exceeded", "a deadline passed first")          \
  X(kCancelled, 8, "cancelled", "the operation was cancelled")                     \
  X(kUnavailable, 9, "unavailable", "the peer or service cannot be reached")       \
  X(kClosed, 10, "closed", "the object was closed or shut down")                   \
  X(kIoError, 11, "io_error", "an operating-system I/O call failed")               \
  X(kParseError, 12, "parse_error", "outside bytes do not follow their format")    \
  X(kProtocolError, 13, "protocol_error", "a peer broke the protocol")             \
  X(kAuthenticationFailed, 14, "authentication_failed",                            \
    "a tag, MAC, credential or attestation did not verify")                        \
  X(kUnimplemented, 15, "unimplemented", "the feature is not supported")           \
  X(kDataLoss, 16, "data_loss", "stored data is corrupt or truncated")             \
  X(kInternal, 17, "internal", "an invariant of myelin itself was broken")         \
  X(kAborted, 18, "aborted", "the peer refused or abandoned the operation")        \
  X(kConnectionLost, 19, "connection_lost",                                        \
    "the connection died with the operation in flight: it may or may not have taken effect")

enum class ErrorCode : std::uint8_t {
#define MYELIN_X_ENUM(e, v, name, meaning) e = v,
  MYELIN_ERROR_CODES(MYELIN_X_ENUM)
#undef MYELIN_X_ENUM
};

// Short snake_case name of the code ("invalid_argument"); "unknown" for a
// value outside the table.
std::string_view to_string(ErrorCode code) noexcept;

// One-sentence meaning of the code, for documentation and --help output.
std::string_view describe(ErrorCode code) noexcept;

}  // namespace myelin
