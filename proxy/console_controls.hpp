#pragma once
// What the console's PAUSE, RESUME, DISABLE and ENABLE (and SIGUSR1/SIGUSR2) set, and what the
// client sessions read: which databases hold new transactions and which refuse new clients.
//
// Flow: PAUSE [db] marks the database (or every database) paused; a session that wants a server
// for a paused database waits (lease_server) before asking the pool, so servers already leased
// finish their transactions and come back, and the console's PAUSE answers once none is leased.
// RESUME clears the mark and the waiting sessions go on. DISABLE db refuses new clients of db
// (55000, as PostgreSQL refuses a database with datallowconn off); ENABLE db lifts it.
//
// Threads: any. One mutex; nothing here waits or does I/O.
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proxy {

class console_controls {
 public:
  void pause(const std::optional<std::string>& database);   // nullopt: every database
  void resume(const std::optional<std::string>& database);  // nullopt: every database
  void disable(const std::string& database);
  void enable(const std::string& database);

  bool paused(std::string_view database) const;
  bool disabled(std::string_view database) const;

  struct view {
    bool all_paused = false;
    std::vector<std::string> paused, disabled;
  };
  view load() const;

 private:
  mutable std::mutex mutex_;
  bool all_paused_ = false;
  std::set<std::string, std::less<>> paused_, disabled_;
};

}  // namespace sluice::proxy
