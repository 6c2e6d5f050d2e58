#include "pool/cancel_registry.hpp"

#include <cstdint>
#include <limits>

namespace sluice::pool {
namespace {

constexpr std::uint32_t max_pid = std::numeric_limits<std::int32_t>::max();

}  // namespace

cancel_registry::cancel_registry(std::uint32_t first_pid)
    : next_pid_(first_pid == 0 || first_pid > max_pid ? 1 : first_pid) {}

backend_key cancel_registry::mint(client_token client, std::uint32_t secret) {
  // A counter rather than a random pid: uniqueness is then cheap, and the pid is no secret.
  // After wrapping, skip pids still live; fewer than max_pid keys are ever live at once.
  while (entries_.contains(next_pid_)) next_pid_ = next_pid_ == max_pid ? 1 : next_pid_ + 1;
  const std::uint32_t pid = next_pid_;
  next_pid_ = next_pid_ == max_pid ? 1 : next_pid_ + 1;
  entries_.emplace(pid, entry{secret, client});
  return {pid, secret};
}

std::optional<client_token> cancel_registry::find(const backend_key& key) const {
  auto it = entries_.find(key.process_id);
  if (it == entries_.end() || it->second.secret_key != key.secret_key) return std::nullopt;
  return it->second.client;
}

bool cancel_registry::erase(const backend_key& key) {
  auto it = entries_.find(key.process_id);
  if (it == entries_.end() || it->second.secret_key != key.secret_key) return false;
  entries_.erase(it);
  return true;
}

}  // namespace sluice::pool
