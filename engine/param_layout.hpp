// Named views into one flat parameter buffer (the llm.c layout).
//
// Parameters, gradients and optimizer state of a model each live in one contiguous
// std::vector<float> of `ParamLayout::size()` floats. A ParamLayout says which slice belongs
// to which tensor, so optimizers, compression and collectives work on whole spans, while
// layers and reports can still name "dense1.weight". Immutable once built.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace dtsim {

struct TensorSlot {
  std::string name;        // e.g. "dense1.weight"
  std::vector<int> shape;  // e.g. {out, in}
  std::size_t offset = 0;  // in floats, from the start of the flat buffer
  std::size_t size = 0;    // product of shape
};

class ParamLayout {
 public:
  // Appends a tensor at the end of the buffer; returns its offset.
  std::size_t add(std::string name, std::vector<int> shape) {
    std::size_t n = 1;
    for (int d : shape) n *= static_cast<std::size_t>(d);
    slots_.push_back({std::move(name), std::move(shape), size_, n});
    size_ += n;
    return slots_.back().offset;
  }

  std::size_t size() const { return size_; }
  const std::vector<TensorSlot>& tensors() const { return slots_; }

  // The slice of `buffer` that holds `slot` (buffer must have size() floats).
  template <typename T>
  static std::span<T> view(std::span<T> buffer, const TensorSlot& slot) {
    return buffer.subspan(slot.offset, slot.size);
  }

 private:
  std::vector<TensorSlot> slots_;
  std::size_t size_ = 0;
};

}  // namespace dtsim
