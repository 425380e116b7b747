#include "myelin/amqp/types.h"

#include <bit>
#include <type_traits>

namespace myelin::amqp {

bool operator==(const FieldValue& a, const FieldValue& b) {
  if (a.value.index() != b.value.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::remove_cvref_t<decltype(x)>;
        const T& y = std::get<T>(b.value);
        if constexpr (std::is_same_v<T, float>) {
          return std::bit_cast<std::uint32_t>(x) == std::bit_cast<std::uint32_t>(y);
        } else if constexpr (std::is_same_v<T, double>) {
          return std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y);
        } else if constexpr (std::is_same_v<T, std::monostate>) {
          return true;
        } else {
          return x == y;
        }
      },
      a.value);
}

}  // namespace myelin::amqp
