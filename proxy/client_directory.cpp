#include "proxy/client_directory.hpp"

namespace sluice::proxy {

void client_directory::add(client_status& status) {
  std::lock_guard lock(mutex_);
  status.prev_ = tail_;
  status.next_ = nullptr;
  if (tail_) {
    tail_->next_ = &status;
  } else {
    head_ = &status;
  }
  tail_ = &status;
}

void client_directory::remove(client_status& status) {
  std::lock_guard lock(mutex_);
  if (status.prev_) {
    status.prev_->next_ = status.next_;
  } else if (head_ == &status) {
    head_ = status.next_;
  }
  if (status.next_) {
    status.next_->prev_ = status.prev_;
  } else if (tail_ == &status) {
    tail_ = status.prev_;
  }
  status.prev_ = status.next_ = nullptr;
}

void client_directory::set_closer(client_status& status, std::function<void()> closer) {
  std::lock_guard lock(mutex_);
  status.closer_ = std::move(closer);
}

std::size_t client_directory::close_client(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  for (auto* s = head_; s; s = s->next_) {
    if (s->id != id || !s->closer_) continue;
    s->closer_();
    return 1;
  }
  return 0;
}

std::size_t client_directory::close_clients_of(const std::optional<std::string>& database) {
  std::lock_guard lock(mutex_);
  std::size_t closed = 0;
  for (auto* s = head_; s; s = s->next_) {
    // The login fields are read only once logged_in is seen (see above); the console's own
    // sessions have no pool and are never closed here.
    if (!s->closer_ || !s->logged_in.load(std::memory_order_acquire) || !s->pool) continue;
    if (database && s->database != *database) continue;
    s->closer_();
    ++closed;
  }
  return closed;
}

std::vector<client_directory::client_view> client_directory::clients() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  std::vector<client_view> out;
  std::lock_guard lock(mutex_);
  for (const auto* s = head_; s; s = s->next_) {
    client_view view{.id = s->id,
                     .address = s->address,
                     .port = s->port,
                     .local_address = s->local_address,
                     .local_port = s->local_port,
                     .connected_at_us = s->connected_at_us,
                     .logged_in = s->logged_in.load(std::memory_order_acquire),
                     .user = {},
                     .database = {},
                     .application_name = {},
                     .pool = nullptr,
                     .state = s->now.load(relaxed),
                     .request_since = s->request_since.load(relaxed),
                     .server = s->server.load(relaxed),
                     .prepared_statements = s->prepared_statements.load(relaxed)};
    if (view.logged_in) {
      view.user = s->user;
      view.database = s->database;
      view.application_name = s->application_name;
      view.pool = s->pool;
    }
    out.push_back(std::move(view));
  }
  return out;
}

}  // namespace sluice::proxy
