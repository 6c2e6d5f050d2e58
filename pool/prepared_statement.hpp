#pragma once
// A named prepared statement as sluice knows it: the exact content a client prepared, and the
// one name it has on every server. Immutable once made, shared by every client and server
// that uses it.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "protocol/sql_effects.hpp"

namespace sluice::pool {

struct prepared_statement {
  std::uint64_t id = 0;
  std::string server_name;                 // "sluice_<id>": never a name a client chose
  std::string query;                       // the exact text, byte for byte
  std::vector<std::uint32_t> param_types;  // parameter type OIDs as the client gave them
  std::string parse_message;               // the Parse a server gets, ready to send
  protocol::sql_effects effects;           // what running it leaves in the session
  // A statement made by SQL PREPARE instead: the PREPARE a server gets (parse_message is empty),
  // and the statement after its AS ("" if the definition could not be read).
  std::string prepare_sql;
  std::string sql_statement;
  bool from_sql() const { return !prepare_sql.empty(); }

  // The Parse that creates this statement on a server. A SQL PREPARE names its parameter types
  // in SQL; once a server has told their OIDs (learn_parameter_types), the same statement can be
  // made with a Parse too, as a Bind or Describe of its name on another server needs.
  // "" while that is unknown.
  std::string protocol_parse() const;
  void learn_parameter_types(std::span<const std::uint32_t> oids) const;
  // Some server accepted this Parse once. A client's Parse of a verified statement can be
  // answered without a server (see answer_parses_locally), which keeps a driver's synchronous
  // prepare from waiting on a pool its own open transactions are holding.
  mutable std::atomic<bool> verified{false};

 private:
  mutable std::mutex learned_mutex_;  // guards learned_parse_: any worker may learn or read it
  mutable std::string learned_parse_;
};

using statement_ptr = std::shared_ptr<const prepared_statement>;

}  // namespace sluice::pool
