// A feed-forward network built from the scenario's [model]: its layers, its flat parameter
// layout, gradient and evaluation, and its FLOP counts.
//
// A Model is immutable after construction and holds no buffers: parameters, gradients and
// activations are passed in. Any number of threads may call gradient()/evaluate() on one
// Model at once, each with its own Workspace. This is what lets the simulator run many
// workers' jobs side by side on one shared model description.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/data/dataset.hpp"
#include "engine/layers.hpp"
#include "engine/names.hpp"
#include "engine/param_layout.hpp"

namespace dtsim {

enum class ModelKind { kMlp, kCnn, kSoftmax };
enum class Activation { kRelu, kTanh };

inline NameTable<ModelKind> model_names() {
  static constexpr Named<ModelKind> kNames[] = {
      {"mlp", ModelKind::kMlp},
      {"cnn", ModelKind::kCnn},
      {"softmax", ModelKind::kSoftmax},
  };
  return kNames;
}
inline NameTable<Activation> activation_names() {
  static constexpr Named<Activation> kNames[] = {
      {"relu", Activation::kRelu},
      {"tanh", Activation::kTanh},
  };
  return kNames;
}
inline const char* to_string(ModelKind kind) { return name_of(model_names(), kind); }
inline const char* to_string(Activation kind) { return name_of(activation_names(), kind); }

struct ModelConfig {
  ModelKind kind = ModelKind::kMlp;
  std::vector<int> hidden = {256, 128};  // mlp: hidden widths; cnn: dense widths after the convs
  Activation activation = Activation::kRelu;
  std::vector<int> channels = {16, 32};  // cnn: output channels of each conv + 2x2 max-pool block
  int kernel = 5;                        // cnn: odd square kernel, "same" padding
};

// One batch, contiguous: x is [size, features]; labels (classification) or targets
// (regression, [size, outputs]) as the network's task requires.
struct Batch {
  const float* x = nullptr;
  const std::int32_t* labels = nullptr;
  const float* targets = nullptr;
  int size = 0;
};

struct EvalResult {
  double loss = 0;      // mean over the samples
  double accuracy = 0;  // classification: share of argmax == label; regression: NaN
  std::size_t samples = 0;
};

class Workspace;

class Model {
 public:
  // Throws InputError (key "model.*") for shapes that cannot be built, e.g. a cnn on data
  // that is not an image, or a zero width.
  Model(const ModelConfig& config, Shape input, LearningTask task, int outputs);

  const ParamLayout& layout() const { return layout_; }
  std::size_t num_params() const { return layout_.size(); }
  Shape input_shape() const { return input_; }
  int outputs() const { return outputs_; }
  LearningTask task() const { return task_; }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  // Where layer i's parameters start in the flat buffer.
  std::size_t layer_offset(std::size_t i) const { return offsets_[i]; }
  // The loss of a batch's outputs `out` ([batch, outputs()]) under the model's task (softmax
  // cross-entropy or half squared error), and its gradient into dy (unless null).
  double loss(const float* out, const Batch& batch, float* dy) const;
  // e.g. "mlp 784-256-128-10 relu (235146 parameters)".
  std::string summary() const;
  // Where a non-finite value first shows after a forward pass of `batch` samples in `ws`: the
  // first parameter tensor holding one ("the parameters of dense2.weight"), else the first
  // layer whose output does ("the output of layer 3 of 6 (dense)"), else "the loss".
  std::string locate_non_finite(std::span<const float> params, const Workspace& ws,
                                int batch) const;

  // He/Xavier initial parameters from the counter-based RNG keyed by `seed`.
  std::vector<float> init_params(std::uint64_t seed) const;

  // Mean loss of `batch`; writes (overwrites) its gradient with respect to `params` into
  // `grads`. Both spans have num_params() floats; batch.size <= ws.max_batch().
  double gradient(std::span<const float> params, const Batch& batch, std::span<float> grads,
                  Workspace& ws) const;

  // Loss and accuracy over every sample of `data`, in chunks of ws.max_batch().
  EvalResult evaluate(std::span<const float> params, const Dataset& data, Workspace& ws) const;
  // The sums behind evaluate() over samples [begin, end) (at most ws.max_batch() of them):
  // {sum of losses, correct predictions}. Splitting a dataset into chunks of ws.max_batch()
  // and adding their sums in order gives exactly evaluate()'s result, so chunks can be
  // evaluated in parallel without changing it.
  std::pair<double, std::size_t> evaluate_chunk(std::span<const float> params, const Dataset& data,
                                                std::size_t begin, std::size_t end,
                                                Workspace& ws) const;

  // FLOPs of one forward pass, and of one backward pass (no input gradient for the first
  // layer), for a batch; the loss and its gradient count 4 per output element.
  double forward_flops(int batch) const;
  double backward_flops(int batch) const;

 private:
  const float* forward(std::span<const float> params, const float* x, int batch,
                       Workspace& ws) const;

  ModelConfig config_;
  Shape input_;
  LearningTask task_;
  int outputs_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::size_t> offsets_;  // offset of each layer's parameters in the flat buffer
  ParamLayout layout_;
};

// Activation and scratch memory for one thread using a Model with batches of at most
// max_batch samples. Allocated once; gradient() and evaluate() allocate nothing.
class Workspace {
 public:
  Workspace(const Model& net, int max_batch);

  int max_batch() const { return max_batch_; }
  // A [max_batch, features] buffer (and matching labels/targets) to gather a batch into.
  float* input() { return input_.data(); }
  std::int32_t* labels() { return labels_.data(); }
  float* targets() { return targets_.data(); }

 private:
  friend class Model;
  int max_batch_;
  std::vector<std::vector<float>> acts_;  // output of each layer
  std::vector<float> grad_a_;             // dLoss/d(activation), ping-pong pair
  std::vector<float> grad_b_;
  std::vector<float> scratch_;
  std::vector<float> input_;
  std::vector<std::int32_t> labels_;
  std::vector<float> targets_;
};

// Copies the samples `rows` of `data` into ws's input buffers and returns them as a Batch.
Batch gather_batch(const Dataset& data, std::span<const std::uint32_t> rows, Workspace& ws);

}  // namespace dtsim
