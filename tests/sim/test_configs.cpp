// Presets load and validate; invalid layouts fail with one message naming the constraint.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace preflight::sim
