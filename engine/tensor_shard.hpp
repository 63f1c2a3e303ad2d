// One rank's share of a Model split over t ranks (tensor parallelism), with its forward and
// backward passes cut at the points where the ranks must communicate.
//
// Plans:
//   kMegatron  (Shoeybi et al. 2019) weight layers are split in turn: a dense layer whose
//              input is whole is column-split (its output features divided among the ranks;
//              no communication), one whose input is split is row-split (each rank multiplies
//              its slice of the input; the partial outputs are all-reduced, the bias added once,
//              by rank 0). So consecutive dense layers pair up as column then row, Megatron's
//              MLP block. Convolutions are split by output channels, their input all-gathered
//              first when it is split. Activations and pooling act on the rank's slice. A
//              split output at the end is all-gathered for the loss, which every rank computes.
//              Backward runs the conjugates: a column-split layer's input gradient is
//              all-reduced (except for the model's first layer, which needs none), a row-split
//              layer's stays split, and the gradient of a gathered tensor is sliced.
//              Every split width must be divisible by t.
//   kFeatures  the input's features are split among the ranks (data.partition = "columns"):
//              the first layer, dense, is row-split over the rank's features and its partial
//              pre-activations all-reduced; every other layer is computed whole by every rank.
//              Feature slices may differ by one.
//
// A shard is immutable after construction and holds no buffers: each rank has its own
// ShardWorkspace. Run a pass as parts: part k computes, then its communication (if any) runs
// on the buffer comm_buffer(k), in place, among the t ranks; then part k + 1.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "engine/model.hpp"

namespace dtsim {

enum class ShardPlan { kMegatron, kFeatures };
enum class ShardComm { kNone, kAllreduce, kAllgather };

struct ShardWorkspace {
  std::vector<float> input;                  // the rank's input features of the batch
  std::vector<std::vector<float>> acts;      // each layer's output (as the rank holds it)
  std::vector<std::vector<float>> gathered;  // a gathered layer input, for its backward
  std::vector<float> comm;                   // all-gather buffer: t blocks of [batch, slice]
  std::vector<float> grad_a;                 // input gradients, ping-pong
  std::vector<float> grad_b;
  std::vector<float> scratch;
  double loss = 0;
};

class TensorShard {
 public:
  // A run of layers, then one communication (or none).
  struct Part {
    std::vector<std::size_t> steps;  // the layers it computes, in pass order
    ShardComm comm = ShardComm::kNone;
    std::size_t comm_step = 0;  // whose tensor it moves (see the .cpp)
    bool unpack_first = false;  // forward: it starts from a gathered input
    int gather_slot = -1;       // ... kept in ShardWorkspace::gathered[gather_slot]
    bool loss = false;          // forward: it ends with the loss
  };

  // Rank `rank` of `shards`. Throws InputError (key strategy.tensor_parallel) when a width
  // that must be split is not divisible by `shards`, and for a plan the model cannot take.
  TensorShard(const Model& model, ShardPlan plan, int shards, int rank);
  TensorShard(TensorShard&&) noexcept;
  ~TensorShard();

  int rank() const { return rank_; }
  int shards() const { return shards_; }
  std::size_t num_params() const { return params_; }
  // The rank's input features: [begin, end) of the model's input.
  std::pair<int, int> input_features() const { return {in_begin_, in_end_}; }
  // The rank's parameters out of the model's full buffer, and back: place() writes what this
  // rank owns into `full` (a row-split layer's bias is rank 0's).
  void extract(std::span<const float> full, std::span<float> shard) const;
  void place(std::span<const float> shard, std::span<float> full) const;

  ShardWorkspace make_workspace(int max_batch) const;

  // ---- a pass in parts ----
  int forward_parts() const { return static_cast<int>(forward_.size()); }
  int backward_parts() const { return static_cast<int>(backward_.size()); }
  ShardComm forward_comm(int k) const { return forward_[static_cast<std::size_t>(k)].comm; }
  ShardComm backward_comm(int k) const { return backward_[static_cast<std::size_t>(k)].comm; }
  double forward_flops(int k, int batch) const;
  double backward_flops(int k, int batch) const;
  // Floats part k's communication moves for a batch (the whole buffer, all ranks' blocks).
  std::size_t forward_comm_floats(int k, int batch) const;
  std::size_t backward_comm_floats(int k, int batch) const;
  // The buffer of part k's communication, after that part ran.
  std::span<float> forward_comm_buffer(int k, int batch, ShardWorkspace& ws) const;
  std::span<float> backward_comm_buffer(int k, int batch, ShardWorkspace& ws) const;

  // Forward part k on the batch (ws.input holds the rank's features; `batch` gives the labels
  // or targets for the loss, computed in the last part into ws.loss).
  void forward(int k, std::span<const float> params, const Batch& batch, ShardWorkspace& ws) const;
  // Backward part k; adds nothing: OVERWRITES the rank's gradient `grads` over the pass (the
  // first part clears it).
  void backward(int k, std::span<const float> params, int batch, std::span<float> grads,
                ShardWorkspace& ws) const;

  struct Step;

 private:
  void plan_megatron();
  void plan_features();
  void add_step_params(Step& step);
  void cut_parts();
  const Layer& layer_of(const Step& step) const;
  const float* input_of(std::size_t i, const ShardWorkspace& ws) const;
  float* grad_buffer(std::size_t i, ShardWorkspace& ws) const;
  // Before step i's backward: whether the gradient it gets is of a gathered tensor (then the
  // rank keeps its slice), and that slice's width.
  int sliced_width(std::size_t i) const;

  const Model& model_;
  int shards_;
  int rank_;
  int in_begin_ = 0;
  int in_end_ = 0;
  std::size_t params_ = 0;
  bool final_gather_ = false;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<Part> forward_;
  std::vector<Part> backward_;
};

// The total FLOPs of a pass, for predictions.
double shard_forward_flops(const TensorShard& s, int batch);
double shard_backward_flops(const TensorShard& s, int batch);

}  // namespace dtsim
