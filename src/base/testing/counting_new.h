// A counting (and, on request, failing) global operator new for tests.
//
// Linking myelin_counting_new into a test binary replaces the global
// operator new/delete (plain, array and aligned forms) with versions that
// count every allocation and can make one chosen allocation throw
// std::bad_alloc, so a test can prove a path allocates nothing in steady
// state or that an allocation failure anywhere in a call becomes an error.
//
// The sanitizers own operator new (and check new/delete pairing), so under
// them the replacement is not compiled: kCountingNew is false, the count
// stays at zero and no allocation is made to fail. Tests that depend on the
// count check kCountingNew and skip themselves there (CI runs them in
// release). All functions are thread-safe; the count is process-wide.
#pragma once

#include <cstdint>

namespace myelin::testing {

// GCC says __SANITIZE_*__; clang (14) only answers __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MYELIN_COUNTING_NEW 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MYELIN_COUNTING_NEW 0
#endif
#endif
#ifndef MYELIN_COUNTING_NEW
#define MYELIN_COUNTING_NEW 1
#endif

inline constexpr bool kCountingNew = MYELIN_COUNTING_NEW == 1;

// operator new calls (every form, every thread) since the process started.
[[nodiscard]] std::uint64_t allocation_count() noexcept;

// Makes the `n`th operator new call from now (1-based, any thread) throw
// std::bad_alloc, once; 0 cancels a pending failure.
void fail_nth_allocation(std::uint64_t n) noexcept;

// Whether the failure armed by fail_nth_allocation() has happened.
[[nodiscard]] bool injected_failure_happened() noexcept;

}  // namespace myelin::testing
