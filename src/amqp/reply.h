// Reply<T>: the producing end of a std::future that can never be broken.
//
// A Reply travels inside the task handed to the loop. If it is destroyed
// without an answer (the task never ran because the loop was shutting down,
// or the channel died and dropped it), it answers with an error itself, so
// a caller's future always gets a value and never throws broken_promise.
// T is Status or Result<U>. Move-only; used on one thread at a time.
#pragma once

#include <future>
#include <utility>

#include "myelin/base/result.h"
#include "myelin/base/status.h"

namespace myelin::amqp::detail {

template <typename T>
class Reply {
 public:
  Reply() = default;
  Reply(Reply&& other) noexcept : promise_(std::move(other.promise_)), armed_(other.armed_) {
    other.armed_ = false;
  }
  Reply& operator=(Reply&& other) noexcept {
    if (this != &other) {
      abandon();
      promise_ = std::move(other.promise_);
      armed_ = other.armed_;
      other.armed_ = false;
    }
    return *this;
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply() { abandon(); }

  std::future<T> future() { return promise_.get_future(); }

  void set(T value) {
    if (!armed_) return;
    armed_ = false;
    promise_.set_value(std::move(value));
  }
  // GCC 12 with -O2 and the sanitizers reports a false -Wmaybe-uninitialized
  // for the inactive alternative of T's variant here; the value is complete.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  void fail(Status error) { set(T(std::move(error))); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

 private:
  void abandon() {
    if (armed_) fail(unavailable("amqp: the connection ended before the broker answered"));
  }
  std::promise<T> promise_;
  bool armed_ = true;
};

}  // namespace myelin::amqp::detail
