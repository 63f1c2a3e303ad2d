// IEEE binary16 (fp16) and bfloat16 conversions, round to nearest, ties to even.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dtsim {

float round_fp16(float x);
// out[i] = round_fp16(x[i] * scale) * unscale for every i, the same as that loop (with the
// CPU's F16C conversions when it has them, 8 values at a time; a NaN may keep more of its
// payload bits than round_fp16 leaves it). x and out may be the same array.
void round_fp16_scaled(const float* x, float scale, float unscale, float* out, std::size_t n);
float round_bf16(float x);
std::uint16_t to_fp16_bits(float x);
float from_fp16_bits(std::uint16_t h);
std::uint16_t to_bf16_bits(float x);
float from_bf16_bits(std::uint16_t b);

}  // namespace dtsim
