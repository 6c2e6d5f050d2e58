#include "pool/lease_fsm.hpp"

#include <algorithm>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/message_types.hpp"

namespace sluice::pool {
namespace {

namespace fe = protocol::frontend_type;
namespace be = protocol::backend_type;

// Server messages the lease itself must see whole; everything else streams by byte count.
bool inspected_from_server(char type) {
  return type == be::ready_for_query || type == be::parameter_status ||
         type == be::error_response || type == be::copy_in_response;
}

constexpr std::size_t read_chunk = 16384;

std::uint64_t micros_between(time_point from, time_point to) {
  if (to <= from) return 0;
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(to - from).count());
}

}  // namespace

lease_fsm::lease_fsm(const settings& settings, server_session_view server,
                     shared_session_params& client_params,
                     std::optional<statement_relay_fsm> statements, time_point now)
    : settings_(settings),
      server_(server),
      client_params_(client_params),
      statements_(std::move(statements)),
      busy_since_(now),
      idle_since_(now) {
  link_.tx_status = server.tx_status;
  if (statements_) statements_->set_transaction_status(server.tx_status);
}

void lease_fsm::end_with(lease_end why) {
  if (ended_) return;
  ended_ = true;
  end_ = why;
}

bool lease_fsm::only_the_server_can_move() const {
  // A request is complete and owed its ReadyForQuery, so the server will keep talking until
  // then without needing the client: not in COPY FROM STDIN (the server waits for data) and
  // not halfway through forwarding a message (the server waits for its rest).
  return link_.outstanding_syncs > 0 && !link_.copy_in_progress && client_remaining_ == 0;
}

bool lease_fsm::client_must_be_read() const {
  return !ended_ && !client_blocked_ && !only_the_server_can_move();
}

void lease_fsm::note_client_message(char type, time_point now) {
  if (!query_open_) {
    query_open_ = true;
    query_since_ = now;
    if (!transaction_open_) {
      transaction_open_ = true;
      transaction_since_ = now;
    }
  }
  if (link_.outstanding_syncs == 0 &&
      (type == fe::query || type == fe::function_call || type == fe::sync)) {
    busy_since_ = now;
    cancel_sent_at_.reset();  // a new request: its own query_timeout
  }
  switch (type) {
    case fe::query:
    case fe::function_call:
      ++link_.outstanding_syncs;
      break;
    case fe::sync:
      // A server in COPY FROM STDIN ignores Sync; counting it would pin the server forever.
      if (!link_.copy_in_progress) {
        ++link_.outstanding_syncs;
        link_.extended_batch_open = false;
      }
      break;
    case fe::copy_done:
    case fe::copy_fail:
      link_.copy_in_progress = false;
      break;
    case fe::copy_data:
      break;
    default:  // Parse, Bind, Describe, Execute, Close, Flush: a batch awaiting its Sync
      link_.extended_batch_open = true;
      break;
  }
}

// The rest of a message whose header was already dealt with, as far as `bytes` holds it:
// forwarded by byte count (or dropped), never looked at. Returns the bytes taken.
std::size_t lease_fsm::pass_through(std::span<const char> bytes, std::size_t& remaining,
                                    bool forwarding, protocol::output_segments& out) {
  const auto n = std::min(remaining, bytes.size());
  if (forwarding) out.add_view(bytes.first(n));
  remaining -= n;
  return n;
}

lease_fsm::scan_result lease_fsm::on_client_bytes(std::span<const char> bytes,
                                                  protocol::output_segments& to_server,
                                                  time_point now) {
  scan_result result;
  client_blocked_ = false;
  if (cancel_in_flight_ && client_remaining_ == 0) {
    // Nothing new reaches the server until the cancel has: it must not hit the next query.
    client_blocked_ = true;
    return result;
  }
  // What the statement fsm must send on its own goes first, ahead of anything newer.
  if (statements_ && client_remaining_ == 0) statements_->take_server_output(to_server);
  std::size_t pos = 0;
  while (pos < bytes.size() && !ended_) {
    if (client_remaining_ > 0) {
      pos += pass_through(bytes.subspan(pos), client_remaining_, client_forwarding_, to_server);
      continue;
    }
    const auto header = protocol::peek_header(bytes.subspan(pos), settings_.max_message_size);
    if (header.status == protocol::frame_status::need_more) break;
    if (header.status == protocol::frame_status::error) {
      result.violation = true;
      end_with(lease_end::client_violation);
      break;
    }
    const char type = header.header.type;
    if (type == fe::terminate) {
      pos += header.header.wire_size();
      end_with(lease_end::client_gone);
      break;
    }
    if (statements_ && statement_relay_fsm::wants_whole_request(type)) {
      const auto whole = protocol::frame_message(bytes.subspan(pos), settings_.max_message_size);
      if (whole.status != protocol::frame_status::complete) break;  // wait for the rest
      if (statements_->must_wait_for_replies(type, whole.message.body)) {
        client_blocked_ = true;
        break;
      }
      if (statements_->on_client_message(type, whole.message.body, whole.message.wire, to_server))
        note_client_message(type, now);
      pos += whole.message.wire.size();
      continue;
    }
    client_forwarding_ = !statements_ || statements_->on_client_streamed(type);
    if (client_forwarding_) note_client_message(type, now);
    client_remaining_ = header.header.wire_size();
  }
  link_.message_partially_sent = client_remaining_ > 0 && client_forwarding_;
  result.consumed = pos;
  counters_.totals.bytes_received += pos;
  return result;
}

void lease_fsm::on_server_message(char type, std::span<const char> body, time_point now) {
  switch (type) {
    case be::ready_for_query:
      if (auto ready = protocol::decode_ready_for_query(body)) {
        link_.tx_status = ready->status;
        server_.tx_status = ready->status;
      }
      if (link_.outstanding_syncs > 0) --link_.outstanding_syncs;
      link_.copy_in_progress = false;
      if (link_.outstanding_syncs == 0) {
        idle_since_ = now;
        if (query_open_) {
          query_open_ = false;
          const auto us = micros_between(query_since_, now);
          ++counters_.totals.queries;
          counters_.totals.query_us += us;
          counters_.query_times.observe(us);
        }
        if (transaction_open_ && link_.tx_status == 'I') {
          transaction_open_ = false;
          const auto us = micros_between(transaction_since_, now);
          ++counters_.totals.transactions;
          counters_.totals.transaction_us += us;
          counters_.transaction_times.observe(us);
        }
      }
      break;
    case be::parameter_status:
      if (auto status = protocol::decode_parameter_status(body)) {
        server_.params.set(status->name, status->value);
        client_params_.set(status->name, status->value);
      }
      break;
    case be::error_response:
      if (auto error = protocol::decode_error_response(body)) {
        const auto severity = error->field('V').empty() ? error->field('S') : error->field('V');
        if (severity == "FATAL" || severity == "PANIC") server_fatal_ = true;
        if (const auto index = sqlstate_class_index(error->field('C')); index < sqlstate_classes)
          counters_.error_classes.push_back(static_cast<std::uint16_t>(index));
      }
      break;
    case be::copy_in_response:
      link_.copy_in_progress = true;
      break;
    default:
      break;
  }
}

lease_fsm::scan_result lease_fsm::on_server_bytes(std::span<const char> bytes,
                                                  protocol::output_segments& to_client,
                                                  time_point now) {
  using verdict = statement_relay_fsm::verdict;
  scan_result result;
  std::size_t pos = 0;
  while (pos < bytes.size() && !ended_) {
    if (server_remaining_ > 0) {
      pos += pass_through(bytes.subspan(pos), server_remaining_, server_forwarding_, to_client);
      continue;
    }
    const auto header = protocol::peek_header(bytes.subspan(pos), settings_.max_message_size);
    if (header.status == protocol::frame_status::need_more) break;
    if (header.status == protocol::frame_status::error) {
      result.violation = true;
      end_with(lease_end::server_gone);
      break;
    }
    const char type = header.header.type;
    const bool whole_needed = inspected_from_server(type) ||
                              (statements_ && statement_relay_fsm::wants_whole_reply(type));
    if (!whole_needed) {
      server_forwarding_ =
          !statements_ || statements_->on_server_message(type, {}, to_client) == verdict::forward;
      server_remaining_ = header.header.wire_size();
      continue;
    }
    const auto whole = protocol::frame_message(bytes.subspan(pos), settings_.max_message_size);
    if (whole.status != protocol::frame_status::complete) break;  // wait for the rest
    pos += whole.message.wire.size();
    const auto said = statements_
                          ? statements_->on_server_message(type, whole.message.body, to_client)
                          : verdict::forward;
    if (said == verdict::forward && !reword_timeout_cancel(type, whole.message.body, to_client))
      to_client.add_view(whole.message.wire);
    if (type == be::ready_for_query && said == verdict::swallow) {
      // The answer to a Sync sluice sent on its own: the server's status, not the client's
      // count of owed replies.
      if (auto ready = protocol::decode_ready_for_query(whole.message.body))
        link_.tx_status = server_.tx_status = ready->status;
    } else {
      on_server_message(type, whole.message.body, now);
    }
    if (type == be::ready_for_query &&
        decide_release(settings_.mode, link_) == release_decision::release &&
        (!statements_ || statements_->idle())) {
      // Decided now, before the driver writes these replies: while that write is in flight
      // the client's next request may arrive, and it must not reach a server that is about to
      // go back to the pool.
      end_with(lease_end::released);
    }
  }
  result.consumed = pos;
  counters_.totals.bytes_sent += pos;
  return result;
}

bool lease_fsm::reword_timeout_cancel(char type, std::span<const char> body,
                                      protocol::output_segments& to_client) {
  if (!cancelled_by_timeout_ || type != be::error_response) return false;
  auto error = protocol::decode_error_response(body);
  if (!error || error->sqlstate() != "57014") return false;
  cancelled_by_timeout_ = false;
  // PostgreSQL says "due to user request": the client asked for nothing; sluice's limit did.
  const auto start = to_client.arena().size();
  protocol::append_error_response(
      to_client.arena(), {.severity = "ERROR",
                          .sqlstate = "57014",
                          .message = "canceling statement due to query_timeout",
                          .hint = "sluice cancels queries running longer than pool.query_timeout"});
  to_client.owned_from(start);
  return true;
}

std::size_t lease_fsm::server_read_size(std::span<const char> buffered) const {
  // Room for the whole of a message that must be seen whole, or a chunk of a streamed one.
  std::size_t wanted = read_chunk;
  if (server_remaining_ > 0) return wanted;
  if (auto header = protocol::peek_header(buffered, settings_.max_message_size);
      header.status == protocol::frame_status::complete &&
      header.header.wire_size() > buffered.size())
    wanted = std::max(wanted, header.header.wire_size() - buffered.size());
  return wanted;
}

duration lease_fsm::limit_check_interval() const {
  const auto& limits = settings_.limits;
  duration shortest = duration::max();
  for (auto limit :
       {limits.query_timeout, limits.idle_transaction_timeout, limits.client_idle_timeout})
    if (limit) shortest = std::min(shortest, *limit);
  return std::clamp(shortest / 4, duration(20), duration(1000));
}

lease_fsm::limit_check lease_fsm::check_limits(time_point now) const {
  using action = limit_check::action;
  if (ended_) return {};
  const auto& limits = settings_.limits;
  const bool busy = link_.outstanding_syncs > 0;
  if (busy && limits.query_timeout && now - busy_since_ > *limits.query_timeout) {
    // Cancelled once; a query that ignores the cancel for another query_timeout costs its
    // server.
    if (!cancel_sent_at_) return {action::cancel_query};
    if (now - *cancel_sent_at_ > std::max(*limits.query_timeout, duration(1000)))
      return {action::end, lease_end::query_timeout};
    return {};
  }
  if (!busy && link_.tx_status != 'I' && limits.idle_transaction_timeout &&
      now - idle_since_ > *limits.idle_transaction_timeout)
    return {action::end, lease_end::idle_in_transaction_timeout};
  if (!busy && link_.tx_status == 'I' && !link_.extended_batch_open && limits.client_idle_timeout &&
      now - idle_since_ > *limits.client_idle_timeout)
    return {action::end, lease_end::client_idle_timeout};
  return {};
}

void lease_fsm::begin_query_cancel(time_point now) {
  cancel_in_flight_ = true;
  cancelled_by_timeout_ = true;
  cancel_sent_at_ = now;
}

void lease_fsm::query_cancel_delivered() {
  cancel_in_flight_ = false;
}

lease_counters lease_fsm::take_counters() {
  lease_counters out = std::move(counters_);
  counters_ = {};
  return out;
}

exit_plan lease_fsm::plan_exit() const {
  exit_plan plan;
  const bool mid_request = link_.outstanding_syncs > 0 || link_.extended_batch_open ||
                           link_.copy_in_progress || link_.message_partially_sent;
  if (mid_request) {
    // The server owes replies nobody will read. Closing it is the only way to be sure no
    // half-finished work, or its locks, outlive the client; a cancel stops the work now
    // rather than whenever the backend next writes.
    plan.close = true;
    plan.cancel_first = link_.outstanding_syncs > 0;
    return plan;
  }
  plan.rollback = link_.tx_status != 'I';
  // Session mode hands whole sessions around: the next client must not inherit this one's
  // settings, prepared statements, temp tables or advisory locks.
  plan.discard = settings_.mode == pool_mode::session;
  return plan;
}

}  // namespace sluice::pool
