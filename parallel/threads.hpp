// The threads backend: the ranks of one world are threads of this process, messages are
// copied through per-(source, destination, tag) queues. It is the default for emulating a
// cluster on one machine and the reference the MPI and NCCL backends are tested against.
#pragma once

#include <functional>
#include <memory>

#include "parallel/comm.hpp"

namespace preflight::parallel {

struct ThreadsOptions {
  double timeout_s = 60.0;  // a receive waiting longer names the rank it waited for and throws
};

// Runs body(world) on `ranks` threads, one Comm each, and waits for all of them. When a
// rank throws, the world is marked failed (every rank blocked in or later entering a
// receive throws "rank R failed: ..."), and run_threads rethrows the first failure as a
// one-line preflight::Error naming its rank.
void run_threads(int ranks, const std::function<void(Comm&)>& body, const ThreadsOptions& options = {});

}  // namespace preflight::parallel
