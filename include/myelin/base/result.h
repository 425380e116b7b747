// Result<T>: a value of type T or the Status that explains why there is none.
//
// The members are named like C++23's std::expected (has_value, value, error,
// operator*, operator->, value_or) so that Result can become an alias for
// std::expected<T, Status> on a compiler that has it. Unlike std::expected,
// value() on an error does not throw (no exceptions cross myelin's API): it is
// a contract violation that aborts with the error's text. Check first.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

#include "myelin/base/status.h"

namespace myelin {

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>,
                "Result<Status> is meaningless; return Status");
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

 public:
  using value_type = T;

  // Implicit from a value and from an error, so `return value;` and
  // `return invalid_argument("...");` both read naturally.
  template <typename U = T, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                        !std::is_same_v<std::decay_t<U>, Status> &&
                                                        !std::is_same_v<std::decay_t<U>, Result>>>
  Result(U&& value) : storage_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT

  Result(Status error) : storage_(std::in_place_index<1>, std::move(error)) {  // NOLINT
    if (std::get<1>(storage_).ok()) [[unlikely]] {
      storage_.template emplace<1>(ErrorCode::kInternal, "Result constructed from an ok Status");
    }
  }

  template <typename... Args>
  explicit Result(std::in_place_t, Args&&... args)
      : storage_(std::in_place_index<0>, std::forward<Args>(args)...) {}

  [[nodiscard]] bool has_value() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  [[nodiscard]] T& value() & {
    check();
    return std::get<0>(storage_);
  }
  [[nodiscard]] const T& value() const& {
    check();
    return std::get<0>(storage_);
  }
  [[nodiscard]] T&& value() && {
    check();
    return std::get<0>(std::move(storage_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(storage_) : static_cast<T>(std::forward<U>(fallback));
  }

  // The error; an ok Status when there is a value.
  [[nodiscard]] Status error() const& { return has_value() ? Status() : std::get<1>(storage_); }
  [[nodiscard]] Status error() && {
    return has_value() ? Status() : std::get<1>(std::move(storage_));
  }

 private:
  void check() const {
    if (!has_value()) [[unlikely]] {
      std::fprintf(stderr, "myelin: Result::value() on error: %s\n",
                   std::get<1>(storage_).to_string().c_str());
      std::abort();
    }
  }

  std::variant<T, Status> storage_;
};

namespace detail {
template <typename T>
bool is_ok(const Result<T>& r) noexcept {
  return r.has_value();
}
template <typename T>
Status take_error(Result<T>&& r) {
  return std::move(r).error();
}
template <typename T>
Status take_error(const Result<T>& r) {
  return r.error();
}
template <typename T>
Status take_error(Result<T>& r) {
  return r.error();
}
}  // namespace detail

}  // namespace myelin

#define MYELIN_CONCAT_INNER_(a, b) a##b
#define MYELIN_CONCAT_(a, b) MYELIN_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Result<T>); on error returns the error from the
// enclosing function, otherwise moves the value into `lhs`, which may be a
// declaration: MYELIN_ASSIGN_OR_RETURN(auto cfg, load_config(path));
#define MYELIN_ASSIGN_OR_RETURN(lhs, expr) \
  MYELIN_ASSIGN_OR_RETURN_IMPL_(MYELIN_CONCAT_(myelin_result_, __LINE__), lhs, expr)

#define MYELIN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.has_value()) [[unlikely]]                  \
    return std::move(tmp).error();                    \
  lhs = std::move(tmp).value()
