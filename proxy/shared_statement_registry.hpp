#pragma once
// The daemon's one statement registry, shared by every worker thread. The lock is taken once
// per named Parse a client sends, never per Bind or Execute, and never across I/O.
#include <mutex>

#include "pool/statement_registry.hpp"

namespace sluice::proxy {

class shared_statement_registry {
 public:
  // `context`: see statement_registry.
  pool::statement_ptr intern(std::string_view query, std::span<const std::uint32_t> types,
                             std::string_view context) {
    std::lock_guard lock(mutex_);
    return registry_.intern(query, types, context);
  }
  pool::statement_ptr intern_sql(std::string_view definition, std::string_view context) {
    std::lock_guard lock(mutex_);
    return registry_.intern_sql(definition, context);
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return registry_.size();
  }

 private:
  mutable std::mutex mutex_;  // guards registry_
  pool::statement_registry registry_;
};

}  // namespace sluice::proxy
