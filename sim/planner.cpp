#include "sim/planner.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "reference/core/error.hpp"
#include "sim/sim_cache.hpp"

namespace preflight::sim {

std::vector<int64_t> balanced_stage_layers(int64_t layers, int64_t stages) {
  std::vector<int64_t> out(stages, layers / stages);
  int64_t extra = layers % stages;
  // Hand out the remainder from the middle outwards.
  for (int64_t i = 0; extra > 0 && i < stages; ++i) {
    const int64_t s = stages / 2 + ((i % 2 == 0) ? i / 2 : -(i + 1) / 2);
    if (s <= 0 || s >= stages - 1) continue;
    ++out[s];
    --extra;
  }
  for (int64_t s = 0; extra > 0; s = (s + 1) % stages, --extra) ++out[s];
  return out;
}

namespace {

// "layout 'x': global_batch_size = 7 is not ..." → the message after the origin.
std::string without_origin(const std::string& msg) {
  const std::string head = "layout '";
  if (msg.rfind(head, 0) == 0) {
    const size_t end = msg.find("': ");
    if (end != std::string::npos) return msg.substr(end + 3);
  }
  return msg;
}

// The values in a message as N, so that candidates rejected by one constraint count
// together; numbers that belong to a name or a formula stay ("1f1b", "2·pp", "zero3").
std::string numbers_as_n(const std::string& msg) {
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  std::string out;
  for (size_t i = 0; i < msg.size();) {
    if (!digit(msg[i]) || (i > 0 && (word_char(msg[i - 1]) || msg[i - 1] == '.'))) {
      out += msg[i++];
      continue;
    }
    size_t j = i;
    while (j < msg.size() && (digit(msg[j]) || (msg[j] == '.' && j + 1 < msg.size() && digit(msg[j + 1])))) ++j;
    if (j + 1 < msg.size() && (msg[j] == 'e' || msg[j] == 'E') && (digit(msg[j + 1]) || msg[j + 1] == '+' || msg[j + 1] == '-')) {
      size_t k = j + 1 + (digit(msg[j + 1]) ? 0 : 1);
      if (k < msg.size() && digit(msg[k])) {
        while (k < msg.size() && digit(msg[k])) ++k;
        j = k;
      }
    }
    const bool name = j < msg.size() && word_char(msg[j]);
    // "2·pp": a coefficient of a named quantity (U+00B7 is 0xC2 0xB7 in UTF-8).
    const bool coefficient = j + 2 < msg.size() && static_cast<unsigned char>(msg[j]) == 0xC2 &&
                             static_cast<unsigned char>(msg[j + 1]) == 0xB7 &&
                             std::isalpha(static_cast<unsigned char>(msg[j + 2]));
    out += name || coefficient ? msg.substr(i, j - i) : std::string("N");
    i = j;
  }
  return out;
}

}  // namespace

PlanResult plan(const ModelConfig& model, const ClusterConfig& cluster, const PlanOptions& o) {
  if (o.global_batch_size <= 0) fail("plan: global batch = ", o.global_batch_size, ": expected a positive integer");
  const int64_t seq = o.seq_len > 0 ? o.seq_len : model.max_position_embeddings;
  PlanResult result;
  std::vector<PlanEntry> fitting;
  std::map<std::string, Rejection> rejected;
  double closest_ratio = 0;
  SimCache cache(model, cluster);
  const bool moe = model.is_moe();
  const std::vector<Schedule> schedules = {Schedule::one_f_one_b, Schedule::interleaved_1f1b, Schedule::zb_h1,
                                           Schedule::dualpipe};
  std::vector<Precision> precisions = {Precision::bf16};
  if (cluster.fp8_tflops > 0) precisions.push_back(Precision::fp8);
  const std::vector<int64_t> pps = o.pp_values.empty() ? std::vector<int64_t>{1, 2, 4, 8, 16, 32} : o.pp_values;
  for (int64_t pp : pps) {
    for (int64_t tp : {1, 2, 4, 8}) {
      if (tp > cluster.gpus_per_node || cluster.num_gpus % (pp * tp) != 0) continue;
      const int64_t dp = cluster.num_gpus / (pp * tp);
      std::vector<int64_t> eps = {1};
      if (moe)
        for (int64_t ep = 2; ep <= std::min<int64_t>(dp, model.n_routed_experts); ep *= 2) eps.push_back(ep);
      for (int64_t ep : eps) {
        for (Schedule sched : schedules) {
          if (pp == 1 && sched != Schedule::one_f_one_b) continue;
          for (int64_t mbs : {1, 2, 4}) {
            for (Recompute rc : {Recompute::none, Recompute::selective, Recompute::full}) {
              for (Precision prec : precisions) {
                for (int64_t zero : {1, 3}) {
                  ++result.enumerated;
                  LayoutConfig l;
                  l.pp = pp;
                  l.tp = tp;
                  l.ep = ep;
                  l.vpp = sched == Schedule::interleaved_1f1b ? 2 : 1;
                  l.schedule = sched;
                  l.micro_batch_size = mbs;
                  l.global_batch_size = o.global_batch_size;
                  l.seq_len = seq;
                  l.recompute = rc;
                  l.precision = prec;
                  l.zero_stage = zero;
                  l.max_nodes_per_token = moe ? 4 : 0;
                  if (prec == Precision::fp8) {
                    l.dispatch_bytes_per_elem = 1;
                    l.adam_moment_bytes = 2;
                  }
                  const int64_t stages = pp * l.vpp;
                  if (model.num_hidden_layers % stages != 0)
                    l.stage_layers = balanced_stage_layers(model.num_hidden_layers, stages);
                  l.name = detail::concat("pp", pp, l.vpp > 1 ? "v2" : "", "-tp", tp, "-ep", ep, "-", to_string(sched),
                                          "-mbs", mbs, "-", to_string(rc), "-", to_string(prec), "-zero", zero);
                  try {
                    SimOptions so;
                    so.max_simulated_microbatches = 4 * pp;
                    so.stop_if_out_of_memory = true;
                    SimReport r = simulate(model, cluster, l, so, cache);
                    if (!r.fits) {
                      ++result.out_of_memory;
                      double peak = 0, capacity = 0;
                      for (const StageMemory& m : r.memory)
                        if (m.total_bytes > peak) {
                          peak = m.total_bytes;
                          capacity = m.capacity_bytes;
                        }
                      if (capacity > 0 && (closest_ratio == 0 || peak / capacity < closest_ratio)) {
                        closest_ratio = peak / capacity;
                        result.closest_oom_layout = l.name;
                        result.closest_oom_peak_bytes = peak;
                        result.closest_oom_capacity_bytes = capacity;
                      }
                      continue;
                    }
                    fitting.push_back(PlanEntry{l, std::move(r)});
                  } catch (const Error& e) {
                    ++result.invalid;
                    const std::string msg = without_origin(e.what());
                    Rejection& rj = rejected[numbers_as_n(msg)];
                    if (rj.count++ == 0) {
                      rj.example_layout = l.name;
                      rj.example_message = msg;
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  std::stable_sort(fitting.begin(), fitting.end(), [](const PlanEntry& a, const PlanEntry& b) {
    return a.report.step_time_s < b.report.step_time_s;
  });
  result.fit = static_cast<int64_t>(fitting.size());
  if (fitting.size() > o.top) fitting.resize(o.top);
  for (auto& [constraint, rj] : rejected) {
    rj.constraint = constraint;
    result.rejections.push_back(rj);
  }
  std::stable_sort(result.rejections.begin(), result.rejections.end(),
                   [](const Rejection& a, const Rejection& b) { return a.count > b.count; });
  result.best = std::move(fitting);
  return result;
}

}  // namespace preflight::sim
