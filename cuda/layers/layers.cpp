// Host wrappers of the deterministic CUDA layers (see layers.hpp). Each function below is the
// reference function of the same name with every loop replaced by a launcher of
// cuda/layers/kernels.hpp, called in the reference's order on device copies of its arguments.
// Legend as in the reference: M/T = rows (tokens), K/C = input features, N/H = outputs.
#include "cuda/layers/layers.hpp"

#include <vector>

#include "cuda/layers/device_buffer.hpp"
#include "cuda/layers/kernels.hpp"
#include "reference/core/error.hpp"
#include "reference/layers/attention_common.hpp"

namespace preflight::cuda {
namespace {

using std::int64_t;
using F = DeviceBuffer<float>;
using ref::LinearPrecision;
using ref::Precision;

constexpr int64_t kGroup = 128;  // fp8 tile / block edge
int64_t blocks_of(int64_t n) { return (n + kGroup - 1) / kGroup; }

void sync() { PREFLIGHT_CUDA_CHECK(cudaDeviceSynchronize()); }

// ---- device-pointer linear layers (matmul.cpp, fp8_linear.cpp)
void d_matmul_forward(float* out, const float* x, const float* w, const float* bias, int64_t M, int64_t N,
                      int64_t K) {
  dev::gemm_nt(out, N, x, K, 1, w, K, 1, bias, false, M, N, K);
}

void d_matmul_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                       int64_t M, int64_t N, int64_t K) {
  if (dx) dev::gemm_nt(dx, K, dout, N, 1, w, 1, K, nullptr, true, M, K, N);
  if (dw) dev::gemm_nt(dw, K, dout, 1, N, x, 1, K, nullptr, true, N, K, M);
  if (dbias) {
    const float one_h = 1.0f;
    F one(&one_h, 1);  // (1,M) row of ones with stride 0
    dev::gemm_nt(dbias, 1, dout, 1, N, one.get(), 0, 0, nullptr, true, N, 1, M);
    sync();  // `one` is freed on return
  }
}

F d_rounded_bf16(const float* x, int64_t n) {
  F r(n);
  dev::round_bf16(r.get(), x, n);
  return r;
}

struct DevFp8 {
  DeviceBuffer<std::uint8_t> q;  // (R,K)
  F scale;                       // (⌈R/tile_rows⌉, ⌈K/128⌉)
};
DevFp8 d_quantize(const float* x, int64_t R, int64_t K, int64_t tile_rows, bool ue8m0) {
  DevFp8 m{DeviceBuffer<std::uint8_t>(R * K), F(((R + tile_rows - 1) / tile_rows) * blocks_of(K))};
  dev::fp8_quantize(m.q.get(), m.scale.get(), x, R, K, tile_rows, ue8m0);
  return m;
}
// Row-major (R,K) codes with scale rows of `group_rows` rows.
dev::Fp8Operand dense_operand(const DevFp8& m, int64_t K, int64_t group_rows) {
  return {m.q.get(), K, 1, m.scale.get(), group_rows, blocks_of(K), 1};
}

void check_linear(const float* x, const float* w, int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(x && w, "cuda linear: null tensor (x or w)");
  PREFLIGHT_CHECK(M >= 0 && N > 0 && K > 0, "cuda linear: shape M=", M, " N=", N, " K=", K);
}

void d_linear_forward(float* out, const float* x, const float* w, const float* bias, int64_t M, int64_t N, int64_t K,
                      const LinearPrecision& p) {
  switch (p.kind) {
    case Precision::fp32:
      d_matmul_forward(out, x, w, bias, M, N, K);
      break;
    case Precision::bf16: {
      const F xr = d_rounded_bf16(x, M * K), wr = d_rounded_bf16(w, N * K);
      d_matmul_forward(out, xr.get(), wr.get(), bias, M, N, K);
      sync();
      break;
    }
    case Precision::fp8: {
      const DevFp8 xq = d_quantize(x, M, K, 1, p.ue8m0_scales);       // 1×128 tiles along K
      const DevFp8 wq = d_quantize(w, N, K, kGroup, p.ue8m0_scales);  // 128×128 blocks
      dev::fp8_gemm_nt(out, N, dense_operand(xq, K, 1), dense_operand(wq, K, kGroup), bias, false, M, N, K);
      sync();
      break;
    }
  }
}

void d_linear_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                       int64_t M, int64_t N, int64_t K, const LinearPrecision& p) {
  if (p.kind == Precision::fp32) return d_matmul_backward(dx, dw, dbias, dout, x, w, M, N, K);
  if (dbias) d_matmul_backward(nullptr, nullptr, dbias, dout, x, w, M, N, K);  // fp32 dy
  if (!dx && !dw) return;
  if (p.kind == Precision::bf16) {
    const F dyr = d_rounded_bf16(dout, M * N);
    if (dx) {
      const F wr = d_rounded_bf16(w, N * K);
      d_matmul_backward(dx, nullptr, nullptr, dyr.get(), x, wr.get(), M, N, K);
      sync();
    }
    if (dw) {
      const F xr = d_rounded_bf16(x, M * K);
      d_matmul_backward(nullptr, dw, nullptr, dyr.get(), xr.get(), w, M, N, K);
      sync();
    }
    return;
  }
  if (dx) {  // dgrad: dy 1×128 along N; W's forward 128×128 blocks read transposed
    const DevFp8 dyq = d_quantize(dout, M, N, 1, p.ue8m0_scales);
    const DevFp8 wq = d_quantize(w, N, K, kGroup, p.ue8m0_scales);
    // B = Wᵀ (K,N): element (k, n) = wq[n*K + k]; its block (k/128, n/128) has W's scale
    // (n/128, k/128) = wq.scale[(n/128)*Kb + k/128] (fp8_transpose_blocks, by strides).
    const dev::Fp8Operand b{wq.q.get(), 1, K, wq.scale.get(), kGroup, 1, blocks_of(K)};
    dev::fp8_gemm_nt(dx, K, dense_operand(dyq, N, 1), b, nullptr, true, M, K, N);
    sync();
  }
  if (dw) {  // wgrad: dyᵀ (N,M) and xᵀ (K,M), both 1×128 along the tokens
    F dyt(N * M), xt(K * M);
    dev::transpose(dyt.get(), dout, M, N);
    dev::transpose(xt.get(), x, M, K);
    const DevFp8 dyq = d_quantize(dyt.get(), N, M, 1, p.ue8m0_scales);
    const DevFp8 xq = d_quantize(xt.get(), K, M, 1, p.ue8m0_scales);
    dev::fp8_gemm_nt(dw, K, dense_operand(dyq, M, 1), dense_operand(xq, M, 1), nullptr, true, N, K, M);
    sync();
  }
}

// ---- device-pointer norms
void d_rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int64_t T, int64_t C) {
  if (dx) {
    F g(T * C);
    dev::rmsnorm_backward_dx(dx, g.get(), dout, x, w, rstd, T, C);
    sync();
  }
  if (dw) {
    F xn(T * C);
    dev::scale_rows(xn.get(), x, rstd, T, C);
    dev::column_dot_accumulate(dw, dout, 1, C, xn.get(), 1, C, T, C);
    sync();
  }
}

void d_rope(float* x, const std::int32_t* pos_h, const ref::RopeTable& table, int64_t T, int64_t NH, int64_t row,
            int64_t head, bool interleaved, bool backward) {
  for (int64_t t = 0; t < T; ++t)
    PREFLIGHT_CHECK(pos_h[t] >= 0 && pos_h[t] < table.positions, "rope: pos[", t, "] = ", pos_h[t],
                    ", expected in [0, ", table.positions, ")");
  const DeviceBuffer<std::int32_t> pos(pos_h, T);
  const F c(table.cos), s(table.sin);
  dev::rope(x, pos.get(), c.get(), s.get(), table.dim, T, NH, row, head, interleaved, backward);
  sync();
}

// Upload host[0..n) into a new buffer, or an empty one when host is null.
F up(const float* host, int64_t n) { return F(host, n); }

}  // namespace

// ------------------------------------------------------------------ linear
void matmul_forward(float* out, const float* x, const float* w, const float* bias, int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(out && x && w, "cuda matmul_forward: null tensor (out, x or w)");
  F dx_ = up(x, M * K), dw_ = up(w, N * K), db_ = up(bias, N), dy(M * N);
  d_matmul_forward(dy.get(), dx_.get(), dw_.get(), db_.get(), M, N, K);
  dy.download(out);
}

void matmul_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                     int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(dout && x && w, "cuda matmul_backward: null tensor (dout, x or w)");
  F gdx = up(dx, M * K), gdw = up(dw, N * K), gdb = up(dbias, N);
  const F y = up(dout, M * N), xx = up(x, M * K), ww = up(w, N * K);
  d_matmul_backward(gdx.get(), gdw.get(), gdb.get(), y.get(), xx.get(), ww.get(), M, N, K);
  gdx.download(dx), gdw.download(dw), gdb.download(dbias);
}

void linear_forward(float* out, const float* x, const float* w, const float* bias, int64_t M, int64_t N, int64_t K,
                    const LinearPrecision& p) {
  check_linear(x, w, M, N, K);
  F dx_ = up(x, M * K), dw_ = up(w, N * K), db_ = up(bias, N), dy(M * N);
  d_linear_forward(dy.get(), dx_.get(), dw_.get(), db_.get(), M, N, K, p);
  dy.download(out);
}

void linear_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                     int64_t M, int64_t N, int64_t K, const LinearPrecision& p) {
  check_linear(x, w, M, N, K);
  PREFLIGHT_CHECK(dout, "cuda linear_backward: null dout");
  F gdx = up(dx, M * K), gdw = up(dw, N * K), gdb = up(dbias, N);
  const F y = up(dout, M * N), xx = up(x, M * K), ww = up(w, N * K);
  d_linear_backward(gdx.get(), gdw.get(), gdb.get(), y.get(), xx.get(), ww.get(), M, N, K, p);
  gdx.download(dx), gdw.download(dw), gdb.download(dbias);
}

// ------------------------------------------------------------------ embedding
static void check_tokens(const std::int32_t* tokens, int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; ++t)
    PREFLIGHT_CHECK(tokens[t] >= 0 && tokens[t] < V, "embedding: tokens[", t, "] = ", tokens[t],
                    ", expected in [0, ", V, ")");
}

void embedding_forward(float* out, const std::int32_t* tokens, const float* table, int64_t T, int64_t C, int64_t V) {
  check_tokens(tokens, T, V);
  const DeviceBuffer<std::int32_t> tok(tokens, T);
  const F tab = up(table, V * C);
  F y(T * C);
  dev::embedding_forward(y.get(), tok.get(), tab.get(), T, C);
  y.download(out);
}

void embedding_backward(float* dtable, const float* dout, const std::int32_t* tokens, int64_t T, int64_t C,
                        int64_t V) {
  check_tokens(tokens, T, V);
  const DeviceBuffer<std::int32_t> tok(tokens, T);
  const F dy = up(dout, T * C);
  F dt = up(dtable, V * C);
  dev::embedding_backward(dt.get(), dy.get(), tok.get(), T, C);
  dt.download(dtable);
}

// ------------------------------------------------------------------ rmsnorm
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, int64_t T, int64_t C) {
  PREFLIGHT_CHECK(C > 0, "rmsnorm: C = ", C, ", expected > 0");
  const F xx = up(x, T * C), ww = up(w, C);
  F y(T * C), r(T);
  dev::rmsnorm_forward(y.get(), r.get(), xx.get(), ww.get(), eps, T, C);
  y.download(out), r.download(rstd);
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t T, int64_t C) {
  const F dy = up(dout, T * C), xx = up(x, T * C), ww = up(w, C), r = up(rstd, T);
  F gdx = up(dx, T * C), gdw = up(dw, C);
  d_rmsnorm_backward(gdx.get(), gdw.get(), dy.get(), xx.get(), ww.get(), r.get(), T, C);
  gdx.download(dx), gdw.download(dw);
}

// ------------------------------------------------------------------ rope
static int64_t rope_extent(const ref::RopeTable& table, int64_t T, int64_t NH, int64_t row, int64_t head) {
  return T > 0 && NH > 0 ? (T - 1) * row + (NH - 1) * head + table.dim : 0;
}

void rope_forward(float* x, const std::int32_t* pos, const ref::RopeTable& table, int64_t T, int64_t NH, int64_t row,
                  int64_t head, ref::RopeLayout layout) {
  const int64_t n = rope_extent(table, T, NH, row, head);
  F xx = up(x, n);
  d_rope(xx.get(), pos, table, T, NH, row, head, layout == ref::RopeLayout::interleaved, false);
  xx.download(x);
}

void rope_backward(float* dx, const std::int32_t* pos, const ref::RopeTable& table, int64_t T, int64_t NH,
                   int64_t row, int64_t head, ref::RopeLayout layout) {
  const int64_t n = rope_extent(table, T, NH, row, head);
  F xx = up(dx, n);
  d_rope(xx.get(), pos, table, T, NH, row, head, layout == ref::RopeLayout::interleaved, true);
  xx.download(dx);
}

// ------------------------------------------------------------------ swiglu
void swiglu_forward(float* out, float* h1, float* h3, float* act, const float* x, const float* w1, const float* w3,
                    const float* w2, int64_t T, int64_t C, int64_t H, const ref::LinearPrecision& p) {
  const F xx = up(x, T * C), g1 = up(w1, H * C), g3 = up(w3, H * C), g2 = up(w2, C * H);
  F a1(T * H), a3(T * H), ac(T * H), y(T * C);
  d_linear_forward(a1.get(), xx.get(), g1.get(), nullptr, T, H, C, p);
  d_linear_forward(a3.get(), xx.get(), g3.get(), nullptr, T, H, C, p);
  dev::swiglu_act(ac.get(), a1.get(), a3.get(), T * H);
  d_linear_forward(y.get(), ac.get(), g2.get(), nullptr, T, C, H, p);
  y.download(out), a1.download(h1), a3.download(h3), ac.download(act);
}

void swiglu_backward(float* dx, float* dw1, float* dw3, float* dw2, const float* dout, const float* h1,
                     const float* h3, const float* act, const float* x, const float* w1, const float* w3,
                     const float* w2, int64_t T, int64_t C, int64_t H, const ref::LinearPrecision& p) {
  const F dy = up(dout, T * C), a1 = up(h1, T * H), a3 = up(h3, T * H), ac = up(act, T * H), xx = up(x, T * C);
  const F g1 = up(w1, H * C), g3 = up(w3, H * C), g2 = up(w2, C * H);
  F gdx = up(dx, T * C), gw1 = up(dw1, H * C), gw3 = up(dw3, H * C), gw2 = up(dw2, C * H);
  F dact(T * H), dh1(T * H), dh3(T * H);
  d_linear_backward(dact.get(), gw2.get(), nullptr, dy.get(), ac.get(), g2.get(), T, C, H, p);
  dev::swiglu_grad(dh1.get(), dh3.get(), dact.get(), a1.get(), a3.get(), T * H);
  d_linear_backward(gdx.get(), gw1.get(), nullptr, dh1.get(), xx.get(), g1.get(), T, H, C, p);
  d_linear_backward(gdx.get(), gw3.get(), nullptr, dh3.get(), xx.get(), g3.get(), T, H, C, p);
  gdx.download(dx), gw1.download(dw1), gw3.download(dw3), gw2.download(dw2);
}

// ------------------------------------------------------------------ gpt layers
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       float eps, int64_t T, int64_t C) {
  PREFLIGHT_CHECK(C > 0, "layernorm: C = ", C, ", expected > 0");
  PREFLIGHT_CHECK(w && b, "layernorm: null weight or bias");
  const F xx = up(x, T * C), ww = up(w, C), bb = up(b, C);
  F y(T * C), mu(T), r(T), centered(T * C);
  dev::layernorm_forward(y.get(), mu.get(), r.get(), centered.get(), xx.get(), ww.get(), bb.get(), eps, T, C);
  y.download(out), mu.download(mean), r.download(rstd);
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t T, int64_t C) {
  const F dy = up(dout, T * C), xx = up(x, T * C), ww = up(w, C), mu = up(mean, T), r = up(rstd, T);
  F gdx = up(dx, T * C), gdw = up(dw, C), gdb = up(db, C), xh(T * C);
  dev::layernorm_xhat(xh.get(), xx.get(), mu.get(), r.get(), T, C);
  if (dx) {
    F g(T * C);
    dev::layernorm_backward_dx(gdx.get(), g.get(), dy.get(), xh.get(), ww.get(), r.get(), T, C);
    sync();
  }
  // The reference interleaves dw[i] and db[i] per channel; they are independent outputs.
  if (dw) dev::column_dot_accumulate(gdw.get(), dy.get(), 1, C, xh.get(), 1, C, T, C);
  if (db) {
    const float one_h = 1.0f;
    const F one(&one_h, 1);
    dev::column_dot_accumulate(gdb.get(), dy.get(), 1, C, one.get(), 0, 0, T, C);
    sync();
  }
  gdx.download(dx), gdw.download(dw), gdb.download(db);
}

void gelu_mlp_forward(float* out, float* h, float* act, const float* x, const float* w1, const float* b1,
                      const float* w2, const float* b2, int64_t T, int64_t C, int64_t H, const LinearPrecision& p) {
  check_linear(x, w1, T, H, C);
  check_linear(x, w2, T, C, H);
  const F xx = up(x, T * C), g1 = up(w1, H * C), c1 = up(b1, H), g2 = up(w2, C * H), c2 = up(b2, C);
  F hh(T * H), ac(T * H), y(T * C);
  d_linear_forward(hh.get(), xx.get(), g1.get(), c1.get(), T, H, C, p);
  dev::gelu(ac.get(), hh.get(), T * H);
  d_linear_forward(y.get(), ac.get(), g2.get(), c2.get(), T, C, H, p);
  y.download(out), hh.download(h), ac.download(act);
}

void gelu_mlp_backward(float* dx, float* dw1, float* db1, float* dw2, float* db2, const float* dout, const float* h,
                       const float* act, const float* x, const float* w1, const float* w2, int64_t T, int64_t C,
                       int64_t H, const LinearPrecision& p) {
  check_linear(x, w1, T, H, C);
  const F dy = up(dout, T * C), hh = up(h, T * H), ac = up(act, T * H), xx = up(x, T * C);
  const F g1 = up(w1, H * C), g2 = up(w2, C * H);
  F gdx = up(dx, T * C), gw1 = up(dw1, H * C), gb1 = up(db1, H), gw2 = up(dw2, C * H), gb2 = up(db2, C);
  F dh(T * H);  // dact, then dh in place
  d_linear_backward(dh.get(), gw2.get(), gb2.get(), dy.get(), ac.get(), g2.get(), T, C, H, p);
  dev::gelu_backward(dh.get(), hh.get(), T * H);
  d_linear_backward(gdx.get(), gw1.get(), gb1.get(), dh.get(), xx.get(), g1.get(), T, H, C, p);
  gdx.download(dx), gw1.download(dw1), gb1.download(db1), gw2.download(dw2), gb2.download(db2);
}

// ------------------------------------------------------------------ attention (attention.cpp)
namespace {

// The device copies of a GqaWeights (empty buffers for absent tensors).
struct DevGqaWeights {
  F wq, wk, wv, wo, bq, bk, bv, bo, q_norm, k_norm, w_gate;
  DevGqaWeights(const ref::GqaWeights& w, const ref::GqaDims& d) {
    const int64_t HD = d.H * d.Dh, GD = d.G * d.Dh;
    wq = up(w.wq, HD * d.C), wk = up(w.wk, GD * d.C), wv = up(w.wv, GD * d.C), wo = up(w.wo, d.C * HD);
    bq = up(w.bq, HD), bk = up(w.bk, GD), bv = up(w.bv, GD), bo = up(w.bo, d.C);
    q_norm = up(w.q_norm, d.Dh), k_norm = up(w.k_norm, d.Dh), w_gate = up(w.w_gate, d.H * d.C);
  }
  void download(const ref::GqaWeights& w) const {
    wq.download(w.wq), wk.download(w.wk), wv.download(w.wv), wo.download(w.wo);
    bq.download(w.bq), bk.download(w.bk), bv.download(w.bv), bo.download(w.bo);
    q_norm.download(w.q_norm), k_norm.download(w.k_norm), w_gate.download(w.w_gate);
  }
};

}  // namespace

void gqa_forward(float* out, ref::GqaCache& c, const float* x, const ref::GqaWeights& w, const std::int32_t* doc,
                 const std::int32_t* pos, const ref::RopeTable& rope, const ref::GqaOptions& o, const ref::GqaDims& d) {
  ref::gqa_check_arguments(d, o, rope, w);
  const int64_t T = d.T, H = d.H, G = d.G, Dh = d.Dh, HD = H * Dh, GD = G * Dh;
  std::vector<std::int32_t> posv;
  ref::resolve_documents(c.s0, posv, doc, pos, T, "gqa");
  const F xx = up(x, T * d.C);
  const DevGqaWeights dw(w, d);
  F q(T * HD), k(T * GD), v(T * GD), q_raw, k_raw, q_rstd, k_rstd;
  if (o.qk_norm) {
    q_raw = F(T * HD), k_raw = F(T * GD), q_rstd = F(T * H), k_rstd = F(T * G);
    d_linear_forward(q_raw.get(), xx.get(), dw.wq.get(), dw.bq.get(), T, HD, d.C, o.precision);
    d_linear_forward(k_raw.get(), xx.get(), dw.wk.get(), dw.bk.get(), T, GD, d.C, o.precision);
    dev::rmsnorm_forward(q.get(), q_rstd.get(), q_raw.get(), dw.q_norm.get(), o.eps, T * H, Dh);
    dev::rmsnorm_forward(k.get(), k_rstd.get(), k_raw.get(), dw.k_norm.get(), o.eps, T * G, Dh);
  } else {
    d_linear_forward(q.get(), xx.get(), dw.wq.get(), dw.bq.get(), T, HD, d.C, o.precision);
    d_linear_forward(k.get(), xx.get(), dw.wk.get(), dw.bk.get(), T, GD, d.C, o.precision);
  }
  d_linear_forward(v.get(), xx.get(), dw.wv.get(), dw.bv.get(), T, GD, d.C, o.precision);
  const bool interleaved = o.rope_layout == ref::RopeLayout::interleaved;
  if (o.rope) {
    d_rope(q.get(), posv.data(), rope, T, H, HD, Dh, interleaved, false);
    d_rope(k.get(), posv.data(), rope, T, G, GD, Dh, interleaved, false);
  }
  const float scale = ref::gqa_softmax_scale(d, rope), cap = o.softcap;
  const DeviceBuffer<int64_t> s0(c.s0);
  F p(H * T * T), th(cap > 0.0f ? H * T * T : 0), oa(T * HD);
  dev::attention_forward(p.get(), th.get(), oa.get(), q.get(), k.get(), v.get(), s0.get(), scale, cap, T, H, G, Dh);
  F gate_logit, gate, og;
  if (o.output_gate) {
    gate_logit = F(T * H), gate = F(T * H), og = F(T * HD);
    d_matmul_forward(gate_logit.get(), xx.get(), dw.w_gate.get(), nullptr, T, H, d.C);
    dev::gate_forward(gate.get(), og.get(), gate_logit.get(), oa.get(), T * H, Dh);
  }
  const F& o_in = o.output_gate ? og : oa;  // the input of Wo
  F y(T * d.C);
  d_linear_forward(y.get(), o_in.get(), dw.wo.get(), dw.bo.get(), T, d.C, HD, o.precision);
  y.download(out);
  c.q = q.to_host(), c.k = k.to_host(), c.v = v.to_host(), c.p = p.to_host(), c.o = o_in.to_host();
  c.q_raw = q_raw.to_host(), c.k_raw = k_raw.to_host(), c.q_rstd = q_rstd.to_host(), c.k_rstd = k_rstd.to_host();
  c.th = th.to_host();
  c.o_pre = o.output_gate ? oa.to_host() : std::vector<float>{};
  c.gate_logit = gate_logit.to_host(), c.gate = gate.to_host();
}

void gqa_backward(float* dx, const ref::GqaWeights& dwh, const float* dout, const ref::GqaCache& c, const float* x,
                  const ref::GqaWeights& w, const std::int32_t* doc, const std::int32_t* pos,
                  const ref::RopeTable& rope, const ref::GqaOptions& o, const ref::GqaDims& d) {
  ref::gqa_check_arguments(d, o, rope, w);
  const int64_t T = d.T, H = d.H, G = d.G, Dh = d.Dh, HD = H * Dh, GD = G * Dh;
  std::vector<int64_t> s0v;
  std::vector<std::int32_t> posv;
  ref::resolve_documents(s0v, posv, doc, pos, T, "gqa");
  std::vector<int64_t> t1v(T);  // last query position that may attend to s (same document)
  for (int64_t s = T - 1; s >= 0; --s) t1v[s] = (s + 1 < T && s0v[s + 1] == s0v[s]) ? t1v[s + 1] : s;
  const float scale = ref::gqa_softmax_scale(d, rope), cap = o.softcap;
  const DeviceBuffer<int64_t> s0(s0v), t1(t1v);
  const F xx = up(x, T * d.C), dy = up(dout, T * d.C);
  const DevGqaWeights ww(w, d);
  DevGqaWeights gw(dwh, d);  // gradients, accumulated
  F gdx = up(dx, T * d.C);
  const F q(c.q), k(c.k), v(c.v), p(c.p), th(c.th), o_cache(c.o), o_pre(c.o_pre), gate(c.gate),
      gate_logit(c.gate_logit), q_raw(c.q_raw), k_raw(c.k_raw), q_rstd(c.q_rstd), k_rstd(c.k_rstd);

  F dO(T * HD);
  d_linear_backward(dO.get(), gw.wo.get(), gw.bo.get(), dy.get(), o_cache.get(), ww.wo.get(), T, d.C, HD,
                    o.precision);
  F dA;
  if (o.output_gate) {
    dA = F(T * H);
    dev::gate_backward(dA.get(), dO.get(), o_pre.get(), gate.get(), gate_logit.get(), T * H, Dh);
  }
  F dS(H * T * T);
  dev::attention_backward_ds(dS.get(), dO.get(), v.get(), p.get(), th.get(), s0.get(), scale, cap, T, H, G, Dh);
  F dq(T * HD), dkh(T * HD), dvh(T * HD), dk(T * GD), dv(T * GD);
  dev::attention_backward_qkv(dq.get(), dkh.get(), dvh.get(), dS.get(), p.get(), dO.get(), q.get(), k.get(),
                              s0.get(), t1.get(), T, H, G, Dh);
  dev::attention_group_sum(dk.get(), dv.get(), dkh.get(), dvh.get(), T, H, G, Dh);
  const bool interleaved = o.rope_layout == ref::RopeLayout::interleaved;
  if (o.rope) {
    d_rope(dq.get(), posv.data(), rope, T, H, HD, Dh, interleaved, true);
    d_rope(dk.get(), posv.data(), rope, T, G, GD, Dh, interleaved, true);
  }
  if (o.qk_norm) {
    F dq_raw(T * HD), dk_raw(T * GD);
    d_rmsnorm_backward(dq_raw.get(), gw.q_norm.get(), dq.get(), q_raw.get(), ww.q_norm.get(), q_rstd.get(), T * H, Dh);
    d_rmsnorm_backward(dk_raw.get(), gw.k_norm.get(), dk.get(), k_raw.get(), ww.k_norm.get(), k_rstd.get(), T * G, Dh);
    dq = std::move(dq_raw), dk = std::move(dk_raw);
  }
  d_linear_backward(gdx.get(), gw.wq.get(), gw.bq.get(), dq.get(), xx.get(), ww.wq.get(), T, HD, d.C, o.precision);
  d_linear_backward(gdx.get(), gw.wk.get(), gw.bk.get(), dk.get(), xx.get(), ww.wk.get(), T, GD, d.C, o.precision);
  d_linear_backward(gdx.get(), gw.wv.get(), gw.bv.get(), dv.get(), xx.get(), ww.wv.get(), T, GD, d.C, o.precision);
  if (o.output_gate)
    d_matmul_backward(gdx.get(), gw.w_gate.get(), nullptr, dA.get(), xx.get(), ww.w_gate.get(), T, H, d.C);
  sync();
  gdx.download(dx);
  gw.download(dwh);
}

}  // namespace preflight::cuda
