#pragma once
// THE one place that decides when a server goes back to the pool. The daemon keeps a
// link_state per client-server pairing, updates it as messages pass, and asks after every
// ReadyForQuery (and when the client leaves) whether the server may be released.
#include <cstdint>

namespace sluice::pool {

enum class pool_mode {
  session,      // a client keeps its server until it disconnects
  transaction,  // a client holds a server only while a transaction (or request) is open
};

// What is in flight between one client and its server.
struct link_state {
  // Status byte of the last ReadyForQuery: 'I' idle, 'T' in a transaction block, 'E' in a
  // failed one. https://www.postgresql.org/docs/current/protocol-message-formats.html
  // #PROTOCOL-MESSAGE-FORMATS-READYFORQUERY
  char tx_status = 'I';
  // Sync / Query / FunctionCall sent whose ReadyForQuery has not come back: replies are owed.
  std::uint32_t outstanding_syncs = 0;
  // Extended-protocol messages (Parse/Bind/Describe/Execute/Close/Flush) sent since the last
  // Sync. Covers the Flush pin: after Parse/Describe/Flush the client's Bind must reach the
  // same backend. https://www.postgresql.org/docs/current/protocol-flow.html
  // #PROTOCOL-FLOW-EXT-QUERY
  bool extended_batch_open = false;
  // COPY FROM STDIN / TO STDOUT / BOTH under way: the server is mid-stream.
  bool copy_in_progress = false;
  // Only part of a client message has been forwarded: the rest must go to the same server.
  bool message_partially_sent = false;
};

enum class release_decision {
  keep,     // the client keeps the server
  release,  // hand the server back (release(reusable=true))
};

// True when nothing is in flight and no transaction is open: the server's protocol state
// belongs to nobody, so another client can use it.
bool at_clean_boundary(const link_state& link);

// session: always keep (the server returns when the client disconnects).
// transaction: release only at a clean boundary. 'T' and 'E' keep: the transaction (even a
// failed one, which still needs its ROLLBACK) belongs to this client. Any other status byte is
// unknown and keeps, the safe side.
release_decision decide_release(pool_mode mode, const link_state& link);

// When the client leaves (any mode): whether its server can serve another client, i.e. the
// `reusable` argument of server_pool_fsm::release. Mid-transaction or mid-message it cannot.
bool reusable_after_client_exit(const link_state& link);

}  // namespace sluice::pool
