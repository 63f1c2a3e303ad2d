#include "engine/kernels.hpp"

#include <cblas.h>

namespace dtsim {

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
          const float* b, float beta, float* c) {
  const int lda = trans_a ? m : k;
  const int ldb = trans_b ? k : n;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
}

void gemm_reference(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    const float* b, float beta, float* c) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double sum = 0;
      for (int p = 0; p < k; ++p) {
        const float av = trans_a ? a[static_cast<std::size_t>(p) * m + i]
                                 : a[static_cast<std::size_t>(i) * k + p];
        const float bv = trans_b ? b[static_cast<std::size_t>(j) * k + p]
                                 : b[static_cast<std::size_t>(p) * n + j];
        sum += static_cast<double>(av) * bv;
      }
      float& out = c[static_cast<std::size_t>(i) * n + j];
      out = static_cast<float>(alpha * sum + (beta == 0.0f ? 0.0 : beta * out));
    }
  }
}

void use_single_threaded_blas() { openblas_set_num_threads(1); }

void im2col(const float* x, int channels, int height, int width, int k, int pad, float* col) {
  const int out_h = height + 2 * pad - k + 1;
  const int out_w = width + 2 * pad - k + 1;
  for (int c = 0; c < channels; ++c) {
    const float* xc = x + static_cast<std::size_t>(c) * height * width;
    for (int ki = 0; ki < k; ++ki) {
      for (int kj = 0; kj < k; ++kj) {
        for (int oy = 0; oy < out_h; ++oy) {
          const int iy = oy + ki - pad;
          if (iy < 0 || iy >= height) {
            for (int ox = 0; ox < out_w; ++ox) *col++ = 0.0f;
            continue;
          }
          const float* xrow = xc + static_cast<std::size_t>(iy) * width;
          for (int ox = 0; ox < out_w; ++ox) {
            const int ix = ox + kj - pad;
            *col++ = (ix >= 0 && ix < width) ? xrow[ix] : 0.0f;
          }
        }
      }
    }
  }
}

void col2im(const float* col, int channels, int height, int width, int k, int pad, float* dx) {
  const int out_h = height + 2 * pad - k + 1;
  const int out_w = width + 2 * pad - k + 1;
  for (int c = 0; c < channels; ++c) {
    float* dxc = dx + static_cast<std::size_t>(c) * height * width;
    for (int ki = 0; ki < k; ++ki) {
      for (int kj = 0; kj < k; ++kj) {
        for (int oy = 0; oy < out_h; ++oy) {
          const int iy = oy + ki - pad;
          if (iy < 0 || iy >= height) {
            col += out_w;
            continue;
          }
          float* dxrow = dxc + static_cast<std::size_t>(iy) * width;
          for (int ox = 0; ox < out_w; ++ox) {
            const int ix = ox + kj - pad;
            if (ix >= 0 && ix < width) dxrow[ix] += *col;
            ++col;
          }
        }
      }
    }
  }
}

}  // namespace dtsim
