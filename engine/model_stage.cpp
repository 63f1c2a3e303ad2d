#include "engine/model_stage.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace dtsim {
namespace {

bool is_weight_layer(const Layer& l) { return !l.param_specs().empty(); }

}  // namespace

ModelStage::ModelStage(const Model& model, std::size_t first, std::size_t last)
    : model_(model), first_(first), last_(last) {
  if (first >= last || last > model.layers().size()) {
    throw std::invalid_argument("ModelStage: an empty or out-of-range layer range");
  }
  param_begin_ = model.layer_offset(first);
  param_end_ = last == model.layers().size() ? model.num_params() : model.layer_offset(last);
}

int ModelStage::input_features() const { return model_.layers()[first_]->input().size(); }
int ModelStage::output_features() const { return model_.layers()[last_ - 1]->output().size(); }

double ModelStage::forward_flops(int batch) const {
  double flops = 0;
  for (std::size_t i = first_; i < last_; ++i) flops += model_.layers()[i]->forward_flops(batch);
  if (is_last()) flops += 4.0 * batch * model_.outputs();  // the loss and its gradient
  return flops;
}

double ModelStage::backward_flops(int batch) const {
  double flops = 0;
  for (std::size_t i = first_; i < last_; ++i) {
    flops += model_.layers()[i]->backward_flops(batch, i > 0);
  }
  return flops;
}

std::size_t ModelStage::activation_floats(int batch) const {
  std::size_t floats = static_cast<std::size_t>(input_features());
  for (std::size_t i = first_; i < last_; ++i) {
    floats += static_cast<std::size_t>(model_.layers()[i]->output().size());
  }
  return floats * static_cast<std::size_t>(batch);
}

StageSlot ModelStage::make_slot(int max_batch) const {
  StageSlot slot;
  for (std::size_t i = first_; i < last_; ++i) {
    slot.acts.emplace_back(static_cast<std::size_t>(max_batch) *
                           static_cast<std::size_t>(model_.layers()[i]->output().size()));
  }
  return slot;
}

ModelStage::Workspace ModelStage::make_workspace(int max_batch) const {
  Workspace ws;
  std::size_t widest = static_cast<std::size_t>(input_features());
  std::size_t scratch = 0;
  for (std::size_t i = first_; i < last_; ++i) {
    widest = std::max(widest, static_cast<std::size_t>(model_.layers()[i]->output().size()));
    scratch = std::max(scratch, model_.layers()[i]->scratch_floats(max_batch));
  }
  ws.scratch.resize(scratch);
  ws.grad_a.resize(widest * static_cast<std::size_t>(max_batch));
  ws.grad_b.resize(widest * static_cast<std::size_t>(max_batch));
  ws.grads.resize(num_params());
  return ws;
}

const float* ModelStage::forward(std::span<const float> params, const float* x, int batch,
                                 StageSlot& slot, Workspace& ws) const {
  const float* in = x;
  for (std::size_t i = first_; i < last_; ++i) {
    const LayerBuffers buf{params.data() + (model_.layer_offset(i) - param_begin_), nullptr,
                           ws.scratch.data()};
    float* out = slot.acts[i - first_].data();
    model_.layers()[i]->forward(buf, in, out, batch);
    in = out;
  }
  return in;
}

void ModelStage::backward(std::span<const float> params, const float* x, const StageSlot& slot,
                          const float* dy, float* dx, std::span<float> grads, int batch,
                          Workspace& ws) const {
  const float* cur_dy = dy;
  float* spare[2] = {ws.grad_a.data(), ws.grad_b.data()};
  int next = 0;
  for (std::size_t i = last_; i-- > first_;) {
    const std::size_t local = model_.layer_offset(i) - param_begin_;
    const LayerBuffers buf{params.data() + local, ws.grads.data() + local, ws.scratch.data()};
    const float* in = i == first_ ? x : slot.acts[i - 1 - first_].data();
    float* target = i == 0 ? nullptr : (i == first_ ? dx : spare[next]);
    model_.layers()[i]->backward(buf, in, slot.acts[i - first_].data(), cur_dy, target, batch);
    cur_dy = target;
    next ^= 1;
  }
  for (std::size_t k = 0; k < grads.size(); ++k) grads[k] += ws.grads[k];
}

int model_blocks(const Model& model) {
  int blocks = 0;
  for (const auto& layer : model.layers()) blocks += is_weight_layer(*layer) ? 1 : 0;
  return blocks;
}

std::vector<std::pair<std::size_t, std::size_t>> stage_layer_ranges(
    const Model& model, const std::vector<int>& blocks_per_stage) {
  // Where each block starts; a block runs to the next weight layer.
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < model.layers().size(); ++i) {
    if (is_weight_layer(*model.layers()[i])) starts.push_back(i);
  }
  starts.push_back(model.layers().size());
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::size_t block = 0;
  for (const int count : blocks_per_stage) {
    const std::size_t first = block == 0 ? 0 : starts[block];
    block += static_cast<std::size_t>(count);
    if (count < 1 || block >= starts.size()) {
      throw std::invalid_argument("stage_layer_ranges: blocks do not add up to the model's");
    }
    ranges.emplace_back(first, starts[block]);
  }
  if (block + 1 != starts.size()) {
    throw std::invalid_argument("stage_layer_ranges: blocks do not add up to the model's");
  }
  return ranges;
}

std::vector<int> balanced_stages(const Model& model, int stages, int batch) {
  // Each block's forward + backward FLOPs, then the contiguous split that minimises the
  // largest stage (dynamic programming over (blocks used, stages used)).
  const int n = model_blocks(model);
  std::vector<int> ones(static_cast<std::size_t>(n), 1);
  std::vector<double> cost;
  for (const auto& [first, last] : stage_layer_ranges(model, ones)) {
    const ModelStage stage(model, first, last);
    cost.push_back(stage.forward_flops(batch) + stage.backward_flops(batch));
  }
  std::vector<double> prefix(static_cast<std::size_t>(n) + 1, 0.0);
  for (int i = 0; i < n; ++i) prefix[static_cast<std::size_t>(i) + 1] = prefix[i] + cost[i];
  const double inf = std::numeric_limits<double>::infinity();
  // best[s][i]: the smallest largest stage for the first i blocks in s stages; cut: where the
  // last of them starts.
  std::vector<std::vector<double>> best(static_cast<std::size_t>(stages) + 1,
                                        std::vector<double>(static_cast<std::size_t>(n) + 1, inf));
  std::vector<std::vector<int>> cut(best.size(), std::vector<int>(best[0].size(), 0));
  best[0][0] = 0;
  for (int s = 1; s <= stages; ++s) {
    for (int i = s; i <= n; ++i) {
      for (int j = s - 1; j < i; ++j) {
        const double v = std::max(best[s - 1][j], prefix[i] - prefix[j]);
        if (v < best[s][i]) {
          best[s][i] = v;
          cut[s][i] = j;
        }
      }
    }
  }
  std::vector<int> counts(static_cast<std::size_t>(stages));
  for (int s = stages, i = n; s > 0; --s) {
    const int j = cut[s][i];
    counts[static_cast<std::size_t>(s) - 1] = i - j;
    i = j;
  }
  return counts;
}

}  // namespace dtsim
