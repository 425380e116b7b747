// Task: the unit of work an EventLoop runs — a small, move-only `void()` callable.
//
// GCC 12 has no std::move_only_function, and std::function both requires
// copyable targets and allocates for anything larger than two pointers. A
// Task stores callables of up to kInlineSize bytes (alignment <= 8) with a
// nothrow move constructor inline, so submitting a typical lambda (a few
// pointers and integers) allocates nothing. Larger or over-aligned callables
// are moved to the heap: correct, but not free. Trivially copyable callables
// are relocated with memcpy, without an indirect call.
//
// A Task is a value: not thread-safe; move it between threads only through a
// synchronising hand-off (EventLoop::submit is one).
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace myelin {

namespace detail {
class TaskQueue;
}  // namespace detail

class Task {
 public:
  static constexpr std::size_t kInlineSize = 48;
  static constexpr std::size_t kInlineAlign = 8;

  // True when F is stored inline (no allocation).
  template <typename F>
  static constexpr bool stores_inline() {
    using D = std::decay_t<F>;
    return sizeof(D) <= kInlineSize && alignof(D) <= kInlineAlign &&
           std::is_nothrow_move_constructible_v<D>;
  }

  Task() noexcept = default;

  template <
      typename F, typename D = std::decay_t<F>,
      typename = std::enable_if_t<!std::is_same_v<D, Task> && std::is_invocable_r_v<void, D&>>>
  Task(F&& f) {  // NOLINT(google-explicit-constructor): lets submit([&] { ... }) read naturally
    if constexpr (stores_inline<F>()) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      D* heap = new D(std::forward<F>(f));
      std::memcpy(storage_, &heap, sizeof(heap));
      ops_ = &kHeapOps<D>;
    }
  }

  Task(Task&& other) noexcept { take(other); }
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Runs the callable. Precondition: not empty. May be called more than once
  // (repeating timers do); exceptions from the callable propagate.
  void operator()() { ops_->invoke(storage_); }

  // Destroys the callable, leaving the Task empty.
  void reset() noexcept {
    if (ops_ != nullptr) {
      if (ops_->destroy != nullptr) ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    void (*invoke)(void* storage);
    // Move-constructs into `dst` from `src` and destroys `src`; null means
    // "memcpy the storage" (trivially copyable inline callables).
    void (*relocate)(void* dst, void* src) noexcept;
    // Null for trivially destructible inline callables.
    void (*destroy)(void* storage) noexcept;
    // Bytes of storage the callable occupies (a pointer's for heap ones), so
    // a queue can give a small callable a small slot.
    std::size_t size;
  };
  // TaskQueue keeps callables in raw slots sized by Ops::size, not in Task
  // objects: it moves them out with the ops below and runs them in place.
  friend class detail::TaskQueue;

  template <typename D>
  static D* heap_ptr(void* storage) noexcept {
    D* p;
    std::memcpy(&p, storage, sizeof(p));
    return p;
  }

  template <typename D>
  static constexpr Ops kInlineOps = {
      [](void* s) { (*std::launder(static_cast<D*>(s)))(); },
      std::is_trivially_copyable_v<D>
          ? nullptr
          : +[](void* dst, void* src) noexcept {
              D* from = std::launder(static_cast<D*>(src));
              ::new (dst) D(std::move(*from));
              from->~D();
            },
      std::is_trivially_destructible_v<D>
          ? nullptr
          : +[](void* s) noexcept { std::launder(static_cast<D*>(s))->~D(); },
      sizeof(D),
  };

  template <typename D>
  static constexpr Ops kHeapOps = {
      [](void* s) { (*heap_ptr<D>(s))(); },
      nullptr,  // the pointer itself is trivially relocatable
      [](void* s) noexcept { delete heap_ptr<D>(s); },
      sizeof(D*),
  };

  void take(Task& other) noexcept {
    ops_ = other.ops_;
    if (ops_ == nullptr) return;
    if (ops_->relocate == nullptr) {
      std::memcpy(storage_, other.storage_, kInlineSize);
    } else {
      ops_->relocate(storage_, other.storage_);
    }
    other.ops_ = nullptr;
  }

  alignas(kInlineAlign) unsigned char storage_[kInlineSize];
  const Ops* ops_ = nullptr;
};

static_assert(sizeof(Task) == 56, "Task's inline storage (48 bytes) fills a two-unit queue slot");

}  // namespace myelin
