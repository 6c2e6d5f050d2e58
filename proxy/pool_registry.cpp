#include "proxy/pool_registry.hpp"

namespace sluice::proxy {

pool_registry::pool_registry(worker_set& workers, const config::settings& settings,
                             const credential_store& credentials,
                             std::shared_ptr<spdlog::logger> log)
    : workers_(workers), settings_(settings), credentials_(credentials), log_(std::move(log)) {}

pool_registry::lookup pool_registry::get(const config::database_settings& database,
                                         std::string_view user) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(database.name, std::string(user));
  if (auto it = pools_.find(key); it != pools_.end()) return {it->second, {}};

  // The upstream login: the url's user and password, else the client's own name and its
  // configured plain password.
  upstream_login login;
  login.database = database.server.dbname.empty() ? database.name : database.server.dbname;
  login.options = database.server.options;
  login.application_name = database.server.application_name;
  login.user = database.server.user.empty() ? std::string(user) : database.server.user;
  login.password = database.server.password;
  if (login.password.empty()) {
    if (const auto* creds = credentials_.find(login.user); creds && creds->plain_password)
      login.password = *creds->plain_password;
  }

  auto pool = std::make_shared<server_pool>(workers_, database.name + "/" + std::string(user),
                                            database, std::move(login), settings_.max_message_size,
                                            log_, std::string(user));
  pool->start();
  pools_.emplace(std::move(key), pool);
  return {pool, {}};
}

void pool_registry::warm_up() {
  for (const auto& database : settings_.databases) {
    if (database.pool.min_size == 0) continue;
    // Without a fixed upstream user the pool key depends on who logs in; warm the pools of
    // every configured user whose login would work.
    for (const auto& user : settings_.users) get(database, user.name);
  }
}

void pool_registry::stop_all() {
  for (auto& pool : all()) pool->stop();
}

std::vector<std::shared_ptr<server_pool>> pool_registry::all() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<server_pool>> out;
  for (const auto& [key, pool] : pools_) out.push_back(pool);
  return out;
}

}  // namespace sluice::proxy
