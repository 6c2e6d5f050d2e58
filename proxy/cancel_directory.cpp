#include "proxy/cancel_directory.hpp"

#include <array>
#include <cstring>

#include "protocol/random.hpp"

namespace sluice::proxy {

pool::backend_key cancel_directory::enroll() {
  std::array<char, 4> random;
  protocol::random_bytes(random);  // the secret is what stops strangers cancelling queries
  std::uint32_t secret;
  std::memcpy(&secret, random.data(), sizeof secret);
  std::lock_guard lock(mutex_);
  const auto token = next_token_++;
  targets_.emplace(token, entry{});
  return registry_.mint(token, secret);
}

void cancel_directory::leave(const pool::backend_key& key) {
  std::lock_guard lock(mutex_);
  if (auto token = registry_.find(key)) targets_.erase(*token);
  registry_.erase(key);
}

void cancel_directory::set_target(const pool::backend_key& key,
                                  std::optional<cancel_target> target) {
  std::lock_guard lock(mutex_);
  if (auto token = registry_.find(key)) targets_[*token].target = target;
}

std::optional<cancel_target> cancel_directory::begin_cancel(const pool::backend_key& key) {
  std::lock_guard lock(mutex_);
  auto token = registry_.find(key);
  if (!token) return std::nullopt;
  auto it = targets_.find(*token);
  if (it == targets_.end() || !it->second.target) return std::nullopt;
  ++it->second.pending;
  return it->second.target;
}

void cancel_directory::end_cancel(const pool::backend_key& key) {
  std::lock_guard lock(mutex_);
  auto token = registry_.find(key);
  if (!token) return;
  if (auto it = targets_.find(*token); it != targets_.end() && it->second.pending > 0)
    --it->second.pending;
}

int cancel_directory::pending_cancels(const pool::backend_key& key) const {
  std::lock_guard lock(mutex_);
  auto token = registry_.find(key);
  if (!token) return 0;
  auto it = targets_.find(*token);
  return it == targets_.end() ? 0 : it->second.pending;
}

}  // namespace sluice::proxy
