#include "engine/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/errors.hpp"
#include "engine/loss.hpp"

namespace dtsim {
namespace {

void require_positive(const std::vector<int>& widths, const char* key) {
  for (int w : widths) {
    if (w <= 0) throw InputError({}, key, fmt::format("widths must be positive, found {}", w));
  }
}

}  // namespace

Model::Model(const ModelConfig& config, Shape input, LearningTask task, int outputs)
    : config_(config), input_(input), task_(task), outputs_(outputs) {
  if (outputs <= 0) throw InputError({}, "data", "the dataset has no outputs");
  const InitKind hidden_init =
      config.activation == Activation::kRelu ? InitKind::kHe : InitKind::kXavier;
  auto add_activation = [&](Shape s) {
    if (config.activation == Activation::kRelu) {
      layers_.push_back(std::make_unique<Relu>(s));
    } else {
      layers_.push_back(std::make_unique<Tanh>(s));
    }
  };
  Shape shape = input;
  if (config.kind == ModelKind::kCnn) {
    require_positive(config.channels, "model.channels");
    if (config.kernel < 1 || config.kernel % 2 == 0) {
      throw InputError({}, "model.kernel",
                       fmt::format("expected an odd kernel size >= 1, found {}", config.kernel));
    }
    if (config.channels.empty()) {
      throw InputError({}, "model.channels", "a cnn needs at least one conv block");
    }
    const int min_side = 1 << config.channels.size();
    if (input.height < min_side || input.width < min_side) {
      throw InputError({}, "model.kind",
                       fmt::format("a cnn with {} pooling blocks needs images of at least {}x{} "
                                   "pixels, but the dataset's samples are {}x{}x{}",
                                   config.channels.size(), min_side, min_side, input.channels,
                                   input.height, input.width));
    }
    for (int oc : config.channels) {
      layers_.push_back(std::make_unique<Conv2d>(shape, oc, config.kernel, hidden_init));
      shape = layers_.back()->output();
      add_activation(shape);
      layers_.push_back(std::make_unique<MaxPool2d>(shape));
      shape = layers_.back()->output();
    }
  }
  if (config.kind != ModelKind::kSoftmax) {
    require_positive(config.hidden, "model.hidden");
    for (int width : config.hidden) {
      layers_.push_back(std::make_unique<Dense>(shape.size(), width, hidden_init));
      shape = layers_.back()->output();
      add_activation(shape);
    }
  }
  layers_.push_back(std::make_unique<Dense>(shape.size(), outputs, InitKind::kXavier));

  int dense_index = 0;
  int conv_index = 0;
  for (const auto& layer : layers_) {
    offsets_.push_back(layout_.size());
    std::string prefix;
    if (layer->kind() == "dense") prefix = fmt::format("dense{}", ++dense_index);
    if (layer->kind() == "conv2d") prefix = fmt::format("conv{}", ++conv_index);
    for (const ParamSpec& spec : layer->param_specs()) {
      layout_.add(prefix + "." + spec.name, spec.shape);
    }
  }
}

std::string Model::locate_non_finite(std::span<const float> params, const Workspace& ws,
                                     int batch) const {
  const auto finite = [](std::span<const float> v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
  };
  for (const TensorSlot& t : layout_.tensors()) {
    if (!finite(ParamLayout::view(params, t))) return fmt::format("the parameters of {}", t.name);
  }
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const auto n =
        static_cast<std::size_t>(batch) * static_cast<std::size_t>(layers_[i]->output().size());
    if (!finite(std::span<const float>(ws.acts_[i]).first(std::min(n, ws.acts_[i].size())))) {
      return fmt::format("the output of layer {} of {} ({})", i + 1, layers_.size(),
                         layers_[i]->kind());
    }
  }
  return "the loss";
}

std::string Model::summary() const {
  std::string widths = fmt::format("{}", input_.size());
  for (const auto& layer : layers_) {
    if (layer->kind() == "dense") widths += fmt::format("-{}", layer->output().size());
    if (layer->kind() == "conv2d") widths += fmt::format("-c{}", layer->output().channels);
    if (layer->kind() == "maxpool2d") widths += "-p";
  }
  const char* act = config_.activation == Activation::kRelu ? "relu" : "tanh";
  return fmt::format("{} {} {} ({} parameters)", to_string(config_.kind), widths,
                     config_.kind == ModelKind::kSoftmax ? "linear" : act, num_params());
}

std::vector<float> Model::init_params(std::uint64_t seed) const {
  std::vector<float> params(num_params());
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    CounterRng rng({seed, RngPurpose::kInit, 0, i});
    layers_[i]->init_params(params.data() + offsets_[i], rng);
  }
  return params;
}

const float* Model::forward(std::span<const float> params, const float* x, int batch,
                            Workspace& ws) const {
  const float* in = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    LayerBuffers buf{params.data() + offsets_[i], nullptr, ws.scratch_.data()};
    layers_[i]->forward(buf, in, ws.acts_[i].data(), batch);
    in = ws.acts_[i].data();
  }
  return in;
}

double Model::loss(const float* out, const Batch& batch, float* dy) const {
  return task_ == LearningTask::kClassification
             ? softmax_cross_entropy(out, batch.labels, batch.size, outputs_, dy)
             : half_squared_error(out, batch.targets, batch.size, outputs_, dy);
}

double Model::gradient(std::span<const float> params, const Batch& batch, std::span<float> grads,
                       Workspace& ws) const {
  const float* out = forward(params, batch.x, batch.size, ws);
  float* dy = ws.grad_a_.data();
  float* dx = ws.grad_b_.data();
  const double loss = this->loss(out, batch, dy);
  for (std::size_t i = layers_.size(); i-- > 0;) {
    LayerBuffers buf{params.data() + offsets_[i], grads.data() + offsets_[i], ws.scratch_.data()};
    const float* x = i == 0 ? batch.x : ws.acts_[i - 1].data();
    layers_[i]->backward(buf, x, ws.acts_[i].data(), dy, i == 0 ? nullptr : dx, batch.size);
    std::swap(dy, dx);
  }
  return loss;
}

std::pair<double, std::size_t> Model::evaluate_chunk(std::span<const float> params,
                                                     const Dataset& data, std::size_t begin,
                                                     std::size_t end, Workspace& ws) const {
  const int batch = static_cast<int>(end - begin);
  const float* out = forward(params, data.x.data() + begin * data.features, batch, ws);
  if (task_ == LearningTask::kClassification) {
    const std::int32_t* labels = data.labels.data() + begin;
    std::size_t correct = 0;
    for (int i = 0; i < batch; ++i) {
      correct += argmax(out + static_cast<std::size_t>(i) * outputs_, outputs_) == labels[i];
    }
    return {softmax_cross_entropy(out, labels, batch, outputs_, nullptr) * batch, correct};
  }
  return {
      half_squared_error(out, data.targets.data() + begin * outputs_, batch, outputs_, nullptr) *
          batch,
      0};
}

EvalResult Model::evaluate(std::span<const float> params, const Dataset& data,
                           Workspace& ws) const {
  EvalResult result;
  const std::size_t n = data.samples();
  double loss_sum = 0;
  std::size_t correct = 0;
  for (std::size_t start = 0; start < n; start += static_cast<std::size_t>(ws.max_batch())) {
    const std::size_t stop = std::min<std::size_t>(start + ws.max_batch(), n);
    const auto [loss, right] = evaluate_chunk(params, data, start, stop, ws);
    loss_sum += loss;
    correct += right;
  }
  result.samples = n;
  result.loss = n > 0 ? loss_sum / static_cast<double>(n) : 0.0;
  result.accuracy = task_ == LearningTask::kClassification && n > 0
                        ? static_cast<double>(correct) / static_cast<double>(n)
                        : std::numeric_limits<double>::quiet_NaN();
  return result;
}

double Model::forward_flops(int batch) const {
  double flops = 0;
  for (const auto& layer : layers_) flops += layer->forward_flops(batch);
  return flops + 4.0 * batch * outputs_;
}

double Model::backward_flops(int batch) const {
  double flops = 0;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    flops += layers_[i]->backward_flops(batch, i > 0);
  return flops;
}

Workspace::Workspace(const Model& net, int max_batch) : max_batch_(max_batch) {
  const auto mb = static_cast<std::size_t>(max_batch);
  std::size_t widest = static_cast<std::size_t>(net.input_shape().size());
  std::size_t scratch = 0;
  for (const auto& layer : net.layers()) {
    const auto size = static_cast<std::size_t>(layer->output().size());
    acts_.emplace_back(mb * size);
    widest = std::max(widest, size);
    scratch = std::max(scratch, layer->scratch_floats(max_batch));
  }
  grad_a_.resize(mb * widest);
  grad_b_.resize(mb * widest);
  scratch_.resize(scratch);
  input_.resize(mb * static_cast<std::size_t>(net.input_shape().size()));
  labels_.resize(mb);
  targets_.resize(mb * static_cast<std::size_t>(net.outputs()));
}

Batch gather_batch(const Dataset& data, std::span<const std::uint32_t> rows, Workspace& ws) {
  const auto features = static_cast<std::size_t>(data.features);
  const auto outputs = static_cast<std::size_t>(data.outputs);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(ws.input() + i * features, data.x.data() + rows[i] * features,
                features * sizeof(float));
    if (data.task == LearningTask::kClassification) {
      ws.labels()[i] = data.labels[rows[i]];
    } else {
      std::memcpy(ws.targets() + i * outputs, data.targets.data() + rows[i] * outputs,
                  outputs * sizeof(float));
    }
  }
  return {ws.input(), ws.labels(), ws.targets(), static_cast<int>(rows.size())};
}

}  // namespace dtsim
