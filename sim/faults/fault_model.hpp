// Fault model of a long training job: which failures arrive, how fast, how they are
// detected, what recovery costs and how much work each one throws away. Everything is
// read from an editable JSON file (configs/faults/*.json, format "preflight-faults/1");
// docs/FAULTS.md describes every field and the assumptions behind the presets.
//
// Units: times in seconds (_s) or hours (_h), sizes in bytes (_bytes), bandwidths in
// GB/s (_GBps, 1 GB = 1e9 bytes), rates per hour of wall-clock time.
//
// Rate scaling. A class's rate is given for the reference job it was measured on
// (GPU count and days, e.g. Llama 3: 16384 GPUs, 54 days). It is moved to the
// simulated job by its `scaling`:
//   per_gpu : rate ∝ GPU count (every GPU/host/NIC is an independent source of failures)
//   fabric  : rate ∝ GPU count × switch tiers the job spans (a 2048-GPU job fits in a
//             2-tier fat tree of radix-64 switches; 16384 GPUs need 3 tiers)
//   per_job : rate independent of GPU count (operator decisions, data/optimiser events)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace preflight::faults {

enum class Scaling { per_gpu, fabric, per_job };

// How the job learns that something went wrong.
enum class Detection {
  crash,           // the process dies or the node reports an error: detection_delay_s
  watchdog,        // a hang: the collective watchdog fires after watchdog_timeout_s
  cross_dp_check,  // silent corruption: the next cross-DP-rank gradient check that notices it
  loss_alert,      // loss spike: running-average alert, then an observation window, then rollback
  planned,         // planned maintenance: checkpoint on demand, then stop (no lost work)
};

struct FaultClass {
  std::string name;              // identifier, e.g. "faulty_gpu"
  std::string label;             // human-readable, e.g. "Faulty GPU"
  double rate_per_hour_ref = 0;  // events per wall-clock hour on the reference job
  Scaling scaling = Scaling::per_gpu;
  Detection detection = Detection::crash;
  double detection_delay_s = 0;  // crash only: time from fault to the job being torn down
  bool replace_node = false;     // the node must be swapped (hot spare) or repaired first
  double extra_downtime_s = 0;   // class-specific outage on top of the restart (reroute, triage, maintenance window)
};

struct CheckpointPlan {
  double interval_s = 1800;          // training time between checkpoint starts
  bool async = true;                 // async: stall only for the snapshot, write in the background
  double size_bytes = 0;             // whole-job checkpoint; 0 = derive from the model (params × bytes_per_param)
  double bytes_per_param = 8;        // derived size: e.g. fp32 master (4) + bf16 Adam moments (2 + 2)
  double write_GBps = 2000;          // aggregate storage write bandwidth
  double read_GBps = 2000;           // aggregate storage read bandwidth (checkpoint load)
  double async_stall_s = 2;          // async: training stall to snapshot state to host memory
  int64_t keep_last = 3;             // checkpoints retained (newest first)
  int64_t keep_every_n = 0;          // additionally keep every n-th checkpoint forever (0 = none)

  double write_s() const { return size_bytes / (write_GBps * 1e9); }
  double read_s() const { return size_bytes / (read_GBps * 1e9); }
  // Training stall per checkpoint: the whole write when synchronous, the snapshot when async.
  double stall_s() const { return async ? async_stall_s : write_s(); }
};

struct RecoveryPlan {
  double requeue_s = 90;        // scheduler re-queues the job
  double rendezvous_s = 30;     // ranks find each other, communicators are built
  double warmup_s = 60;         // process start, first steps until full speed
  double spare_swap_s = 60;     // swap a failed node for a hot spare
  int64_t hot_spare_nodes = 8;  // spare nodes held by the job
  double repair_h = 48;         // a failed node is back in the spare pool after this
};

struct DetectionPlan {
  double watchdog_timeout_s = 600;          // collective hang watchdog
  double cross_dp_check_interval_s = 600;   // training time between cross-DP gradient checks
  double cross_dp_detect_probability = 0.9; // chance one check notices an ongoing corruption
  double loss_alert_steps = 20;             // steps for the running average to cross the alert threshold
  double loss_observe_steps = 100;          // steps watched after skip-and-clip before rolling back
};

struct JobShape {
  int64_t gpus = 2048;
  int64_t gpus_per_node = 8;
  int64_t switch_radix = 64;  // ports per fabric switch, for the `fabric` scaling
};

struct FaultModel {
  std::string name;         // preset name or file
  std::string description;  // free text from the file
  int64_t reference_gpus = 0;
  double reference_days = 0;
  std::string reference_source;
  JobShape job;
  CheckpointPlan checkpoint;
  RecoveryPlan recovery;
  DetectionPlan detection;
  std::vector<FaultClass> classes;
};

// NAME|PATH: an existing file wins, else a preset in configs/faults/.
FaultModel load_fault_model(const std::string& name_or_path);
// Parses and validates; every error is one line naming `origin`, the field and what was expected.
FaultModel parse_fault_model(const std::string& json_text, const std::string& origin);
nlohmann::json to_json(const FaultModel& model);
// Re-checks every field (after command-line overrides); throws preflight::Error.
void validate(const FaultModel& model, const std::string& origin);

const char* to_string(Scaling s);
const char* to_string(Detection d);

// Fat-tree tiers needed to connect `gpus` endpoints with radix-k switches:
// 1 tier: k, 2 tiers: k²/2, 3 tiers: k³/4, ...
int64_t fabric_tiers(int64_t gpus, int64_t switch_radix);

// Rate of one class on the simulated job, events per wall-clock hour.
double job_rate_per_hour(const FaultModel& model, const FaultClass& c);
// Same, per GPU-hour of the simulated job (for reporting).
double job_rate_per_gpu_hour(const FaultModel& model, const FaultClass& c);

}  // namespace preflight::faults
