#include "pool/statement_registry.hpp"

#include <functional>

#include "protocol/frontend_messages.hpp"
#include "protocol/sql_command.hpp"

namespace sluice::pool {

std::size_t statement_registry::key_hash::operator()(const key& k) const {
  std::size_t h = std::hash<std::string>{}(k.query) ^ (std::hash<std::string>{}(k.context) << 1);
  for (auto oid : k.param_types) h = h * 1000003u ^ oid;
  return h;
}

statement_ptr statement_registry::intern(std::string_view query,
                                         std::span<const std::uint32_t> param_types,
                                         std::string_view context) {
  key k{std::string(context), std::string(query), {param_types.begin(), param_types.end()}};
  if (auto it = entries_.find(k); it != entries_.end()) {
    if (auto alive = it->second.lock()) return alive;
  }
  auto statement = std::make_shared<prepared_statement>();
  statement->id = next_id_++;
  statement->server_name = "sluice_" + std::to_string(statement->id);
  statement->query = k.query;
  statement->param_types = k.param_types;
  protocol::append_parse(statement->parse_message, statement->server_name, statement->query,
                         statement->param_types);
  statement->effects = protocol::inspect_sql(statement->query);
  statement_ptr shared = std::move(statement);
  entries_.insert_or_assign(std::move(k), shared);
  if (entries_.size() >= sweep_at_) sweep();
  return shared;
}

statement_ptr statement_registry::intern_sql(std::string_view definition,
                                             std::string_view context) {
  // A Parse's query text cannot hold a NUL, so this prefix keeps the two kinds apart.
  static constexpr std::string_view marker{"\0sql\0", 5};
  while (!definition.empty() &&
         (definition.back() == ';' || definition.back() == ' ' || definition.back() == '\n' ||
          definition.back() == '\t' || definition.back() == '\r'))
    definition.remove_suffix(1);
  key k{std::string(context), std::string(marker) + std::string(definition), {}};
  if (auto it = entries_.find(k); it != entries_.end()) {
    if (auto alive = it->second.lock()) return alive;
  }
  auto statement = std::make_shared<prepared_statement>();
  statement->id = next_id_++;
  statement->server_name = "sluice_" + std::to_string(statement->id);
  statement->query = std::string(definition);
  statement->prepare_sql = "PREPARE " + statement->server_name + " " + statement->query;
  statement->sql_statement = std::string(protocol::prepared_statement_body(definition));
  statement->effects = protocol::inspect_sql(statement->sql_statement);
  statement_ptr shared = std::move(statement);
  entries_.insert_or_assign(std::move(k), shared);
  if (entries_.size() >= sweep_at_) sweep();
  return shared;
}

void statement_registry::sweep() {
  std::erase_if(entries_, [](const auto& entry) { return entry.second.expired(); });
  sweep_at_ = std::max<std::size_t>(1024, entries_.size() * 2);
}

}  // namespace sluice::pool
