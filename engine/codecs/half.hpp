// IEEE binary16 (fp16) and bfloat16 conversions, round to nearest, ties to even.
#pragma once

#include <cstdint>

namespace dtsim {

float round_fp16(float x);
float round_bf16(float x);
std::uint16_t to_fp16_bits(float x);
float from_fp16_bits(std::uint16_t h);
std::uint16_t to_bf16_bits(float x);
float from_bf16_bits(std::uint16_t b);

}  // namespace dtsim
