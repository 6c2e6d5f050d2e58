#pragma once
// The prepared statements one server holds, least recently used first, capped at
// pool.prepared_statements. Evicting one means sending the server a Close for it.
//
// A statement can also be stale: PostgreSQL refused to use its plan ("cached plan must not
// change result type" after DDL). A stale one is still on the server under its name, so it
// must be closed before it is prepared again.
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "pool/prepared_statement.hpp"

namespace sluice::pool {

class server_statement_cache {
 public:
  explicit server_statement_cache(std::size_t capacity) : capacity_(capacity) {}

  bool contains(std::uint64_t id) const { return index_.contains(id); }
  // Marks it most recently used.
  void touch(std::uint64_t id);
  // Adds it as most recently used and returns what had to go to stay within capacity.
  std::vector<statement_ptr> insert(statement_ptr statement);
  // Forgets it (its Parse failed, or its Close was sent). Returns it, or null if absent.
  statement_ptr erase(std::uint64_t id);
  // Puts back an evicted one whose Close the server skipped (it is still there).
  void restore(statement_ptr statement);
  void clear() {
    lru_.clear();
    index_.clear();
    stale_.clear();
  }

  void mark_stale(std::uint64_t id);
  // True once for a stale statement: the caller closes it on the server before re-preparing.
  bool take_stale(std::uint64_t id) { return stale_.erase(id) > 0; }

  std::size_t size() const { return lru_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::list<statement_ptr> lru_;  // front = most recently used
  std::unordered_map<std::uint64_t, std::list<statement_ptr>::iterator> index_;
  std::unordered_set<std::uint64_t> stale_;
};

}  // namespace sluice::pool
