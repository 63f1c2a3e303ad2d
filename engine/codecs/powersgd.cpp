#include "engine/codecs/powersgd.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/codecs/codec.hpp"
#include "engine/compress.hpp"
#include "engine/kernels.hpp"

namespace dtsim {

void orthogonalize(std::span<float> m, std::size_t rows, std::size_t r, float eps) {
  for (std::size_t c = 0; c < r; ++c) {
    float* col = m.data() + c * rows;
    double norm = 0;
    for (std::size_t i = 0; i < rows; ++i) norm += static_cast<double>(col[i]) * col[i];
    const auto div = static_cast<float>(std::sqrt(norm)) + eps;
    for (std::size_t i = 0; i < rows; ++i) col[i] /= div;
    for (std::size_t d = c + 1; d < r; ++d) {
      float* other = m.data() + d * rows;
      double dot = 0;
      for (std::size_t i = 0; i < rows; ++i) dot += static_cast<double>(col[i]) * other[i];
      const auto f = static_cast<float>(dot);
      for (std::size_t i = 0; i < rows; ++i) other[i] -= f * col[i];
    }
  }
}

namespace {

class PowerSgdCodec final : public Codec {
 public:
  PowerSgdCodec(const CodecConfig& c, const CodecSetup& s);

  // (It rides an allreduce: its payload has no gathered form; the size is what it sends.)
  std::uint64_t payload_size(std::uint64_t /*step*/) const override {
    return 4 * (p_size_ + q_size_ + rest_index_.size());
  }
  void encode(std::span<const float>, std::uint64_t, Payload&) override { no_payload(); }
  void decode(std::span<const std::uint8_t>, std::uint64_t, std::span<float>) const override {
    no_payload();
  }

  // Round 0: P = M Q; round 1: Q = M^T P from the summed P, and the uncompressed rest.
  int rounds() const override { return 2; }
  double round_share(int /*r*/) const override { return 0.5; }
  std::vector<SumPart> parts(int r, std::uint64_t step) override;
  void encode_round(int r, std::span<const float> x, std::uint64_t step, int p) override;
  void finish(std::span<const float> x, std::uint64_t step, int p, std::span<float> out,
              std::span<float> sent) override;

 private:
  struct Matrix {
    std::size_t offset = 0;  // in the flat vector
    std::size_t rows = 0;
    std::size_t cols = 0;
    std::size_t rank = 0;
    std::size_t p_offset = 0;  // in the P buffer (rows * rank)
    std::size_t q_offset = 0;  // in the Q buffer (cols * rank)
  };
  [[noreturn]] static void no_payload() {
    throw std::logic_error("powersgd rides an allreduce; it has no gathered payload");
  }

  std::vector<Matrix> matrices_;
  std::vector<std::size_t> rest_index_;  // uncompressed elements, in order
  std::size_t p_size_ = 0;
  std::size_t q_size_ = 0;
  std::vector<float> warm_q_;  // Q of the last step, all matrices
  bool have_q_ = false;
  // The parts summed by the allreduces (in place).
  std::vector<float> p_;
  std::vector<float> q_;
  std::vector<float> rest_;
};

PowerSgdCodec::PowerSgdCodec(const CodecConfig& c, const CodecSetup& s) : Codec(s) {
  // Which tensors it compresses; without a layout the vector is one uncompressed tensor.
  const std::size_t n = s.n;
  std::vector<bool> in_matrix(n, false);
  if (s.layout != nullptr) {
    for (const TensorSlot& t : s.layout->tensors()) {
      if (t.shape.size() < 2 || t.offset + t.size > n) continue;
      const auto rows = static_cast<std::size_t>(t.shape[0]);
      const std::size_t cols = t.size / rows;
      const std::size_t r = std::min({rows, cols, static_cast<std::size_t>(std::max(1, c.rank))});
      if ((rows + cols) * r * 2 >= rows * cols) continue;  // min_compression_rate 2
      matrices_.push_back({t.offset, rows, cols, r, p_size_, q_size_});
      p_size_ += rows * r;
      q_size_ += cols * r;
      std::fill(in_matrix.begin() + static_cast<std::ptrdiff_t>(t.offset),
                in_matrix.begin() + static_cast<std::ptrdiff_t>(t.offset + t.size), true);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!in_matrix[i]) rest_index_.push_back(i);
  }
}

std::vector<SumPart> PowerSgdCodec::parts(int r, std::uint64_t /*step*/) {
  if (r == 0) return {{p_, p_size_, 4}};
  std::vector<SumPart> out = {{q_, q_size_, 4}};
  if (!rest_index_.empty()) out.push_back({rest_, rest_index_.size(), 4});
  return out;
}

void PowerSgdCodec::encode_round(int r, std::span<const float> x, std::uint64_t step, int /*p*/) {
  if (r == 0) {
    rest_.resize(rest_index_.size());
    for (std::size_t j = 0; j < rest_index_.size(); ++j) rest_[j] = x[rest_index_[j]];
    if (!have_q_) {
      // A fresh Q ~ N(0, 1) from the shared key, the same on every worker; later steps start
      // from the last Q (warm start).
      warm_q_.assign(q_size_, 0.0f);
      CounterRng rng(shared_key(step));
      for (float& v : warm_q_) v = static_cast<float>(rng.normal());
      have_q_ = true;
    }
    // P and Q are kept column by column: a rows x r matrix as its r x rows transpose.
    p_.assign(p_size_, 0.0f);
    for (const Matrix& m : matrices_) {
      float* q = warm_q_.data() + m.q_offset;
      orthogonalize({q, m.cols * m.rank}, m.cols, m.rank);
      // P = M Q, i.e. P^T [r, rows] = Q^T [r, cols] * M^T (M is row-major [rows, cols]).
      gemm(false, true, static_cast<int>(m.rank), static_cast<int>(m.rows),
           static_cast<int>(m.cols), 1.0f, q, x.data() + m.offset, 0.0f, p_.data() + m.p_offset);
    }
    return;
  }
  // The summed P (not divided: it is normalised anyway), orthogonalised, then Q = M^T P.
  q_.assign(q_size_, 0.0f);
  for (const Matrix& m : matrices_) {
    float* pm = p_.data() + m.p_offset;
    orthogonalize({pm, m.rows * m.rank}, m.rows, m.rank);
    // Q = M^T P, i.e. Q^T [r, cols] = P^T [r, rows] * M [rows, cols].
    gemm(false, false, static_cast<int>(m.rank), static_cast<int>(m.cols), static_cast<int>(m.rows),
         1.0f, pm, x.data() + m.offset, 0.0f, q_.data() + m.q_offset);
  }
}

void PowerSgdCodec::finish(std::span<const float> /*x*/, std::uint64_t /*step*/, int p,
                           std::span<float> out, std::span<float> sent) {
  const float inv = 1.0f / static_cast<float>(p);
  for (std::size_t j = 0; j < q_size_; ++j) warm_q_[j] = q_[j] * inv;  // kept: warm start
  std::fill(out.begin(), out.end(), 0.0f);
  for (const Matrix& m : matrices_) {
    // M = P Q^T: [rows, cols] = (P^T)^T [rows, r] * Q^T [r, cols].
    gemm(true, false, static_cast<int>(m.rows), static_cast<int>(m.cols), static_cast<int>(m.rank),
         1.0f, p_.data() + m.p_offset, warm_q_.data() + m.q_offset, 0.0f, out.data() + m.offset);
  }
  for (std::size_t j = 0; j < rest_index_.size(); ++j) out[rest_index_[j]] = rest_[j] * inv;
  // Error feedback against the mean's approximation (PyTorch: input copy minus the output).
  std::copy(out.begin(), out.end(), sent.begin());
}

}  // namespace

std::unique_ptr<Codec> make_powersgd_codec(const CodecConfig& c, const CodecSetup& s) {
  return std::make_unique<PowerSgdCodec>(c, s);
}

}  // namespace dtsim
