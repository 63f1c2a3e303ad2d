// Little-endian payload writing and reading, for the codecs (internal to engine/codecs/).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>

#include "engine/codecs/codec.hpp"

namespace dtsim::payload {

// Writes into `out`, sized in advance to `size` bytes; the destructor trims what is unused.
class Writer {
 public:
  Writer(Payload& out, std::size_t size) : out_(out) { out_.resize(size); }
  ~Writer() { out_.resize(at_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void f32(float v) { raw(&v, 4); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u16(std::uint16_t v) { raw(&v, 2); }
  void u8(std::uint8_t v) { raw(&v, 1); }

 private:
  void raw(const void* p, std::size_t n) {
    if (at_ + n > out_.size()) out_.resize(2 * (at_ + n));
    std::memcpy(out_.data() + at_, p, n);
    at_ += n;
  }
  Payload& out_;
  std::size_t at_ = 0;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  float f32() { return get<float>(); }
  std::uint32_t u32() { return get<std::uint32_t>(); }
  std::uint16_t u16() { return get<std::uint16_t>(); }
  std::uint8_t u8() { return get<std::uint8_t>(); }
  // Throws unless every byte was read.
  void expect_end() const {
    if (at_ != in_.size()) throw std::invalid_argument("payload too long");
  }

 private:
  template <typename T>
  T get() {
    if (at_ + sizeof(T) > in_.size()) throw std::invalid_argument("payload too short");
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::span<const std::uint8_t> in_;
  std::size_t at_ = 0;
};

// n bits from bit(i), packed 8 to a byte, lowest bit first.
template <typename Bit>
void pack_bits(Writer& w, std::size_t n, Bit bit) {
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint8_t byte = 0;
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) {
      if (bit(i + j)) byte = static_cast<std::uint8_t>(byte | (1u << j));
    }
    w.u8(byte);
  }
}

// Reads n packed bits, calling use(i, bit) for each.
template <typename Use>
void unpack_bits(Reader& r, std::size_t n, Use use) {
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint8_t byte = r.u8();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) use(i + j, ((byte >> j) & 1u) != 0);
  }
}

}  // namespace dtsim::payload
