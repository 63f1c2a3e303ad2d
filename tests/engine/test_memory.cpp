// Large buffers (engine/memory.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "engine/memory.hpp"

using namespace dtsim;

TEST_CASE("ZeroedFloats starts as zeros, is writable, and moves its storage") {
  // 3 MiB and a bit: whole huge pages inside, and a tail outside them.
  const std::size_t n = (3u << 20) / sizeof(float) + 5;
  ZeroedFloats a(n);
  REQUIRE(a.size() == n);
  REQUIRE(a.data() != nullptr);
  CHECK(std::all_of(a.data(), a.data() + n, [](float v) { return v == 0.0f; }));
  a.data()[0] = 1.5f;
  a.data()[n - 1] = -2.0f;
  float* storage = a.data();
  ZeroedFloats b(std::move(a));
  CHECK(a.size() == 0);
  CHECK(a.data() == nullptr);
  CHECK(b.data() == storage);
  CHECK(b.data()[0] == 1.5f);
  CHECK(b.data()[n - 1] == -2.0f);
  ZeroedFloats c(4);
  c = std::move(b);  // (c's own four floats are released)
  CHECK(c.size() == n);
  CHECK(c.data()[n - 1] == -2.0f);
  CHECK(ZeroedFloats().size() == 0);
}

TEST_CASE("resize_large zero-fills like resize") {
  std::vector<float> v;
  resize_large(v, 1u << 20);
  CHECK(v.size() == 1u << 20);
  CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }));
}
