#include "engine/tensor_shard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "engine/errors.hpp"

namespace dtsim {

// One layer as this rank holds it.
struct TensorShard::Step {
  enum Split { kWhole, kColumns, kRows };
  std::unique_ptr<Layer> layer;  // the rank's layer, with its shapes
  const Layer* full = nullptr;   // the model's
  std::size_t model_layer = 0;
  Split split = kWhole;
  bool gather_before = false;  // its (split) input is all-gathered first
  bool reduce_after = false;   // its (partial) output is all-reduced
  std::size_t offset = 0;      // of its parameters in the rank's buffer
  std::size_t size = 0;
  int slice_begin = 0;  // columns: its output rows; rows: its input columns
  int slice_end = 0;
  int gather_slot = -1;  // where its gathered input lives
  int in_local = 0;      // features per sample of its input, as the rank holds it
  int out_local = 0;     // ... of its output
};

namespace {

using Step = TensorShard::Step;

bool is_dense(const Layer& l) { return l.kind() == "dense"; }
bool is_conv(const Layer& l) { return l.kind() == "conv2d"; }

void require_divisible(int width, int shards, const char* what) {
  if (width % shards != 0) {
    throw InputError({}, "strategy.tensor_parallel",
                     fmt::format("{} of {} cannot be split {} ways: use a tensor_parallel that "
                                 "divides it",
                                 what, width, shards));
  }
}

}  // namespace

TensorShard::TensorShard(const Model& model, ShardPlan plan, int shards, int rank)
    : model_(model), shards_(shards), rank_(rank) {
  in_end_ = model.input_shape().size();
  if (plan == ShardPlan::kMegatron) {
    plan_megatron();
  } else {
    plan_features();
  }
  cut_parts();
}

TensorShard::TensorShard(TensorShard&&) noexcept = default;
TensorShard::~TensorShard() = default;

void TensorShard::plan_megatron() {
  const int t = shards_;
  bool split = false;  // whether the rank holds a slice of the current tensor
  Shape shape = model_.input_shape();
  int gathers = 0;
  for (std::size_t i = 0; i < model_.layers().size(); ++i) {
    const Layer& l = *model_.layers()[i];
    auto step = std::make_unique<Step>();
    step->full = &l;
    step->model_layer = i;
    if (is_dense(l)) {
      const int in = l.input().size();
      const int out = l.output().size();
      if (!split) {
        require_divisible(out, t, "a dense layer's width");
        step->split = Step::kColumns;
        step->slice_begin = rank_ * (out / t);
        step->slice_end = step->slice_begin + out / t;
        step->layer = std::make_unique<Dense>(in, out / t, InitKind::kHe);
        step->in_local = in;
        step->out_local = out / t;
        split = true;
      } else {
        step->split = Step::kRows;
        step->slice_begin = rank_ * (in / t);
        step->slice_end = step->slice_begin + in / t;
        step->layer = std::make_unique<Dense>(in / t, out, InitKind::kHe);
        step->reduce_after = true;
        step->in_local = in / t;
        step->out_local = out;
        split = false;
      }
      shape = {1, 1, step->out_local};
    } else if (is_conv(l)) {
      const auto& conv = static_cast<const Conv2d&>(l);
      const int oc = l.output().channels;
      require_divisible(oc, t, "a convolution's output channels");
      if (split) {
        step->gather_before = true;
        step->gather_slot = gathers++;
      }
      step->split = Step::kColumns;
      step->slice_begin = rank_ * (oc / t);
      step->slice_end = step->slice_begin + oc / t;
      step->layer = std::make_unique<Conv2d>(l.input(), oc / t, conv.kernel(), conv.init());
      step->in_local = l.input().size();
      shape = step->layer->output();
      step->out_local = shape.size();
      split = true;
    } else {
      // Activations and pooling act on what the rank holds.
      const Shape in = split ? shape : l.input();
      if (l.kind() == "relu") step->layer = std::make_unique<Relu>(in);
      if (l.kind() == "tanh") step->layer = std::make_unique<Tanh>(in);
      if (l.kind() == "maxpool2d") step->layer = std::make_unique<MaxPool2d>(in);
      step->in_local = in.size();
      shape = step->layer->output();
      step->out_local = shape.size();
    }
    add_step_params(*step);
    steps_.push_back(std::move(step));
  }
  if (split) {
    require_divisible(model_.outputs(), t, "the model's outputs");
    final_gather_ = true;
  }
}

void TensorShard::plan_features() {
  const Layer& first = *model_.layers()[0];
  if (!is_dense(first)) {
    throw InputError({}, "data.partition",
                     "columns split the input's features: the first layer must be dense (an "
                     "mlp or softmax model), not a convolution");
  }
  const int features = first.input().size();
  if (shards_ > features) {
    throw InputError({}, "strategy.tensor_parallel",
                     fmt::format("{} column groups for {} features: use at most {}", shards_,
                                 features, features));
  }
  // Contiguous feature ranges, sizes differing by at most one.
  const int base = features / shards_;
  const int extra = features % shards_;
  in_begin_ = rank_ * base + std::min(rank_, extra);
  in_end_ = in_begin_ + base + (rank_ < extra ? 1 : 0);
  for (std::size_t i = 0; i < model_.layers().size(); ++i) {
    const Layer& l = *model_.layers()[i];
    auto step = std::make_unique<Step>();
    step->full = &l;
    step->model_layer = i;
    step->in_local = l.input().size();
    step->out_local = l.output().size();
    if (i == 0) {
      step->split = Step::kRows;
      step->slice_begin = in_begin_;
      step->slice_end = in_end_;
      step->layer = std::make_unique<Dense>(in_end_ - in_begin_, l.output().size(), InitKind::kHe);
      step->reduce_after = true;
      step->in_local = in_end_ - in_begin_;
    }
    add_step_params(*step);
    steps_.push_back(std::move(step));
  }
}

void TensorShard::add_step_params(Step& step) {
  const Layer& l = step.layer ? *step.layer : *step.full;
  std::size_t size = 0;
  for (const ParamSpec& spec : l.param_specs()) {
    std::size_t n = 1;
    for (int d : spec.shape) n *= static_cast<std::size_t>(d);
    size += n;
  }
  step.offset = params_;
  step.size = size;
  params_ += size;
}

void TensorShard::cut_parts() {
  const std::size_t n = steps_.size();
  int gathers = 0;
  for (const auto& st : steps_) gathers += st->gather_before ? 1 : 0;
  Part cur;
  for (std::size_t i = 0; i < n; ++i) {
    const Step& st = *steps_[i];
    if (st.gather_before) {
      cur.comm = ShardComm::kAllgather;
      cur.comm_step = i - 1;
      forward_.push_back(std::move(cur));
      cur = Part{};
      cur.unpack_first = true;
      cur.gather_slot = st.gather_slot;
    }
    cur.steps.push_back(i);
    if (st.reduce_after) {
      cur.comm = ShardComm::kAllreduce;
      cur.comm_step = i;
      forward_.push_back(std::move(cur));
      cur = Part{};
    }
  }
  if (final_gather_) {
    cur.comm = ShardComm::kAllgather;
    cur.comm_step = n - 1;
    forward_.push_back(std::move(cur));
    cur = Part{};
    cur.unpack_first = true;
    cur.gather_slot = gathers;
  }
  cur.loss = true;
  forward_.push_back(std::move(cur));

  cur = Part{};
  for (std::size_t i = n; i-- > 0;) {
    cur.steps.push_back(i);
    if (steps_[i]->split == Step::kColumns && i > 0) {
      cur.comm = ShardComm::kAllreduce;
      cur.comm_step = i;
      backward_.push_back(std::move(cur));
      cur = Part{};
    }
  }
  if (!cur.steps.empty()) backward_.push_back(std::move(cur));
}

const Layer& TensorShard::layer_of(const Step& step) const {
  return step.layer ? *step.layer : *step.full;
}

const float* TensorShard::input_of(std::size_t i, const ShardWorkspace& ws) const {
  const Step& st = *steps_[i];
  if (st.gather_before) return ws.gathered[static_cast<std::size_t>(st.gather_slot)].data();
  return i == 0 ? ws.input.data() : ws.acts[i - 1].data();
}

// Step i's backward reads buffer (i + 1) % 2 and writes its input gradient into i % 2; the
// loss writes the gradient of the output into n % 2.
float* TensorShard::grad_buffer(std::size_t i, ShardWorkspace& ws) const {
  return i % 2 == 0 ? ws.grad_a.data() : ws.grad_b.data();
}

int TensorShard::sliced_width(std::size_t i) const {
  const std::size_t n = steps_.size();
  if (i + 1 == n) return final_gather_ ? steps_[i]->out_local : 0;
  return steps_[i + 1]->gather_before ? steps_[i]->out_local : 0;
}

void TensorShard::extract(std::span<const float> full, std::span<float> shard) const {
  for (const auto& st : steps_) {
    if (st->size == 0) continue;
    const float* src = full.data() + model_.layer_offset(st->model_layer);
    float* dst = shard.data() + st->offset;
    const Layer& whole = *st->full;
    if (st->split == Step::kWhole) {
      std::copy(src, src + st->size, dst);
    } else if (st->split == Step::kColumns) {
      // Weight rows [begin, end) ([rows, row_size]), then the bias's [begin, end).
      const std::size_t rows = static_cast<std::size_t>(is_conv(whole) ? whole.output().channels
                                                                       : whole.output().size());
      const std::size_t weights =
          st->size - static_cast<std::size_t>(st->slice_end - st->slice_begin);
      const std::size_t row = weights / static_cast<std::size_t>(st->slice_end - st->slice_begin);
      std::copy(src + st->slice_begin * row, src + st->slice_end * row, dst);
      std::copy(src + rows * row + st->slice_begin, src + rows * row + st->slice_end,
                dst + weights);
    } else {
      // Columns [begin, end) of each weight row, then the bias (rank 0's; zeros elsewhere).
      const auto in = static_cast<std::size_t>(whole.input().size());
      const auto out = static_cast<std::size_t>(whole.output().size());
      const auto width = static_cast<std::size_t>(st->slice_end - st->slice_begin);
      for (std::size_t o = 0; o < out; ++o) {
        std::copy(src + o * in + st->slice_begin, src + o * in + st->slice_end, dst + o * width);
      }
      for (std::size_t o = 0; o < out; ++o)
        dst[out * width + o] = rank_ == 0 ? src[out * in + o] : 0.0f;
    }
  }
}

void TensorShard::place(std::span<const float> shard, std::span<float> full) const {
  for (const auto& st : steps_) {
    if (st->size == 0) continue;
    float* dst = full.data() + model_.layer_offset(st->model_layer);
    const float* src = shard.data() + st->offset;
    const Layer& whole = *st->full;
    if (st->split == Step::kWhole) {
      std::copy(src, src + st->size, dst);
    } else if (st->split == Step::kColumns) {
      const std::size_t rows = static_cast<std::size_t>(is_conv(whole) ? whole.output().channels
                                                                       : whole.output().size());
      const std::size_t weights =
          st->size - static_cast<std::size_t>(st->slice_end - st->slice_begin);
      const std::size_t row = weights / static_cast<std::size_t>(st->slice_end - st->slice_begin);
      std::copy(src, src + weights, dst + st->slice_begin * row);
      std::copy(src + weights, src + st->size, dst + rows * row + st->slice_begin);
    } else {
      const auto in = static_cast<std::size_t>(whole.input().size());
      const auto out = static_cast<std::size_t>(whole.output().size());
      const auto width = static_cast<std::size_t>(st->slice_end - st->slice_begin);
      for (std::size_t o = 0; o < out; ++o) {
        std::copy(src + o * width, src + (o + 1) * width, dst + o * in + st->slice_begin);
      }
      if (rank_ == 0) std::copy(src + out * width, src + out * width + out, dst + out * in);
    }
  }
}

ShardWorkspace TensorShard::make_workspace(int max_batch) const {
  const auto mb = static_cast<std::size_t>(max_batch);
  ShardWorkspace ws;
  ws.input.resize(mb * static_cast<std::size_t>(steps_[0]->in_local));
  std::size_t widest = static_cast<std::size_t>(model_.input_shape().size());
  std::size_t scratch = 0;
  for (const auto& st : steps_) {
    ws.acts.emplace_back(mb * static_cast<std::size_t>(st->out_local));
    widest = std::max(widest, static_cast<std::size_t>(st->full->output().size()));
    scratch = std::max(scratch, layer_of(*st).scratch_floats(max_batch));
    if (st->gather_before) {
      ws.gathered.emplace_back(mb * static_cast<std::size_t>(st->full->input().size()));
    }
  }
  if (final_gather_) ws.gathered.emplace_back(mb * static_cast<std::size_t>(model_.outputs()));
  ws.comm.resize(mb * widest);
  ws.grad_a.resize(mb * widest);
  ws.grad_b.resize(mb * widest);
  ws.scratch.resize(scratch);
  return ws;
}

double TensorShard::forward_flops(int k, int batch) const {
  const Part& part = forward_[static_cast<std::size_t>(k)];
  double flops = part.loss ? 4.0 * batch * model_.outputs() : 0.0;
  for (std::size_t i : part.steps) flops += layer_of(*steps_[i]).forward_flops(batch);
  return flops;
}

double TensorShard::backward_flops(int k, int batch) const {
  double flops = 0;
  for (std::size_t i : backward_[static_cast<std::size_t>(k)].steps) {
    flops += layer_of(*steps_[i]).backward_flops(batch, i > 0);
  }
  return flops;
}

std::size_t TensorShard::forward_comm_floats(int k, int batch) const {
  const Part& part = forward_[static_cast<std::size_t>(k)];
  const Step& st = *steps_[part.comm_step];
  const auto b = static_cast<std::size_t>(batch);
  switch (part.comm) {
    case ShardComm::kAllreduce:
      return b * static_cast<std::size_t>(st.out_local);
    case ShardComm::kAllgather:
      return b * static_cast<std::size_t>(st.out_local) * static_cast<std::size_t>(shards_);
    case ShardComm::kNone:
      break;
  }
  return 0;
}

std::size_t TensorShard::backward_comm_floats(int k, int batch) const {
  const Part& part = backward_[static_cast<std::size_t>(k)];
  if (part.comm == ShardComm::kNone) return 0;
  return static_cast<std::size_t>(batch) *
         static_cast<std::size_t>(steps_[part.comm_step]->full->input().size());
}

std::span<float> TensorShard::forward_comm_buffer(int k, int batch, ShardWorkspace& ws) const {
  const Part& part = forward_[static_cast<std::size_t>(k)];
  const std::size_t n = forward_comm_floats(k, batch);
  if (part.comm == ShardComm::kAllreduce) return {ws.acts[part.comm_step].data(), n};
  return {ws.comm.data(), n};
}

std::span<float> TensorShard::backward_comm_buffer(int k, int batch, ShardWorkspace& ws) const {
  const Part& part = backward_[static_cast<std::size_t>(k)];
  return {grad_buffer(part.comm_step, ws), backward_comm_floats(k, batch)};
}

void TensorShard::forward(int k, std::span<const float> params, const Batch& batch,
                          ShardWorkspace& ws) const {
  const Part& part = forward_[static_cast<std::size_t>(k)];
  const auto b = static_cast<std::size_t>(batch.size);
  if (part.unpack_first) {
    // The t blocks [batch, local] of the all-gather into [batch, t * local].
    const std::size_t local = static_cast<std::size_t>(
        steps_[forward_[static_cast<std::size_t>(k) - 1].comm_step]->out_local);
    const std::size_t full = local * static_cast<std::size_t>(shards_);
    float* out = ws.gathered[static_cast<std::size_t>(part.gather_slot)].data();
    for (std::size_t q = 0; q < static_cast<std::size_t>(shards_); ++q) {
      const float* block = ws.comm.data() + q * b * local;
      for (std::size_t r = 0; r < b; ++r) {
        std::memcpy(out + r * full + q * local, block + r * local, local * sizeof(float));
      }
    }
  }
  for (std::size_t i : part.steps) {
    const Step& st = *steps_[i];
    const LayerBuffers buf{params.data() + st.offset, nullptr, ws.scratch.data()};
    layer_of(st).forward(buf, input_of(i, ws), ws.acts[i].data(), batch.size);
  }
  if (part.comm == ShardComm::kAllgather) {
    // This rank's [batch, local] block goes at its place in the buffer.
    const std::size_t local = static_cast<std::size_t>(steps_[part.comm_step]->out_local);
    std::memcpy(ws.comm.data() + static_cast<std::size_t>(rank_) * b * local,
                ws.acts[part.comm_step].data(), b * local * sizeof(float));
  }
  if (part.loss) {
    const float* out = final_gather_ ? ws.gathered.back().data() : ws.acts.back().data();
    ws.loss = model_.loss(out, batch, grad_buffer(steps_.size(), ws));
  }
}

void TensorShard::backward(int k, std::span<const float> params, int batch, std::span<float> grads,
                           ShardWorkspace& ws) const {
  const auto b = static_cast<std::size_t>(batch);
  for (std::size_t i : backward_[static_cast<std::size_t>(k)].steps) {
    const Step& st = *steps_[i];
    float* dy = grad_buffer(i + 1, ws);
    if (const int local = sliced_width(i); local > 0) {
      // The gradient of a gathered tensor: keep this rank's slice of each sample, in place.
      const auto w = static_cast<std::size_t>(local);
      const std::size_t full = w * static_cast<std::size_t>(shards_);
      for (std::size_t r = 0; r < b; ++r) {
        std::memmove(dy + r * w, dy + r * full + static_cast<std::size_t>(rank_) * w,
                     w * sizeof(float));
      }
    }
    const LayerBuffers buf{params.data() + st.offset, grads.data() + st.offset, ws.scratch.data()};
    layer_of(st).backward(buf, input_of(i, ws), ws.acts[i].data(), dy,
                          i == 0 ? nullptr : grad_buffer(i, ws), batch);
    if (st.split == Step::kRows && rank_ != 0) {
      // The bias is rank 0's: the other ranks' copy stays zero.
      const std::size_t bias = static_cast<std::size_t>(st.full->output().size());
      std::fill(grads.begin() + static_cast<std::ptrdiff_t>(st.offset + st.size - bias),
                grads.begin() + static_cast<std::ptrdiff_t>(st.offset + st.size), 0.0f);
    }
  }
}

double shard_forward_flops(const TensorShard& s, int batch) {
  double flops = 0;
  for (int k = 0; k < s.forward_parts(); ++k) flops += s.forward_flops(k, batch);
  return flops;
}

double shard_backward_flops(const TensorShard& s, int batch) {
  double flops = 0;
  for (int k = 0; k < s.backward_parts(); ++k) flops += s.backward_flops(k, batch);
  return flops;
}

}  // namespace dtsim
