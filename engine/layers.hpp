// Layers: forward/backward pairs over a batch, with parameters in a flat arena.
//
// Activations are row-major [batch, features]; images are [batch, channels, height, width],
// so "features" = channels * height * width and a flatten is free. A layer object holds only
// shapes (immutable after construction), so one Network can be used by many threads at once,
// each with its own Workspace. A layer's parameters, gradients and scratch memory are passed
// in through LayerBuffers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.hpp"

namespace dtsim {

struct Shape {
  int channels = 1;
  int height = 1;
  int width = 1;
  int size() const { return channels * height * width; }
  bool operator==(const Shape&) const = default;
};

struct ParamSpec {
  std::string name;  // relative to the layer, e.g. "weight"
  std::vector<int> shape;
};

// The memory a layer works on during one call. `params` and `grads` point at this layer's
// slice of the flat arenas (in ParamSpec order); `scratch` has scratch_floats(batch) floats.
struct LayerBuffers {
  const float* params = nullptr;
  float* grads = nullptr;
  float* scratch = nullptr;
};

enum class InitKind { kHe, kXavier };

class Layer {
 public:
  Layer(Shape input, Shape output) : input_(input), output_(output) {}
  virtual ~Layer() = default;

  virtual std::string kind() const = 0;
  Shape input() const { return input_; }
  Shape output() const { return output_; }

  virtual std::vector<ParamSpec> param_specs() const { return {}; }
  // Fills this layer's parameter slice.
  virtual void init_params(float* /*params*/, CounterRng& /*rng*/) const {}
  virtual std::size_t scratch_floats(int /*batch*/) const { return 0; }

  // y = f(x). x: [batch, input().size()], y: [batch, output().size()].
  virtual void forward(const LayerBuffers& buf, const float* x, float* y, int batch) const = 0;
  // Given x, y = f(x) and dy = dLoss/dy, writes dx (unless dx is null: the first layer needs
  // no input gradient) and OVERWRITES this layer's parameter gradients in buf.grads.
  virtual void backward(const LayerBuffers& buf, const float* x, const float* y, const float* dy,
                        float* dx, int batch) const = 0;

  // Floating-point operations of one call. Matrix products count 2 per multiply-add;
  // element-wise work (bias, activation, pooling) counts 1 per output element.
  virtual double forward_flops(int batch) const = 0;
  virtual double backward_flops(int batch, bool need_dx) const = 0;

 private:
  Shape input_;
  Shape output_;
};

// y = x W^T + b. W: [out, in], b: [out]. He-normal or Xavier-uniform weights, zero bias.
class Dense final : public Layer {
 public:
  Dense(int in, int out, InitKind init);
  std::string kind() const override { return "dense"; }
  std::vector<ParamSpec> param_specs() const override;
  void init_params(float* params, CounterRng& rng) const override;
  void forward(const LayerBuffers& buf, const float* x, float* y, int batch) const override;
  void backward(const LayerBuffers& buf, const float* x, const float* y, const float* dy, float* dx,
                int batch) const override;
  double forward_flops(int batch) const override;
  double backward_flops(int batch, bool need_dx) const override;

 private:
  int in_;
  int out_;
  InitKind init_;
};

class Relu final : public Layer {
 public:
  explicit Relu(Shape shape) : Layer(shape, shape) {}
  std::string kind() const override { return "relu"; }
  void forward(const LayerBuffers& buf, const float* x, float* y, int batch) const override;
  void backward(const LayerBuffers& buf, const float* x, const float* y, const float* dy, float* dx,
                int batch) const override;
  double forward_flops(int batch) const override;
  double backward_flops(int batch, bool need_dx) const override;
};

class Tanh final : public Layer {
 public:
  explicit Tanh(Shape shape) : Layer(shape, shape) {}
  std::string kind() const override { return "tanh"; }
  void forward(const LayerBuffers& buf, const float* x, float* y, int batch) const override;
  void backward(const LayerBuffers& buf, const float* x, const float* y, const float* dy, float* dx,
                int batch) const override;
  double forward_flops(int batch) const override;
  double backward_flops(int batch, bool need_dx) const override;
};

// Stride-1 convolution with zero "same" padding (k odd): [C,H,W] -> [OC,H,W].
// W: [OC, C*k*k] (the im2col layout), b: [OC]. im2col + sgemm per sample.
class Conv2d final : public Layer {
 public:
  Conv2d(Shape input, int out_channels, int kernel, InitKind init);
  std::string kind() const override { return "conv2d"; }
  int kernel() const { return kernel_; }
  InitKind init() const { return init_; }
  std::vector<ParamSpec> param_specs() const override;
  void init_params(float* params, CounterRng& rng) const override;
  std::size_t scratch_floats(int batch) const override;
  void forward(const LayerBuffers& buf, const float* x, float* y, int batch) const override;
  void backward(const LayerBuffers& buf, const float* x, const float* y, const float* dy, float* dx,
                int batch) const override;
  double forward_flops(int batch) const override;
  double backward_flops(int batch, bool need_dx) const override;

 private:
  int out_channels_;
  int kernel_;
  int pad_;
  InitKind init_;
};

// 2x2 max-pooling with stride 2: [C,H,W] -> [C,H/2,W/2] (an odd last row/column is dropped).
// The gradient goes to the first maximum of each window, in row-major order.
class MaxPool2d final : public Layer {
 public:
  explicit MaxPool2d(Shape input);
  std::string kind() const override { return "maxpool2d"; }
  void forward(const LayerBuffers& buf, const float* x, float* y, int batch) const override;
  void backward(const LayerBuffers& buf, const float* x, const float* y, const float* dy, float* dx,
                int batch) const override;
  double forward_flops(int batch) const override;
  double backward_flops(int batch, bool need_dx) const override;
};

// Naive reference versions of the BLAS-backed layers, for tests: same contract, plain loops.
void dense_forward_reference(int in, int out, const float* params, const float* x, float* y,
                             int batch);
void conv2d_forward_reference(Shape input, int out_channels, int kernel, const float* params,
                              const float* x, float* y, int batch);

}  // namespace dtsim
