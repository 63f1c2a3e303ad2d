// Large buffers. Touching a fresh buffer of hundreds of megabytes costs one page fault per
// 4 KiB page, which dominates loading a dataset or setting up a thousand workers (and costs
// more still in a virtual machine). Linux can back such a buffer with 2 MiB transparent huge
// pages when asked (madvise), which cuts the faults 512-fold; nothing else changes.
#pragma once

#include <cstddef>
#include <vector>

namespace dtsim {

// Asks for transparent huge pages over the whole 2 MiB pages inside [data, data + bytes); a
// hint only (nothing on other systems, or when the kernel declines).
void advise_huge_pages(void* data, std::size_t bytes);

// v.resize(n) (zero-filled) for an empty v, with the new storage advised first.
template <class T>
void resize_large(std::vector<T>& v, std::size_t n) {
  v.reserve(n);
  advise_huge_pages(v.data(), n * sizeof(T));
  v.resize(n);
}

// n floats of zeros on fresh pages, which the kernel zeroes and maps only when first touched
// (and on huge pages where it can). A thousand workers' gradient buffers then cost nothing until
// their first gradients write them, on the job threads, instead of a serial memset at set-up.
class ZeroedFloats {
 public:
  ZeroedFloats() = default;
  explicit ZeroedFloats(std::size_t n);
  ~ZeroedFloats();
  ZeroedFloats(ZeroedFloats&& other) noexcept;
  ZeroedFloats& operator=(ZeroedFloats&& other) noexcept;
  ZeroedFloats(const ZeroedFloats&) = delete;
  ZeroedFloats& operator=(const ZeroedFloats&) = delete;

  float* data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // bytes mapped (0: allocated with new[], or empty)
};

}  // namespace dtsim
