#pragma once
// Content → statement, for the whole daemon: the same SQL with the same parameter types,
// prepared by any number of clients under any names, is one statement with one server-side
// name, so each server prepares it once.
//
// The key is the exact query text plus the parameter type OIDs, compared in full: a hash is
// only the bucket, never the identity (Odyssey's and PgCat's hash-keyed caches could collide).
// It also holds the context the query is read in: the database, the user, and the session
// settings that change what the text means (search_path above all, see
// session_params::statement_context). Clients in different contexts never share a server
// statement: one tenant's plan, or its "already accepted" verdict, is not another's.
//
// Not thread-safe: the daemon guards its one registry with a mutex. Entries live as long as a
// client or a server cache holds them; dead ones are swept as the map grows.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pool/prepared_statement.hpp"

namespace sluice::pool {

class statement_registry {
 public:
  // The statement for this content, made on first sight.
  statement_ptr intern(std::string_view query, std::span<const std::uint32_t> param_types,
                       std::string_view context = {});
  // A statement made by SQL `PREPARE name <definition>`: `definition` is what follows the name
  // ("[(types)] AS statement"). It never shares an entry with a protocol-level Parse.
  statement_ptr intern_sql(std::string_view definition, std::string_view context = {});

  std::size_t size() const { return entries_.size(); }

 private:
  struct key {
    std::string context;
    std::string query;
    std::vector<std::uint32_t> param_types;
    bool operator==(const key&) const = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const;
  };
  void sweep();

  std::unordered_map<key, std::weak_ptr<const prepared_statement>, key_hash> entries_;
  std::uint64_t next_id_ = 1;
  std::size_t sweep_at_ = 1024;  // sweep dead entries when the map reaches this size
};

}  // namespace sluice::pool
