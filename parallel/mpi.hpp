// The MPI backend: real processes (mpirun / srun), one world rank per process. Every message
// carries its 64-bit preflight tag and length in a header and travels as one MPI message
// with a fixed MPI tag; the receiver keeps messages that arrived for other tags, per source,
// in arrival order (MPI keeps the order between a pair), so the Comm layer's matching is the
// same as with threads. Sends are non-blocking (a collective where everyone sends first
// cannot deadlock on large messages); receives poll with a deadline, so a rank that stopped
// answering is named instead of waited for forever.
#pragma once

#include <memory>

#include "parallel/comm.hpp"

namespace preflight::parallel {

// True when this build has the MPI backend (OpenMPI found at configure time).
bool mpi_available();

// Initialises MPI on first use (finalised at exit) and returns the world transport; throws
// a one-line error in a build without MPI.
std::shared_ptr<Transport> mpi_world(double timeout_s = 60.0);

}  // namespace preflight::parallel
