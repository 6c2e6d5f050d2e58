#include "pool/server_statement_cache.hpp"

namespace sluice::pool {

void server_statement_cache::touch(std::uint64_t id) {
  auto it = index_.find(id);
  if (it == index_.end()) return;
  lru_.splice(lru_.begin(), lru_, it->second);
}

std::vector<statement_ptr> server_statement_cache::insert(statement_ptr statement) {
  std::vector<statement_ptr> evicted;
  if (contains(statement->id)) {
    touch(statement->id);
    return evicted;
  }
  while (!lru_.empty() && lru_.size() >= capacity_) {
    evicted.push_back(lru_.back());
    index_.erase(lru_.back()->id);
    lru_.pop_back();
  }
  const auto id = statement->id;
  lru_.push_front(std::move(statement));
  index_.emplace(id, lru_.begin());
  return evicted;
}

statement_ptr server_statement_cache::erase(std::uint64_t id) {
  auto it = index_.find(id);
  if (it == index_.end()) return nullptr;
  auto statement = std::move(*it->second);
  lru_.erase(it->second);
  index_.erase(it);
  return statement;
}

void server_statement_cache::restore(statement_ptr statement) {
  if (contains(statement->id)) return;
  const auto id = statement->id;
  lru_.push_back(std::move(statement));  // least recently used: first to go again
  index_.emplace(id, std::prev(lru_.end()));
}

void server_statement_cache::mark_stale(std::uint64_t id) {
  if (erase(id)) stale_.insert(id);
}

}  // namespace sluice::pool
