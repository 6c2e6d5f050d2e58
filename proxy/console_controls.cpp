#include "proxy/console_controls.hpp"

namespace sluice::proxy {

void console_controls::pause(const std::optional<std::string>& database) {
  std::lock_guard lock(mutex_);
  if (database)
    paused_.insert(*database);
  else
    all_paused_ = true;
}

void console_controls::resume(const std::optional<std::string>& database) {
  std::lock_guard lock(mutex_);
  if (database) {
    paused_.erase(*database);
  } else {
    // As PgBouncer: RESUME without a database lifts every pause.
    all_paused_ = false;
    paused_.clear();
  }
}

void console_controls::disable(const std::string& database) {
  std::lock_guard lock(mutex_);
  disabled_.insert(database);
}

void console_controls::enable(const std::string& database) {
  std::lock_guard lock(mutex_);
  disabled_.erase(database);
}

bool console_controls::paused(std::string_view database) const {
  std::lock_guard lock(mutex_);
  return all_paused_ || paused_.contains(database);
}

bool console_controls::disabled(std::string_view database) const {
  std::lock_guard lock(mutex_);
  return disabled_.contains(database);
}

console_controls::view console_controls::load() const {
  std::lock_guard lock(mutex_);
  return {all_paused_, {paused_.begin(), paused_.end()}, {disabled_.begin(), disabled_.end()}};
}

}  // namespace sluice::proxy
