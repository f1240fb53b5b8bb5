// Presets load and validate; invalid layouts fail with one message naming the constraint.
#include <gtest/gtest.h>

#include <cstdio>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/core/presets.hpp"
#include "sim/api.hpp"

namespace preflight::sim {
namespace {

std::string error_of(const ModelConfig& m, const ClusterConfig& c, const LayoutConfig& l) {
  try {
    resolve_layout(m, c, l);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Configs, EveryPresetLoads) {
  for (const std::string& n : preset_names("hardware")) EXPECT_NO_THROW(load_cluster(n)) << n;
  for (const std::string& n : preset_names("layouts")) EXPECT_NO_THROW(load_layout(n)) << n;
  EXPECT_GE(preset_names("hardware").size(), 4u);
}

TEST(Configs, DeepSeekLayoutResolves) {
  const ModelConfig m = load_model_config("deepseek-v3-671b");
  const ResolvedLayout r = resolve_layout(m, load_cluster("h800-2048"), load_layout("deepseek-v3-dualpipe"));
  EXPECT_EQ(r.dp, 128);
  EXPECT_EQ(r.expert_dp, 2);
  EXPECT_EQ(r.microbatches, 120);
  EXPECT_EQ(r.ep_nodes, 8);
  EXPECT_EQ(r.num_stages, 16);
  const ResolvedLayout seed = resolve_layout(m, load_cluster("h800-2048"), load_layout("seed-pp16-ep32-dp4"));
  EXPECT_EQ(seed.expert_dp, 4);
}

TEST(Configs, ConstraintViolationsAreNamed) {
  const ModelConfig m = load_model_config("deepseek-v3-671b");
  const ClusterConfig c = load_cluster("h800-2048");
  const LayoutConfig base = load_layout("deepseek-v3-dualpipe");
  LayoutConfig l = base;
  l.stage_layers.clear();
  EXPECT_NE(error_of(m, c, l).find("not divisible into 16 model stages"), std::string::npos) << error_of(m, c, l);
  l = base;
  l.ep = 48;
  EXPECT_NE(error_of(m, c, l).find("does not divide n_routed_experts = 256"), std::string::npos) << error_of(m, c, l);
  l = base;
  l.dp = 64;
  EXPECT_NE(error_of(m, c, l).find("GPU count mismatch"), std::string::npos) << error_of(m, c, l);
  l = base;
  l.pp = 15;
  l.dp = 0;
  EXPECT_NE(error_of(m, c, l).find("GPU count mismatch"), std::string::npos) << error_of(m, c, l);
  ClusterConfig c2 = c;
  c2.num_gpus = 1920;  // pp 15 -> dp 128
  EXPECT_NE(error_of(m, c2, l).find("even pp"), std::string::npos) << error_of(m, c2, l);
  l = base;
  l.global_batch_size = 1280;  // 10 micro-batches < 2·pp
  EXPECT_NE(error_of(m, c, l).find("too few micro-batches"), std::string::npos) << error_of(m, c, l);
  l = base;
  l.stage_layers[0] = 5;
  EXPECT_NE(error_of(m, c, l).find("sums to 62"), std::string::npos) << error_of(m, c, l);
}

TEST(Configs, UnknownFieldsAndBadValuesAreRejected) {
  nlohmann::json j = nlohmann::json::parse(*preset_text("layouts", "deepseek-v3-dualpipe"));
  j["pipline"] = 4;
  EXPECT_THROW(layout_from_json(j, "test"), Error);
  j.erase("pipline");
  j["schedule"] = "2f2b";
  try {
    layout_from_json(j, "test");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'schedule'"), std::string::npos) << e.what();
  }
  j["schedule"] = "dualpipe";
  j["attention_kernel"] = "fused";
  EXPECT_THROW(layout_from_json(j, "test"), Error);
  j["attention_kernel"] = "unfused";
  j["sequence_parallel"] = 1;
  EXPECT_THROW(layout_from_json(j, "test"), Error);
  j["sequence_parallel"] = false;
  j["dropout"] = true;
  const LayoutConfig l = layout_from_json(j, "test");
  EXPECT_EQ(l.attention_kernel, AttentionKernel::unfused);
  EXPECT_FALSE(l.sequence_parallel);
  EXPECT_TRUE(l.dropout);
  // Defaults: sequence parallelism on (it matters with tp > 1), flash attention, no dropout.
  const LayoutConfig d;
  EXPECT_TRUE(d.sequence_parallel);
  EXPECT_EQ(d.attention_kernel, AttentionKernel::flash);
  EXPECT_FALSE(d.dropout);
  nlohmann::json h = nlohmann::json::parse(*preset_text("hardware", "h800-2048"));
  h["gemm_efficiency"] = 1.5;
  EXPECT_THROW(cluster_from_json(h, "test"), Error);
}

// Every size is range-checked before it enters a product: the fuzzed layouts with
// pp = tp = 2^32 or micro_batch_size = 2^62 used to overflow int64 and then divide by 0.
TEST(Configs, HugeLayoutSizesAreRefusedByName) {
  const ModelConfig m = load_model_config("deepseek-v3-671b");
  const ClusterConfig c = load_cluster("h800-2048");
  const LayoutConfig base = load_layout("deepseek-v3-dualpipe");
  struct Case {
    const char* field;
    int64_t LayoutConfig::*member;
    int64_t value;
  };
  const int64_t big = int64_t{1} << 62;
  for (const Case& k : {Case{"pp", &LayoutConfig::pp, int64_t{1} << 32}, Case{"tp", &LayoutConfig::tp, int64_t{1} << 32},
                        Case{"micro_batch_size", &LayoutConfig::micro_batch_size, big},
                        Case{"global_batch_size", &LayoutConfig::global_batch_size, big},
                        Case{"vpp", &LayoutConfig::vpp, big}, Case{"ep", &LayoutConfig::ep, big},
                        Case{"dp", &LayoutConfig::dp, big}, Case{"seq_len", &LayoutConfig::seq_len, big},
                        Case{"zero_stage", &LayoutConfig::zero_stage, big},
                        Case{"max_nodes_per_token", &LayoutConfig::max_nodes_per_token, big},
                        Case{"weight_bytes", &LayoutConfig::weight_bytes, big},
                        Case{"master_weight_bytes", &LayoutConfig::master_weight_bytes, big},
                        Case{"grad_bytes", &LayoutConfig::grad_bytes, big},
                        Case{"adam_moment_bytes", &LayoutConfig::adam_moment_bytes, big},
                        Case{"dispatch_bytes_per_elem", &LayoutConfig::dispatch_bytes_per_elem, big},
                        Case{"combine_bytes_per_elem", &LayoutConfig::combine_bytes_per_elem, big}}) {
    for (int64_t v : {k.value, -k.value, INT64_MIN, INT64_MAX}) {
      LayoutConfig l = base;
      l.*k.member = v;
      const std::string e = error_of(m, c, l);
      EXPECT_NE(e.find(std::string("'") + k.field + "'"), std::string::npos) << k.field << " = " << v << ": " << e;
      EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
  }
  LayoutConfig l = base;
  l.pp = int64_t{1} << 32;
  l.tp = int64_t{1} << 32;
  EXPECT_NE(error_of(m, c, l).find("'pp'"), std::string::npos) << error_of(m, c, l);
  // Entries of stage_layers near INT64_MAX must not overflow their sum.
  l = base;
  l.stage_layers.assign(16, INT64_MAX);
  EXPECT_NE(error_of(m, c, l).find("stage_layers"), std::string::npos) << error_of(m, c, l);
  // A global batch that makes the op lists gigabytes is refused before they are built.
  l = base;
  l.global_batch_size = int64_t{1} << 30;
  EXPECT_NE(error_of(m, c, l).find("micro-batches per pipeline"), std::string::npos) << error_of(m, c, l);
}

TEST(Configs, ClusterNumbersAreBounded) {
  const nlohmann::json base = nlohmann::json::parse(*preset_text("hardware", "h800-2048"));
  for (const char* f : {"bf16_tflops", "fp32_tflops", "hbm_bytes", "hbm_GBps", "nvlink_GBps", "ib_GBps",
                        "nvlink_latency_us", "ib_latency_us", "optimizer_bytes_per_param_step", "fp8_tflops",
                        "gemm_efficiency", "num_gpus", "gpus_per_node", "sm_count"}) {
    for (double v : {1e300, -1.0, 1e-300}) {
      nlohmann::json h = base;
      h[f] = v;
      if (std::string(f) == "num_gpus" || std::string(f) == "gpus_per_node" || std::string(f) == "sm_count")
        h[f] = v > 1 ? INT64_MAX : -1;
      if (v == 1e-300 && (std::string(f).find("latency") != std::string::npos ||
                          std::string(f) == "optimizer_bytes_per_param_step"))
        continue;  // tiny non-negative values are fine there
      try {
        cluster_from_json(h, "test.json");
        ADD_FAILURE() << f << " = " << v << " accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::string("'") + f + "'"), std::string::npos) << e.what();
      }
    }
  }
}

// nlohmann reports a number too large for a double as out_of_range, not parse_error:
// it must still be one line naming the file, not an internal error.
TEST(Configs, NumbersBeyondDoubleAreOneLineErrors) {
  const std::string dir = ::testing::TempDir();
  for (const auto& [kind, text] : std::vector<std::pair<std::string, std::string>>{
           {"hardware", R"({"format": "preflight-hardware/1", "num_gpus": 1e400})"},
           {"layout", R"({"format": "preflight-layout/1", "pp": 1e400})"},
           {"layout", R"({"format": "preflight-layout/1", "pp": -1e400})"}}) {
    const std::string path = dir + "/huge-" + kind + ".json";
    {
      FILE* f = std::fopen(path.c_str(), "w");
      ASSERT_NE(f, nullptr);
      std::fputs(text.c_str(), f);
      std::fclose(f);
    }
    try {
      if (kind == "hardware")
        load_cluster(path);
      else
        load_layout(path);
      ADD_FAILURE() << text << " accepted";
    } catch (const Error& e) {
      const std::string w = e.what();
      EXPECT_NE(w.find("huge-" + kind + ".json"), std::string::npos) << w;
      EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    }
  }
}

}  // namespace
}  // namespace preflight::sim
