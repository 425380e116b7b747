// Waiting for a file descriptor's readiness on the calling thread.
#pragma once

#include <cstdint>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"

namespace myelin::net {

// Blocks until `fd` is ready for one of `events` (kIoReadable, kIoWritable;
// errors and hang-ups count as ready): true, or false once `deadline`
// passes. The caller words the timeout; nothing allocates unless poll fails.
Result<bool> wait_fd(int fd, std::uint32_t events, MonoTime deadline);

}  // namespace myelin::net
