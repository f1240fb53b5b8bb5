// SimReport::to_json: the machine-readable report. Every double is rounded to six
// significant digits so that goldens compare exactly and survive harmless changes in
// the last bits of a sum.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "sim/api.hpp"

namespace preflight::sim {

namespace {

double round6(double v) {
  if (v == 0 || !std::isfinite(v)) return v == 0 ? 0.0 : v;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

}  // namespace

std::vector<std::pair<std::string, double>> StageMemory::biggest() const {
  std::vector<std::pair<std::string, double>> v = {{"weights", weights_bytes},
                                                   {"grads", grads_bytes},
                                                   {"optimizer", optimizer_bytes},
                                                   {"activations", activations_bytes},
                                                   {"buffers", buffers_bytes}};
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return v;
}

nlohmann::json SimReport::to_json() const {
  using nlohmann::json;
  json j;
  j["format"] = "preflight-sim/1";
  j["inputs"] = {{"model", model},
                 {"cluster", cluster},
                 {"layout", layout},
                 {"schedule", schedule},
                 {"num_gpus", num_gpus},
                 {"pp", pp},
                 {"vpp", vpp},
                 {"tp", tp},
                 {"ep", ep},
                 {"dp", dp},
                 {"expert_dp", expert_dp},
                 {"zero_stage", zero_stage},
                 {"microbatches", microbatches},
                 {"micro_batch_size", micro_batch_size},
                 {"global_batch_size", global_batch_size},
                 {"seq_len", seq_len},
                 {"stage_layers", stage_layers}};
  j["step"] = {{"step_time_s", round6(step_time_s)},
               {"pipeline_time_s", round6(pipeline_time_s)},
               {"dp_exposed_s", round6(dp_exposed_s)},
               {"optimizer_s", round6(optimizer_s)},
               {"bubble_fraction", round6(bubble_fraction)},
               {"mfu", round6(mfu)},
               {"hfu", round6(hfu)},
               {"tokens_per_step", round6(tokens_per_step)},
               {"tokens_per_s_per_gpu", round6(tokens_per_s_per_gpu)},
               {"gpu_hours_per_trillion_tokens", round6(gpu_hours_per_trillion_tokens)},
               {"model_flops_per_step", round6(model_flops_per_step)},
               {"hardware_flops_per_step", round6(hardware_flops_per_step)},
               {"f_chunk_s", round6(f_chunk_s)},
               {"b_chunk_s", round6(b_chunk_s)},
               {"w_chunk_s", round6(w_chunk_s)},
               {"fb_pair_s", round6(fb_pair_s)}};
  json exposed = json::object();
  for (const auto& [k, v] : exposed_comm_s) exposed[k] = round6(v);
  j["exposed_comm_s"] = exposed;
  json ranks = json::array();
  for (const RankTime& r : this->ranks)
    ranks.push_back({{"rank", r.rank},
                     {"busy_s", round6(r.busy_s)},
                     {"idle_s", round6(r.idle_s)},
                     {"bubble_fraction", round6(r.bubble_fraction)},
                     {"compute_s", round6(r.compute_s)},
                     {"exposed_comm_s", round6(r.exposed_comm_s)}});
  j["ranks"] = ranks;
  json mem = json::array();
  for (const StageMemory& m : memory)
    mem.push_back({{"stage", m.stage},
                   {"weights_bytes", round6(m.weights_bytes)},
                   {"grads_bytes", round6(m.grads_bytes)},
                   {"optimizer_bytes", round6(m.optimizer_bytes)},
                   {"activations_bytes", round6(m.activations_bytes)},
                   {"buffers_bytes", round6(m.buffers_bytes)},
                   {"total_bytes", round6(m.total_bytes)},
                   {"capacity_bytes", round6(m.capacity_bytes)},
                   {"fits", m.fits}});
  j["memory"] = mem;
  j["fits"] = fits;
  j["checkpoint_bytes"] = round6(checkpoint_bytes);
  return j;
}

}  // namespace preflight::sim
