#pragma once
// A client's session parameters, shared copy-on-write. Clients that logged in with the same
// startup settings point at one record (the pool's login profile) until one of them changes a
// setting; only then does it get a record of its own. Ten thousand idle clients thus hold
// one pointer each instead of a dozen map entries.
//
// Thread safety: a record is never modified while shared (edit() copies it first), and its
// canonical tracked_settings() string is built before it can be shared, so readers on other
// threads only ever read.
#include <memory>
#include <string_view>

#include "pool/session_params.hpp"

namespace sluice::pool {

class shared_session_params {
 public:
  shared_session_params() : record_(std::make_shared<session_params>()) {}

  const session_params& get() const { return *record_; }

  // The record to change: this client's own, copied from the shared one if need be.
  session_params& edit() {
    if (record_.use_count() > 1) record_ = std::make_shared<session_params>(*record_);
    return *record_;
  }

  // A ParameterStatus: copies nothing when the value is already the one recorded.
  void set(std::string_view name, std::string_view value) {
    if (auto have = get().get(name); have && *have == value) return;
    edit().set(name, value);
  }

  // Another handle on the same record, for a login profile or a client that matches one.
  shared_session_params share() const {
    record_->tracked_settings();  // built now, while no other thread can see the record
    return shared_session_params(record_);
  }

 private:
  explicit shared_session_params(std::shared_ptr<session_params> record)
      : record_(std::move(record)) {}

  std::shared_ptr<session_params> record_;
};

}  // namespace sluice::pool
