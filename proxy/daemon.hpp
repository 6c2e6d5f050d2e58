#pragma once
// The daemon: worker threads, the listener, signals, and the shared registries.
//
// Threading model: `workers` threads, each running its own io_context (see worker_set). Each
// client session is a coroutine on one of them, so a session's objects (its sockets, buffers,
// and the server it leases) are touched by one thread at a time without locks. Pools are shared by
// all threads; each guards its state with a mutex held only for in-memory decisions, never across
// I/O. A server moves between sessions by hand-off under that mutex, which orders every use of it.
#include <memory>

#include <spdlog/logger.h>

#include "proxy/config/settings.hpp"

namespace sluice::proxy {

// Runs until SIGINT or SIGTERM. Returns the process exit code.
int run_daemon(const config::settings& settings, std::shared_ptr<spdlog::logger> log);

}  // namespace sluice::proxy
