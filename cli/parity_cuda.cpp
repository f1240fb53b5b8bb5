// The CUDA half of `preflight parity`, built into libpreflight_cuda_cli.so next to the
// `preflight` binary (cli/CMakeLists.txt). The binary itself never links CUDA: it dlopens
// this library only for `parity` (cli/cuda_loader.cpp), so `model`, `sim`, `plan`, ... start
// without cuBLAS/cuBLASLt/cudart and run where no CUDA library is installed.
//
// Runs each layer's forward and backward on the CPU reference and on the GPU for a set of
// shapes (sizes that are not multiples of 32/128 included) and reports one row per (layer,
// shape): bit-equal or not in deterministic mode; max error against the derived bound in fast
// mode (docs/CUDA.md). GPU times include the host<->device copies of the host-array wrappers
// (cuda/layers/layers.hpp).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cuda_cli_abi.hpp"
#include "cuda/device.hpp"
#include "cuda/layers/cublas_gemm.hpp"
#include "cuda/layers/layers.hpp"
#include "reference/core/error.hpp"
#include "reference/core/model_config.hpp"
#include "reference/layers/attention.hpp"
#include "reference/layers/embedding.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/gpt_layers.hpp"
#include "reference/layers/rmsnorm.hpp"
#include "reference/layers/rope.hpp"
#include "reference/layers/swiglu.hpp"

namespace preflight::cli {

namespace {

struct ParityOptions {
  std::string layers, mode, config;
  bool json = false;
};

using std::int64_t;
using Vec = std::vector<float>;

Vec randn(int64_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Vec v(std::size_t(n > 0 ? n : 0));
  for (float& x : v) x = d(g);
  return v;
}

// One compared tensor of one run: CPU result, GPU result.
struct Outputs {
  std::vector<std::pair<Vec, Vec>> pairs;
  double cpu_ms = 0, gpu_ms = 0;
};

double time_ms(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Runs cpu() and gpu() (each filling its side of the outputs), timing both.
Outputs run_pair(const std::function<std::vector<Vec>()>& cpu, const std::function<std::vector<Vec>()>& gpu) {
  Outputs o;
  std::vector<Vec> a, b;
  o.cpu_ms = time_ms([&] { a = cpu(); });
  o.gpu_ms = time_ms([&] { b = gpu(); });
  for (std::size_t i = 0; i < a.size(); ++i) o.pairs.emplace_back(std::move(a[i]), std::move(b[i]));
  return o;
}

struct Shape {
  int64_t a, b, c;  // (M,N,K) for GEMMs, (T,C,·) for rows, (T,C,H) for FFNs
};

std::vector<Shape> gemm_shapes(const std::string& config) {
  if (config == "tiny") return {{1, 33, 130}, {33, 130, 257}, {130, 257, 33}};
  return {{257, 1000, 513}, {1024, 1031, 777}};
}
std::vector<Shape> row_shapes(const std::string& config) {
  if (config == "tiny") return {{1, 33, 0}, {33, 130, 0}, {257, 257, 0}};
  return {{1024, 4097, 0}, {4099, 1030, 0}};
}
std::vector<Shape> ffn_shapes(const std::string& config) {
  if (config == "tiny") return {{33, 40, 130}, {130, 33, 257}};
  return {{513, 1031, 2049}};
}

ref::RopeTable yarn_table(int64_t dim, int64_t positions) {
  ModelConfig c;
  c.rope_scaling.type = RopeScalingKind::yarn;
  c.rope_scaling.factor = 40.0;
  c.rope_scaling.original_max_position_embeddings = 64;
  return ref::rope_table(c, dim, positions);
}

using LayerFn = std::function<Outputs(const Shape&)>;

Outputs linear_case(const Shape& s, ref::LinearPrecision p) {
  const int64_t M = s.a, N = s.b, K = s.c;
  const Vec x = randn(M * K, 1), w = randn(N * K, 2, 0.05f), b = randn(N, 3), dy = randn(M * N, 4);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(M * N), dx(M * K, 0.f), dw(N * K, 0.f), db(N, 0.f);
      (gpu ? cuda::linear_forward : ref::linear_forward)(y.data(), x.data(), w.data(), b.data(), M, N, K, p);
      (gpu ? cuda::linear_backward : ref::linear_backward)(dx.data(), dw.data(), db.data(), dy.data(), x.data(),
                                                           w.data(), M, N, K, p);
      return std::vector<Vec>{y, dx, dw, db};
    };
  };
  return run_pair(side(false), side(true));
}

Outputs embedding_case(const Shape& s) {
  const int64_t T = s.a, C = s.b, V = 97;
  std::vector<std::int32_t> tok(T);
  for (int64_t t = 0; t < T; ++t) tok[t] = std::int32_t((t * 7 + 3) % V);
  const Vec table = randn(V * C, 5), dy = randn(T * C, 6);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(T * C), dt(V * C, 0.f);
      (gpu ? cuda::embedding_forward : ref::embedding_forward)(y.data(), tok.data(), table.data(), T, C, V);
      (gpu ? cuda::embedding_backward : ref::embedding_backward)(dt.data(), dy.data(), tok.data(), T, C, V);
      return std::vector<Vec>{y, dt};
    };
  };
  return run_pair(side(false), side(true));
}

Outputs rmsnorm_case(const Shape& s) {
  const int64_t T = s.a, C = s.b;
  const Vec x = randn(T * C, 7), w = randn(C, 8), dy = randn(T * C, 9);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(T * C), r(T), dx(T * C, 0.f), dw(C, 0.f);
      (gpu ? cuda::rmsnorm_forward : ref::rmsnorm_forward)(y.data(), r.data(), x.data(), w.data(), 1e-6f, T, C);
      (gpu ? cuda::rmsnorm_backward : ref::rmsnorm_backward)(dx.data(), dw.data(), dy.data(), x.data(), w.data(),
                                                             r.data(), T, C);
      return std::vector<Vec>{y, r, dx, dw};
    };
  };
  return run_pair(side(false), side(true));
}

Outputs layernorm_case(const Shape& s) {
  const int64_t T = s.a, C = s.b;
  const Vec x = randn(T * C, 10), w = randn(C, 11), b = randn(C, 12), dy = randn(T * C, 13);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(T * C), mu(T), r(T), dx(T * C, 0.f), dw(C, 0.f), db(C, 0.f);
      (gpu ? cuda::layernorm_forward : ref::layernorm_forward)(y.data(), mu.data(), r.data(), x.data(), w.data(),
                                                               b.data(), 1e-5f, T, C);
      (gpu ? cuda::layernorm_backward : ref::layernorm_backward)(dx.data(), dw.data(), db.data(), dy.data(), x.data(),
                                                                 w.data(), mu.data(), r.data(), T, C);
      return std::vector<Vec>{y, mu, r, dx, dw, db};
    };
  };
  return run_pair(side(false), side(true));
}

Outputs rope_case(const Shape& s) {
  const int64_t T = s.a, D = 2 * ((s.b + 1) / 2), NH = 3;
  const ref::RopeTable table = yarn_table(D, T);
  std::vector<std::int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = std::int32_t(t);
  const Vec x = randn(T * NH * D, 14);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      std::vector<Vec> out;
      for (auto layout : {ref::RopeLayout::interleaved, ref::RopeLayout::half}) {
        Vec y = x;
        if (gpu) {
          cuda::rope_forward(y.data(), pos.data(), table, T, NH, NH * D, D, layout);
          out.push_back(y);
          cuda::rope_backward(y.data(), pos.data(), table, T, NH, NH * D, D, layout);
        } else {
          ref::rope_forward(y.data(), pos.data(), table, T, NH, NH * D, D, layout);
          out.push_back(y);
          ref::rope_backward(y.data(), pos.data(), table, T, NH, NH * D, D, layout);
        }
        out.push_back(y);
      }
      return out;
    };
  };
  return run_pair(side(false), side(true));
}

Outputs swiglu_case(const Shape& s) {
  const int64_t T = s.a, C = s.b, H = s.c;
  const Vec x = randn(T * C, 15), w1 = randn(H * C, 16, 0.1f), w3 = randn(H * C, 17, 0.1f),
            w2 = randn(H * C, 18, 0.1f), dy = randn(T * C, 19);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(T * C), h1(T * H), h3(T * H), act(T * H), dx(T * C, 0.f), g1(H * C, 0.f), g3(H * C, 0.f), g2(H * C, 0.f);
      (gpu ? cuda::swiglu_forward : ref::swiglu_forward)(y.data(), h1.data(), h3.data(), act.data(), x.data(),
                                                         w1.data(), w3.data(), w2.data(), T, C, H,
                                                         ref::LinearPrecision{});
      (gpu ? cuda::swiglu_backward : ref::swiglu_backward)(dx.data(), g1.data(), g3.data(), g2.data(), dy.data(),
                                                           h1.data(), h3.data(), act.data(), x.data(), w1.data(),
                                                           w3.data(), w2.data(), T, C, H,
                                                           ref::LinearPrecision{});
      return std::vector<Vec>{y, dx, g1, g3, g2};
    };
  };
  return run_pair(side(false), side(true));
}

Outputs gelu_mlp_case(const Shape& s, ref::LinearPrecision p) {
  const int64_t T = s.a, C = s.b, H = s.c;
  const Vec x = randn(T * C, 20), w1 = randn(H * C, 21, 0.1f), b1 = randn(H, 22), w2 = randn(H * C, 23, 0.1f),
            b2 = randn(C, 24), dy = randn(T * C, 25);
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(T * C), h(T * H), act(T * H), dx(T * C, 0.f), g1(H * C, 0.f), c1(H, 0.f), g2(H * C, 0.f), c2(C, 0.f);
      if (gpu) {
        cuda::gelu_mlp_forward(y.data(), h.data(), act.data(), x.data(), w1.data(), b1.data(), w2.data(), b2.data(),
                               T, C, H, p);
        cuda::gelu_mlp_backward(dx.data(), g1.data(), c1.data(), g2.data(), c2.data(), dy.data(), h.data(),
                                act.data(), x.data(), w1.data(), w2.data(), T, C, H, p);
      } else {
        ref::gelu_mlp_forward(y.data(), h.data(), act.data(), x.data(), w1.data(), b1.data(), w2.data(), b2.data(), T,
                              C, H, p);
        ref::gelu_mlp_backward(dx.data(), g1.data(), c1.data(), g2.data(), c2.data(), dy.data(), h.data(), act.data(),
                               x.data(), w1.data(), w2.data(), T, C, H, p);
      }
      return std::vector<Vec>{y, h, dx, g1, c1, g2, c2};
    };
  };
  return run_pair(side(false), side(true));
}

Outputs gqa_case(const Shape& s, ref::LinearPrecision p) {
  // (T, C, ·): 6 query heads over 3 key/value heads of 10, qk-norm, gate, bias, softcap, 2 documents.
  const ref::GqaDims d{s.a, s.b, 6, 3, 10};
  ref::GqaOptions opt;
  opt.qk_norm = true, opt.output_gate = true, opt.bias = true, opt.softcap = 30.0f, opt.precision = p;
  int64_t total = 0;
  for (int64_t n : ref::gqa_weight_sizes(d, opt)) total += n;
  Vec flat = randn(total, 26, 0.1f);
  const ref::GqaWeights w = ref::gqa_weights_view(flat.data(), d, opt);
  const Vec x = randn(d.T * d.C, 27), dy = randn(d.T * d.C, 28);
  const ref::RopeTable rope = yarn_table(d.Dh, d.T);
  std::vector<std::int32_t> doc(d.T);
  for (int64_t t = 0; t < d.T; ++t) doc[t] = t < d.T / 2 ? 0 : 1;
  auto side = [&](bool gpu) {
    return [&, gpu] {
      Vec y(d.T * d.C), dx(d.T * d.C, 0.f), dflat(flat.size(), 0.f);
      const ref::GqaWeights dw = ref::gqa_weights_view(dflat.data(), d, opt);
      ref::GqaCache cache;
      (gpu ? cuda::gqa_forward : ref::gqa_forward)(y.data(), cache, x.data(), w, doc.data(), nullptr, rope, opt, d);
      (gpu ? cuda::gqa_backward : ref::gqa_backward)(dx.data(), dw, dy.data(), cache, x.data(), w, doc.data(),
                                                     nullptr, rope, opt, d);
      return std::vector<Vec>{y, cache.p, dx, dflat};
    };
  };
  return run_pair(side(false), side(true));
}

struct Layer {
  const char* name;
  std::vector<Shape> (*shapes)(const std::string&);
  LayerFn run;
};

std::vector<Layer> all_layers() {
  const ref::LinearPrecision fp32{}, bf16{ref::Precision::bf16, false}, fp8{ref::Precision::fp8, false},
      fp8_ue8m0{ref::Precision::fp8, true};
  return {
      {"matmul", gemm_shapes, [=](const Shape& s) { return linear_case(s, fp32); }},
      {"linear_bf16", gemm_shapes, [=](const Shape& s) { return linear_case(s, bf16); }},
      {"linear_fp8", gemm_shapes, [=](const Shape& s) { return linear_case(s, fp8); }},
      {"linear_fp8_ue8m0", gemm_shapes, [=](const Shape& s) { return linear_case(s, fp8_ue8m0); }},
      {"embedding", row_shapes, embedding_case},
      {"rmsnorm", row_shapes, rmsnorm_case},
      {"layernorm", row_shapes, layernorm_case},
      {"rope", row_shapes, rope_case},
      {"swiglu", ffn_shapes, swiglu_case},
      {"gelu_mlp", ffn_shapes, [=](const Shape& s) { return gelu_mlp_case(s, fp32); }},
      {"gelu_mlp_fp8", ffn_shapes, [=](const Shape& s) { return gelu_mlp_case(s, fp8); }},
      {"gqa", row_shapes, [=](const Shape& s) { return gqa_case({s.a < 130 ? s.a : 130, 33, 0}, fp32); }},
      {"gqa_bf16", row_shapes, [=](const Shape& s) { return gqa_case({s.a < 130 ? s.a : 130, 33, 0}, bf16); }},
  };
}

std::string shape_name(const Shape& s) {
  std::string n = std::to_string(s.a) + "x" + std::to_string(s.b);
  if (s.c) n += "x" + std::to_string(s.c);
  return n;
}

bool selected(const std::string& list, const std::string& name) {
  if (list == "all") return true;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (item == name) return true;
  return false;
}

// One printed row: text columns, and the same values for --json.
struct Row {
  std::string layer, shape, result;
  bool ok = true;
  nlohmann::json detail;  // tensors compared / differing, or max error and bound
  double cpu_ms = 0, gpu_ms = 0;
};

int report(const ParityOptions& o, const std::string& device, const std::vector<Row>& rows,
           const std::string& note) {
  int failures = 0;
  for (const Row& r : rows) failures += !r.ok;
  const bool deterministic = o.mode == "deterministic";
  if (o.json) {
    nlohmann::json j;
    j["device"] = device, j["mode"] = o.mode, j["config"] = o.config;
    if (!note.empty()) j["note"] = note;
    j["rows"] = nlohmann::json::array();
    for (const Row& r : rows) {
      nlohmann::json row = {{"layer", r.layer}, {"shape", r.shape}, {"ok", r.ok}, {"cpu_ms", r.cpu_ms},
                            {"gpu_ms", r.gpu_ms}};
      row.update(r.detail);
      j["rows"].push_back(row);
    }
    j["failures"] = failures;
    j["passed"] = failures == 0;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("device: %s, mode %s, config %s\n", device.c_str(), o.mode.c_str(), o.config.c_str());
    if (!note.empty()) std::printf("note: %s\n", note.c_str());
    if (deterministic) {
      std::printf("%-18s %-16s %-28s %10s %10s\n", "layer", "shape", "result (fwd+bwd outputs)", "CPU ms", "GPU ms");
      for (const Row& r : rows)
        std::printf("%-18s %-16s %-28s %10.2f %10.2f\n", r.layer.c_str(), r.shape.c_str(), r.result.c_str(), r.cpu_ms,
                    r.gpu_ms);
    } else {
      std::printf("%-18s %-16s %-14s %-14s %-8s %10s %10s\n", "layer", "shape", "max |err|", "bound there", "result",
                  "CPU ms", "GPU ms");
      for (const Row& r : rows)
        std::printf("%-18s %-16s %-14.3e %-14.3e %-8s %10.2f %10.2f\n", r.layer.c_str(), r.shape.c_str(),
                    r.detail["max_abs_error"].get<double>(), r.detail["bound_there"].get<double>(), r.result.c_str(),
                    r.cpu_ms, r.gpu_ms);
    }
    std::printf("%s\n", failures ? "parity: FAILED" : deterministic ? "parity: all bit-equal" : "parity: all within bounds");
  }
  return failures ? 1 : 0;
}

int run_deterministic(const ParityOptions& o, const std::string& device) {
  const std::vector<Layer> layers = all_layers();
  std::stringstream ss(o.layers);
  if (o.layers != "all")
    for (std::string item; std::getline(ss, item, ',');) {
      bool known = false;
      for (const Layer& l : layers) known = known || item == l.name;
      if (!known) fail("--layers: unknown layer '", item, "'");
    }
  std::vector<Row> rows;
  for (const Layer& l : layers) {
    if (!selected(o.layers, l.name)) continue;
    for (const Shape& s : l.shapes(o.config)) {
      const Outputs out = l.run(s);
      int differing = 0;
      for (const auto& [a, b] : out.pairs)
        if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0) ++differing;
      char res[64];
      if (differing == 0) std::snprintf(res, sizeof res, "bit-equal (%zu tensors)", out.pairs.size());
      else std::snprintf(res, sizeof res, "DIFFERS (%d of %zu tensors)", differing, out.pairs.size());
      rows.push_back({l.name, shape_name(s), res, differing == 0,
                      {{"tensors", out.pairs.size()}, {"differing", differing}}, out.cpu_ms, out.gpu_ms});
    }
  }
  return report(o, device, rows, "");
}

int run_fast(const ParityOptions& o, const std::string& device) {
  if (!selected(o.layers, "matmul")) fail("--mode fast covers matmul only so far (cuBLAS BF16 GEMM); use --layers matmul");
  const std::string note =
      o.layers == "all" ? "fast mode covers matmul only (cuBLAS BF16 GEMM); other layers skipped" : "";
  std::vector<Row> rows;
  for (const Shape& s : gemm_shapes(o.config)) {
    const int64_t M = s.a, N = s.b, K = s.c;
    const Vec x = randn(M * K, 1), w = randn(N * K, 2, 0.05f);
    Vec y_ref(M * N), y_fast(M * N);
    const double cpu_ms = time_ms([&] {
      ref::linear_forward(y_ref.data(), x.data(), w.data(), nullptr, M, N, K, {ref::Precision::bf16, false});
    });
    const double gpu_ms = time_ms([&] { cuda::matmul_forward_cublas_bf16(y_fast.data(), x.data(), w.data(), M, N, K); });
    const std::vector<double> bound = cuda::fast_gemm_bound(x.data(), w.data(), M, N, K);
    double worst_ratio = 0, worst_err = 0, worst_bound = 0;
    bool ok = true;
    for (std::size_t i = 0; i < y_ref.size(); ++i) {
      const double err = std::fabs(double(y_fast[i]) - double(y_ref[i]));
      ok = ok && err <= bound[i];
      const double ratio = bound[i] > 0 ? err / bound[i] : (err > 0 ? 1e300 : 0);
      if (ratio >= worst_ratio) worst_ratio = ratio, worst_err = err, worst_bound = bound[i];
    }
    rows.push_back({"matmul_bf16_cublas", shape_name(s), ok ? "within" : "EXCEEDS", ok,
                    {{"max_abs_error", worst_err}, {"bound_there", worst_bound}}, cpu_ms, gpu_ms});
  }
  return report(o, device, rows, note);
}

void copy_message(const char* what, char* error, std::size_t error_size) {
  if (error_size == 0) return;
  std::snprintf(error, error_size, "%s", what);
}

}  // namespace

}  // namespace preflight::cli

// The one entry point (cli/cuda_cli_abi.hpp). Nothing is thrown across the library
// boundary: errors come back as a status and one line of text.
extern "C" PREFLIGHT_CUDA_CLI_EXPORT int preflight_cuda_cli_parity(const PreflightParityArgs* args, char* error,
                                                                   std::size_t error_size) {
  using namespace preflight::cli;
  try {
    ParityOptions o{args->layers, args->mode, args->config, args->json != 0};
    if (preflight::cuda::visible_device_count() == 0)
      preflight::fail("no CUDA device visible; `preflight parity` needs a GPU");
    const std::string device = preflight::cuda::device_description();
    return o.mode == "fast" ? run_fast(o, device) : run_deterministic(o, device);
  } catch (const preflight::Error& e) {
    copy_message(e.what(), error, error_size);
  } catch (const std::bad_alloc&) {
    copy_message("out of memory", error, error_size);
  } catch (const std::exception& e) {
    copy_message((std::string("internal error in the CUDA path: ") + e.what()).c_str(), error, error_size);
    return PREFLIGHT_CUDA_CLI_INTERNAL_ERROR;
  }
  return PREFLIGHT_CUDA_CLI_ERROR;
}

extern "C" PREFLIGHT_CUDA_CLI_EXPORT int preflight_cuda_cli_abi_version() { return PREFLIGHT_CUDA_CLI_ABI_VERSION; }
