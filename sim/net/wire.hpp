// Sizes on the wire that exchanges agree on.
#pragma once

#include <cstdint>

namespace dtsim::wire {

inline constexpr std::uint64_t kFloatBytes = sizeof(float);  // a float of real data
inline constexpr std::uint64_t kHeaderBytes = 8;             // a message that carries no data

}  // namespace dtsim::wire
