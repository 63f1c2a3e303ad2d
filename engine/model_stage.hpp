// A pipeline stage's part of a Model: a contiguous range of its layers, run one micro-batch at
// a time. The stage's parameters are a contiguous slice of the model's flat buffer (layers are
// laid out in order), so its optimizer works on a plain span.
//
// A micro-batch's forward keeps its activations in a StageSlot until its backward, which
// ADDS the micro-batch's parameter gradients into the stage's gradient accumulator. Summing
// the m micro-batches' gradients (in the same order) gives bit for bit what summing
// Model::gradient over the same micro-batches gives. Immutable after construction; each
// thread uses its own StageSlot and StageWorkspace.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "engine/model.hpp"

namespace dtsim {

// One micro-batch in flight: the stage's input (kept by the caller) and each layer's output.
struct StageSlot {
  std::vector<std::vector<float>> acts;
};

class ModelStage {
 public:
  // Layers [first, last) of `model`; first < last <= model.layers().size().
  ModelStage(const Model& model, std::size_t first, std::size_t last);

  bool is_first() const { return first_ == 0; }
  bool is_last() const { return last_ == model_.layers().size(); }
  std::size_t first_layer() const { return first_; }
  std::size_t last_layer() const { return last_; }
  // Its parameters: [param_offset(), param_offset() + num_params()) of the model's buffer.
  std::size_t param_offset() const { return param_begin_; }
  std::size_t num_params() const { return param_end_ - param_begin_; }
  int input_features() const;
  int output_features() const;

  // FLOPs of a micro-batch: forward (with the loss on the last stage) and backward (no input
  // gradient on the first stage).
  double forward_flops(int batch) const;
  double backward_flops(int batch) const;
  // Floats a micro-batch keeps from its forward to its backward: its input and every
  // layer's output.
  std::size_t activation_floats(int batch) const;

  // A slot for micro-batches of at most `max_batch` samples.
  StageSlot make_slot(int max_batch) const;
  // Scratch for forward and backward: layer scratch, two input-gradient buffers, and the
  // gradient of one micro-batch.
  struct Workspace {
    std::vector<float> scratch;
    std::vector<float> grad_a;
    std::vector<float> grad_b;
    std::vector<float> grads;
  };
  Workspace make_workspace(int max_batch) const;

  // Runs the micro-batch `x` ([batch, input_features()]) forward with the stage's `params`;
  // returns its output ([batch, output_features()]), which lives in `slot`.
  const float* forward(std::span<const float> params, const float* x, int batch, StageSlot& slot,
                       Workspace& ws) const;
  // Backward of the micro-batch whose forward filled `slot` from input `x`: `dy` is the loss's
  // gradient with respect to the stage's output. Adds its parameter gradients into `grads`
  // (num_params() floats) and, unless this is the first stage, writes the gradient with respect
  // to the stage's input into `dx` ([batch, input_features()]).
  void backward(std::span<const float> params, const float* x, const StageSlot& slot,
                const float* dy, float* dx, std::span<float> grads, int batch,
                Workspace& ws) const;

 private:
  const Model& model_;
  std::size_t first_;
  std::size_t last_;
  std::size_t param_begin_;
  std::size_t param_end_;
};

// Contiguous stages over the model's "blocks": a block is a weight layer (dense or conv) with
// the activation and pooling layers after it. blocks_per_stage[s] blocks go to stage s; returns
// each stage's [first, last) layer range.
std::vector<std::pair<std::size_t, std::size_t>> stage_layer_ranges(
    const Model& model, const std::vector<int>& blocks_per_stage);
// The number of blocks of the model.
int model_blocks(const Model& model);
// Blocks per stage that minimise the largest stage's forward + backward FLOPs for `batch`
// (contiguous, each stage at least one block). Precondition: 1 <= stages <= model_blocks().
std::vector<int> balanced_stages(const Model& model, int stages, int batch);

}  // namespace dtsim
