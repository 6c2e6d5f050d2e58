#pragma once
// Answers a client's "Parse ... Sync" batch without a server when every statement in it is one
// some server already accepted: ParseComplete for each, then ReadyForQuery('I').
//
// Why: drivers prepare synchronously (libpq's PQprepare, used by pgbench -M prepared), and a
// single-threaded client blocked in a prepare cannot finish the transactions its other
// connections hold open. Needing a server for that prepare deadlocks a small pool; answering it
// here does not, and saves the round trip. Only an idle client's batch qualifies (transaction
// status 'I'), made of named Parse messages and one Sync and nothing else.
#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "pool/statement_relay_fsm.hpp"

namespace sluice::pool {

struct local_parse_answer {
  std::size_t consumed = 0;  // client bytes answered, up to and including the Sync
  std::string reply;         // ParseComplete... ReadyForQuery('I')
  std::size_t parses = 0;
};

// Looks at the complete messages at the front of `bytes`. On success the names are added to
// `client`. `intern` gives the registry entry for each statement.
std::optional<local_parse_answer> answer_parses_locally(std::span<const char> bytes,
                                                        std::uint32_t max_message_size,
                                                        client_statement_map& client,
                                                        const intern_function& intern);

}  // namespace sluice::pool
