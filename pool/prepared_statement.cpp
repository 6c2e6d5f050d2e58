#include "pool/prepared_statement.hpp"

#include "protocol/frontend_messages.hpp"

namespace sluice::pool {

std::string prepared_statement::protocol_parse() const {
  if (!from_sql()) return parse_message;
  std::lock_guard lock(learned_mutex_);
  return learned_parse_;
}

void prepared_statement::learn_parameter_types(std::span<const std::uint32_t> oids) const {
  if (!from_sql() || sql_statement.empty()) return;
  std::string parse;
  protocol::append_parse(parse, server_name, sql_statement, oids);
  std::lock_guard lock(learned_mutex_);
  learned_parse_ = std::move(parse);
}

}  // namespace sluice::pool
