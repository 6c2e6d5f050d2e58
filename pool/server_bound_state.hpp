#pragma once
// What a client's session leaves on the server it holds that outlives a transaction, and so
// binds the client to that server: a transaction-mode session keeps its server between
// transactions while any of it is there (see client_session), and starts afresh on a new one.
//
// Kept by the session, updated by the statement fsm as replies confirm each change.
#include <set>
#include <string>

namespace sluice::pool {

struct server_bound_state {
  // Open WITH HOLD cursors (DECLARE ... WITH HOLD, Django's iterator()): they live in the server
  // session until CLOSE, so the client keeps the server until the last is closed.
  std::set<std::string> holdable_cursors;
  // This server ran the client's last statement that may have advanced a sequence, so lastval()
  // and currval() there are the client's own.
  bool sequence_here = false;

  bool pins_server() const { return !holdable_cursors.empty(); }
};

}  // namespace sluice::pool
