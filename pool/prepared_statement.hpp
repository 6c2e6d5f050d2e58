#pragma once
// A named prepared statement as sluice knows it: the exact content a client prepared, and the
// one name it has on every server. Immutable once made, shared by every client and server
// that uses it.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::pool {

struct prepared_statement {
  std::uint64_t id = 0;
  std::string server_name;                 // "sluice_<id>": never a name a client chose
  std::string query;                       // the exact text, byte for byte
  std::vector<std::uint32_t> param_types;  // parameter type OIDs as the client gave them
  std::string parse_message;               // the Parse a server gets, ready to send
  // A statement made by SQL PREPARE instead: the PREPARE a server gets (parse_message is empty).
  std::string prepare_sql;
  bool from_sql() const { return !prepare_sql.empty(); }
  // Some server accepted this Parse once. A client's Parse of a verified statement can be
  // answered without a server (see answer_parses_locally), which keeps a driver's synchronous
  // prepare from waiting on a pool its own open transactions are holding.
  mutable std::atomic<bool> verified{false};
};

using statement_ptr = std::shared_ptr<const prepared_statement>;

}  // namespace sluice::pool
