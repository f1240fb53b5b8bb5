// Parsing, validation and rate scaling of the fault model (see fault_model.hpp).
#include "sim/faults/fault_model.hpp"

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"
#include "reference/core/json_fields.hpp"
#include "reference/core/presets.hpp"

namespace preflight::faults {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "preflight-faults/1";

constexpr double kBig = 1e12;

Scaling scaling_from(const std::string& s) {
  if (s == "per_gpu") return Scaling::per_gpu;
  if (s == "fabric") return Scaling::fabric;
  return Scaling::per_job;
}

Detection detection_from(const std::string& s) {
  if (s == "crash") return Detection::crash;
  if (s == "watchdog") return Detection::watchdog;
  if (s == "cross_dp_check") return Detection::cross_dp_check;
  if (s == "loss_alert") return Detection::loss_alert;
  return Detection::planned;
}

void check_range(const std::string& origin, const std::string& field, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi) || !std::isfinite(value))
    fail(origin, ": field '", field, "' = ", value, ": expected a number in [", lo, ", ", hi, "]");
}

}  // namespace

const char* to_string(Scaling s) {
  switch (s) {
    case Scaling::per_gpu: return "per_gpu";
    case Scaling::fabric: return "fabric";
    case Scaling::per_job: return "per_job";
  }
  return "?";
}

const char* to_string(Detection d) {
  switch (d) {
    case Detection::crash: return "crash";
    case Detection::watchdog: return "watchdog";
    case Detection::cross_dp_check: return "cross_dp_check";
    case Detection::loss_alert: return "loss_alert";
    case Detection::planned: return "planned";
  }
  return "?";
}

int64_t fabric_tiers(int64_t gpus, int64_t switch_radix) {
  // A t-tier fat tree of radix-k switches connects 2·(k/2)^t endpoints.
  const double half = static_cast<double>(switch_radix) / 2.0;
  double reach = static_cast<double>(switch_radix);
  int64_t tiers = 1;
  while (reach < static_cast<double>(gpus) && tiers < 16) {
    reach *= half;
    ++tiers;
  }
  return tiers;
}

double job_rate_per_hour(const FaultModel& m, const FaultClass& c) {
  const double gpu_ratio = static_cast<double>(m.job.gpus) / static_cast<double>(m.reference_gpus);
  switch (c.scaling) {
    case Scaling::per_gpu: return c.rate_per_hour_ref * gpu_ratio;
    case Scaling::fabric:
      return c.rate_per_hour_ref * gpu_ratio * static_cast<double>(fabric_tiers(m.job.gpus, m.job.switch_radix)) /
             static_cast<double>(fabric_tiers(m.reference_gpus, m.job.switch_radix));
    case Scaling::per_job: return c.rate_per_hour_ref;
  }
  return 0;
}

double job_rate_per_gpu_hour(const FaultModel& m, const FaultClass& c) {
  return job_rate_per_hour(m, c) / static_cast<double>(m.job.gpus);
}

void validate(const FaultModel& m, const std::string& origin) {
  if (m.reference_gpus < 1 || m.reference_gpus > 10000000)
    fail(origin, ": field 'reference.gpus' = ", m.reference_gpus, ": expected an integer in [1, 10000000]");
  check_range(origin, "reference.days", m.reference_days, 1e-6, 1e5);
  if (m.job.gpus < 1 || m.job.gpus > 10000000) fail(origin, ": field 'job.gpus' = ", m.job.gpus, ": expected an integer in [1, 10000000]");
  if (m.job.gpus_per_node < 1 || m.job.gpus_per_node > 1024 || m.job.gpus % m.job.gpus_per_node != 0)
    fail(origin, ": field 'job.gpus_per_node' = ", m.job.gpus_per_node, ": expected a positive divisor of job.gpus (", m.job.gpus, ")");
  if (m.job.switch_radix < 4 || m.job.switch_radix > 1024 || m.job.switch_radix % 2 != 0)
    fail(origin, ": field 'job.switch_radix' = ", m.job.switch_radix, ": expected an even integer in [4, 1024]");
  const CheckpointPlan& c = m.checkpoint;
  check_range(origin, "checkpoint.interval_s", c.interval_s, 1, 1e8);
  check_range(origin, "checkpoint.size_bytes", c.size_bytes, 0, 1e18);
  check_range(origin, "checkpoint.bytes_per_param", c.bytes_per_param, 0.125, 64);
  check_range(origin, "checkpoint.write_GBps", c.write_GBps, 1e-6, 1e9);
  check_range(origin, "checkpoint.read_GBps", c.read_GBps, 1e-6, 1e9);
  check_range(origin, "checkpoint.async_stall_s", c.async_stall_s, 0, 1e6);
  if (c.keep_last < 1 || c.keep_last > 1000000) fail(origin, ": field 'checkpoint.keep_last' = ", c.keep_last, ": expected an integer in [1, 1000000]");
  if (c.keep_every_n < 0 || c.keep_every_n > 1000000000)
    fail(origin, ": field 'checkpoint.keep_every_n' = ", c.keep_every_n, ": expected an integer in [0, 1000000000] (0 = none)");
  const RecoveryPlan& r = m.recovery;
  check_range(origin, "recovery.requeue_s", r.requeue_s, 0, 1e7);
  check_range(origin, "recovery.rendezvous_s", r.rendezvous_s, 0, 1e7);
  check_range(origin, "recovery.warmup_s", r.warmup_s, 0, 1e7);
  check_range(origin, "recovery.spare_swap_s", r.spare_swap_s, 0, 1e7);
  if (r.hot_spare_nodes < 0 || r.hot_spare_nodes > 1000000)
    fail(origin, ": field 'recovery.hot_spare_nodes' = ", r.hot_spare_nodes, ": expected an integer in [0, 1000000]");
  check_range(origin, "recovery.repair_h", r.repair_h, 0, 1e5);
  const DetectionPlan& d = m.detection;
  check_range(origin, "detection.watchdog_timeout_s", d.watchdog_timeout_s, 0, 1e7);
  check_range(origin, "detection.cross_dp_check_interval_s", d.cross_dp_check_interval_s, 1, 1e8);
  check_range(origin, "detection.cross_dp_detect_probability", d.cross_dp_detect_probability, 1e-6, 1);
  check_range(origin, "detection.loss_alert_steps", d.loss_alert_steps, 0, 1e7);
  check_range(origin, "detection.loss_observe_steps", d.loss_observe_steps, 0, 1e7);
  if (m.classes.empty()) fail(origin, ": field 'classes' is empty: expected at least one failure class");
  std::set<std::string> names;
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const FaultClass& f = m.classes[i];
    const std::string at = "classes[" + std::to_string(i) + "]";
    if (f.name.empty()) fail(origin, ": field '", at, ".name' is empty: expected an identifier");
    if (!names.insert(f.name).second) fail(origin, ": field '", at, ".name' = \"", f.name, "\": expected a unique name (used twice)");
    check_range(origin, at + ".rate", f.rate_per_hour_ref, 0, 1e9);
    check_range(origin, at + ".detection_delay_s", f.detection_delay_s, 0, 1e7);
    check_range(origin, at + ".extra_downtime_s", f.extra_downtime_s, 0, 1e8);
  }
}

FaultModel parse_fault_model(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    // Also a number too large for a double (1e400), which nlohmann reports as out_of_range.
    fail(origin, ": not valid JSON: ", e.what());
  }
  JsonFields top(j, origin, "");
  const std::string format = top.text("format", "", true);
  if (format != kFormat) fail(origin, ": field 'format' = \"", format, "\": expected \"", kFormat, "\"");
  FaultModel m;
  m.description = top.text("description", "");
  top.text("comment", "");

  JsonFields ref(top.child("reference"), origin, "reference");
  m.reference_gpus = ref.integer("gpus", 0, 1, 10000000);
  if (m.reference_gpus == 0) fail(origin, ": field 'reference.gpus' is missing: expected the GPU count the rates were measured on");
  m.reference_days = ref.number("days", 0, 1e-6, 1e5, true);
  m.reference_source = ref.text("source", "");
  ref.reject_unknown();

  JsonFields job(top.child("job"), origin, "job");
  m.job.gpus = job.integer("gpus", m.reference_gpus, 1, 10000000);
  m.job.gpus_per_node = job.integer("gpus_per_node", 8, 1, 1024);
  m.job.switch_radix = job.integer("switch_radix", 64, 4, 1024);
  job.reject_unknown();

  JsonFields ck(top.child("checkpoint"), origin, "checkpoint");
  CheckpointPlan& c = m.checkpoint;
  c.interval_s = ck.number("interval_s", c.interval_s, 1, 1e8);
  c.async = ck.choice("mode", "async", {"async", "sync"}) == "async";
  c.size_bytes = ck.number("size_bytes", 0, 0, 1e18);
  c.bytes_per_param = ck.number("bytes_per_param", c.bytes_per_param, 0.125, 64);
  c.write_GBps = ck.number("write_GBps", c.write_GBps, 1e-6, 1e9);
  c.read_GBps = ck.number("read_GBps", c.read_GBps, 1e-6, 1e9);
  c.async_stall_s = ck.number("async_stall_s", c.async_stall_s, 0, 1e6);
  c.keep_last = ck.integer("keep_last", c.keep_last, 1, 1000000);
  c.keep_every_n = ck.integer("keep_every_n", c.keep_every_n, 0, 1000000000);
  ck.reject_unknown();

  JsonFields rc(top.child("recovery"), origin, "recovery");
  RecoveryPlan& r = m.recovery;
  r.requeue_s = rc.number("requeue_s", r.requeue_s, 0, 1e7);
  r.rendezvous_s = rc.number("rendezvous_s", r.rendezvous_s, 0, 1e7);
  r.warmup_s = rc.number("warmup_s", r.warmup_s, 0, 1e7);
  r.spare_swap_s = rc.number("spare_swap_s", r.spare_swap_s, 0, 1e7);
  r.hot_spare_nodes = rc.integer("hot_spare_nodes", r.hot_spare_nodes, 0, 1000000);
  r.repair_h = rc.number("repair_h", r.repair_h, 0, 1e5);
  rc.reject_unknown();

  JsonFields dt(top.child("detection"), origin, "detection");
  DetectionPlan& d = m.detection;
  d.watchdog_timeout_s = dt.number("watchdog_timeout_s", d.watchdog_timeout_s, 0, 1e7);
  d.cross_dp_check_interval_s = dt.number("cross_dp_check_interval_s", d.cross_dp_check_interval_s, 1, 1e8);
  d.cross_dp_detect_probability = dt.number("cross_dp_detect_probability", d.cross_dp_detect_probability, 1e-6, 1);
  d.loss_alert_steps = dt.number("loss_alert_steps", d.loss_alert_steps, 0, 1e7);
  d.loss_observe_steps = dt.number("loss_observe_steps", d.loss_observe_steps, 0, 1e7);
  dt.reject_unknown();


  const json& classes = top.child("classes");
  if (!classes.is_array() || classes.empty())
    fail(origin, ": field 'classes' ", classes.is_array() ? "is empty" : "is missing or not an array", ": expected a list of failure classes");
  const double ref_hours = m.reference_days * 24.0;
  for (size_t i = 0; i < classes.size(); ++i) {
    const std::string at = "classes[" + std::to_string(i) + "]";
    JsonFields cr(classes[i], origin, at);
    FaultClass f;
    f.name = cr.text("name", "", true);
    f.label = cr.text("label", f.name);
    cr.text("comment", "");
    const std::string scaling = cr.choice("scaling", "per_gpu", {"per_gpu", "fabric", "per_job"});
    f.scaling = scaling_from(scaling);
    const int given = int(cr.has("count")) + int(cr.has("rate_per_gpu_hour")) + int(cr.has("rate_per_job_hour"));
    if (given != 1)
      fail(origin, ": class '", f.name, "': expected exactly one of 'count' (events over the reference job), 'rate_per_gpu_hour', 'rate_per_job_hour' (", given, " given)");
    if (cr.has("count")) {
      f.rate_per_hour_ref = cr.number("count", 0, 0, kBig) / ref_hours;
    } else if (cr.has("rate_per_gpu_hour")) {
      if (f.scaling == Scaling::per_job)
        fail(origin, ": field '", at, ".rate_per_gpu_hour' given with scaling per_job: expected rate_per_job_hour");
      f.rate_per_hour_ref = cr.number("rate_per_gpu_hour", 0, 0, 1) * static_cast<double>(m.reference_gpus);
    } else {
      if (f.scaling != Scaling::per_job)
        fail(origin, ": field '", at, ".rate_per_job_hour' given with scaling ", scaling, ": expected rate_per_gpu_hour");
      f.rate_per_hour_ref = cr.number("rate_per_job_hour", 0, 0, kBig);
    }
    f.detection = detection_from(cr.choice("detection", "crash", {"crash", "watchdog", "cross_dp_check", "loss_alert", "planned"}));
    f.detection_delay_s = cr.number("detection_delay_s", 0, 0, 1e7);
    if (f.detection != Detection::crash && cr.has("detection_delay_s"))
      fail(origin, ": field '", at, ".detection_delay_s' only applies to detection \"crash\" (this class uses \"",
           to_string(f.detection), "\", whose delay comes from the 'detection' section)");
    f.replace_node = cr.boolean("replace_node", false);
    f.extra_downtime_s = cr.number("extra_downtime_s", 0, 0, 1e8);
    cr.reject_unknown();
    m.classes.push_back(f);
  }
  top.reject_unknown();
  validate(m, origin);
  return m;
}

FaultModel load_fault_model(const std::string& name_or_path) {
  std::string origin;
  const std::string text = load_preset_or_file("faults", name_or_path, &origin);
  FaultModel m = parse_fault_model(text, origin);
  m.name = name_or_path;
  return m;
}

nlohmann::json to_json(const FaultModel& m) {
  json j;
  j["format"] = kFormat;
  j["description"] = m.description;
  j["reference"] = {{"gpus", m.reference_gpus}, {"days", m.reference_days}, {"source", m.reference_source}};
  j["job"] = {{"gpus", m.job.gpus}, {"gpus_per_node", m.job.gpus_per_node}, {"switch_radix", m.job.switch_radix}};
  const CheckpointPlan& c = m.checkpoint;
  j["checkpoint"] = {{"interval_s", c.interval_s},     {"mode", c.async ? "async" : "sync"},
                     {"size_bytes", c.size_bytes},     {"bytes_per_param", c.bytes_per_param},
                     {"write_GBps", c.write_GBps},     {"read_GBps", c.read_GBps},
                     {"async_stall_s", c.async_stall_s}, {"keep_last", c.keep_last},
                     {"keep_every_n", c.keep_every_n}};
  const RecoveryPlan& r = m.recovery;
  j["recovery"] = {{"requeue_s", r.requeue_s},       {"rendezvous_s", r.rendezvous_s},
                   {"warmup_s", r.warmup_s},         {"spare_swap_s", r.spare_swap_s},
                   {"hot_spare_nodes", r.hot_spare_nodes}, {"repair_h", r.repair_h}};
  const DetectionPlan& d = m.detection;
  j["detection"] = {{"watchdog_timeout_s", d.watchdog_timeout_s},
                    {"cross_dp_check_interval_s", d.cross_dp_check_interval_s},
                    {"cross_dp_detect_probability", d.cross_dp_detect_probability},
                    {"loss_alert_steps", d.loss_alert_steps},
                    {"loss_observe_steps", d.loss_observe_steps}};
  json classes = json::array();
  for (const FaultClass& f : m.classes) {
    json cj = {{"name", f.name}, {"label", f.label}, {"scaling", to_string(f.scaling)}, {"detection", to_string(f.detection)},
               {"replace_node", f.replace_node}, {"extra_downtime_s", f.extra_downtime_s}};
    if (f.scaling == Scaling::per_job) {
      cj["rate_per_job_hour"] = f.rate_per_hour_ref;
    } else {
      cj["rate_per_gpu_hour"] = f.rate_per_hour_ref / static_cast<double>(m.reference_gpus);
    }
    if (f.detection == Detection::crash) cj["detection_delay_s"] = f.detection_delay_s;
    classes.push_back(cj);
  }
  j["classes"] = classes;
  return j;
}

}  // namespace preflight::faults
