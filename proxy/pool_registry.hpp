#pragma once
// All pools, keyed by (database, client user). Pools are created on first use and live until
// shutdown; lookups take a short lock and no I/O.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <spdlog/logger.h>

#include "proxy/asio.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/credentials.hpp"
#include "proxy/server_pool.hpp"

namespace sluice::proxy {

class pool_registry {
 public:
  pool_registry(worker_set& workers, const config::settings& settings,
                const credential_store& credentials, std::shared_ptr<spdlog::logger> log);

  // The pool for this pair, or an explanation why there can't be one (e.g. no password known
  // for the upstream login).
  struct lookup {
    std::shared_ptr<server_pool> pool;
    std::string problem;
  };
  lookup get(const config::database_settings& database, std::string_view user);

  // Opens pools whose min_size asks for warm servers before any client arrives.
  void warm_up();
  void stop_all();
  std::vector<std::shared_ptr<server_pool>> all() const;

 private:
  worker_set& workers_;
  const config::settings& settings_;
  const credential_store& credentials_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mutex_;  // guards pools_
  std::map<std::pair<std::string, std::string>, std::shared_ptr<server_pool>, std::less<>> pools_;
};

}  // namespace sluice::proxy
