// Dense kernels used by the layers, each in two versions: the fast one (OpenBLAS sgemm,
// vectorisable loops) that training uses, and a naive reference that tests compare against.
//
// All matrices are row-major. Shapes are stated as [rows, cols]. The functions are pure
// (no hidden state) and safe to call from several threads at once on different buffers.
// OpenBLAS must run single-threaded inside dtsim's jobs: call `use_single_threaded_blas()`
// once at start-up.
#pragma once

#include <cstddef>

namespace dtsim {

// C[m,n] = alpha * op(A) * op(B) + beta * C, where op(A) is [m,k] and op(B) is [k,n].
// `trans_a`: A is stored as [k,m]; `trans_b`: B is stored as [n,k].
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
          const float* b, float beta, float* c);
void gemm_reference(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    const float* b, float beta, float* c);

// Tells OpenBLAS to use one thread per call; dtsim runs calls side by side instead.
void use_single_threaded_blas();

// Image patch unrolling for a convolution over one sample, with zero padding.
// x: [channels, height, width]; col: [channels * k * k, out_h * out_w], where
// out_h = height + 2 * pad - k + 1 (stride 1).
void im2col(const float* x, int channels, int height, int width, int k, int pad, float* col);
// The adjoint of im2col: adds each column entry back into dx (dx is NOT cleared first).
void col2im(const float* col, int channels, int height, int width, int k, int pad, float* dx);

}  // namespace dtsim
