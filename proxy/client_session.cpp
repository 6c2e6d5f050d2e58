#include "proxy/client_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <tuple>

#include "pool/local_parse_answer.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/message_types.hpp"
#include "protocol/startup.hpp"
#include "proxy/admin_console.hpp"
#include "proxy/client_auth.hpp"
#include "proxy/message_io.hpp"
#include "proxy/pause_waits.hpp"
#include "proxy/relay.hpp"
#include "proxy/startup_options.hpp"
#include "proxy/worker_set.hpp"

namespace sluice::proxy {
namespace {

constexpr auto internal_query_timeout = std::chrono::seconds(10);

pool::pool_mode mode_of(const config::pool_settings& settings) {
  return settings.mode == config::pool_mode::session ? pool::pool_mode::session
                                                     : pool::pool_mode::transaction;
}

std::string describe_endpoint(const stream_socket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  return to_text(endpoint);
}

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

std::uint64_t micros_since(std::chrono::steady_clock::time_point since) {
  const auto d = std::chrono::steady_clock::now() - since;
  return d.count() <= 0 ? 0
                        : static_cast<std::uint64_t>(
                              std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

}  // namespace

client_session::client_session(daemon_context& context, stream_socket socket)
    : context_(context),
      socket_(std::move(socket)),
      in_(idle_read_size),
      status_(context.directory.next_id()) {
  peer_ = describe_endpoint(socket_.socket());
  ++context_.clients;
  error_code ec;
  if (auto remote = socket_.socket().remote_endpoint(ec); !ec)
    std::tie(status_.address, status_.port) = address_and_port(remote);
  if (auto local = socket_.socket().local_endpoint(ec); !ec)
    std::tie(status_.local_address, status_.local_port) = address_and_port(local);
  status_.connected_at_us = wall_clock_us();
  context_.directory.add(status_);
}

client_session::~client_session() {
  context_.directory.remove(status_);
  --context_.clients;
}

awaitable<void> client_session::fail(std::string_view sqlstate, std::string_view message,
                                     std::string_view severity) {
  context_.counters.errors.count(sqlstate);
  last_sqlstate_ = {};
  std::copy_n(sqlstate.begin(), std::min(sqlstate.size(), last_sqlstate_.size()),
              last_sqlstate_.begin());
  std::string out;
  protocol::append_error_response(out,
                                  {.severity = severity, .sqlstate = sqlstate, .message = message});
  co_await write_all(socket_, out);
  end_reason_ = std::string(message);
}

awaitable<void> client_session::run() {
  auto& log = *context_.log;
  log.info("client accepted addr={}", peer_);
  error_code ignored;
  socket_.socket().set_option(tcp::no_delay(true), ignored);
  // For the console's KILL and KILL_CLIENT: closing the socket ends whatever this session awaits.
  context_.directory.set_closer(
      status_, [weak = weak_from_this(), executor = socket_.socket().get_executor()] {
        asio::post(executor, [weak] {
          if (auto self = weak.lock()) {
            self->end_reason_ = "killed from the admin console";
            error_code ec;
            self->socket_.socket().close(ec);
          }
        });
      });

  const auto accepted = std::chrono::steady_clock::now();
  const bool proceed = co_await log_in_within_deadline();
  if (proceed) {
    logged_in_ = true;
    // Published for SHOW CLIENTS: written once, then released (see client_directory).
    status_.user = user_;
    status_.database = database_;
    status_.pool = pool_.get();
    if (auto name = params_.get().get("application_name")) status_.application_name = *name;
    status_.now.store(server_ ? client_status::state::active : client_status::state::idle,
                      std::memory_order_relaxed);
    if (server_) status_.server.store(server_->status->id, std::memory_order_relaxed);
    status_.logged_in.store(true, std::memory_order_release);
    if (pool_) pool_->counters().add_login(micros_since(accepted));
    // Needed only to log in; ten thousand idle clients should not keep them.
    std::vector<std::pair<std::string, std::string>>().swap(startup_settings_);
    log.info("client logged in addr={} db={} user={}", peer_, database_, user_);
    if (admin_) {
      co_await serve_admin();
    } else {
      co_await serve();
    }
  }

  if (!proceed) count_login_failure(end_reason_ == "login timed out");
  if (server_) co_await leave_server_clean();
  if (cancel_key_) context_.cancels.leave(*cancel_key_);
  socket_.socket().shutdown(stream_socket::shutdown_both, ignored);
  socket_.socket().close(ignored);
  if (!database_.empty() || logged_in_) {
    log.info("client gone addr={} db={} user={} reason=\"{}\"", peer_, database_, user_,
             end_reason_);
  } else {
    log.info("client gone addr={} reason=\"{}\"", peer_, end_reason_);
  }
}

awaitable<bool> client_session::log_in_within_deadline() {
  // The whole login, startup packet to welcome, runs under client_login_timeout: a client
  // that connects and says nothing does not hold a slot forever. Its own coroutine, so the
  // timer and the login's locals are gone before the session settles into serving.
  asio::steady_timer login_deadline(socket_.get_executor(), context_.settings.client_login_timeout);
  bool login_timed_out = false;
  login_deadline.async_wait([this, &login_timed_out](error_code ec) {
    if (ec) return;
    login_timed_out = true;
    error_code ignored_error;
    socket_.cancel(ignored_error);
    if (server_) server_->socket.cancel(ignored_error);
  });

  const auto step = co_await read_startup();
  bool proceed = step == startup_step::proceed && co_await log_in();
  login_deadline.cancel();
  if (login_timed_out) {
    proceed = false;
    end_reason_ = "login timed out";
  }
  co_return proceed;
}

awaitable<bool> client_session::start_tls(protocol::tls_entry entry) {
  const auto accepted = co_await accept_tls(socket_, *context_.tls, entry);
  if (!accepted.ok) {
    // Nothing is sent: the client's TLS stack got its alert, or is not speaking TLS at all.
    context_.log->warn("client TLS refused addr={}: {}", peer_, accepted.problem);
    end_reason_ = accepted.problem;
  }
  co_return accepted.ok;
}

awaitable<client_session::startup_step> client_session::read_startup() {
  // PostgreSQL 17's direct TLS: the ClientHello comes first, with no SSLRequest. Peeked, so
  // that OpenSSL reads it whole from the socket.
  if (context_.tls) {
    const auto first = co_await peek_first_byte(socket_.socket());
    if (!first) {
      end_reason_ = "closed before logging in";
      co_return startup_step::done;
    }
    if (protocol::starts_direct_tls(*first) && !co_await start_tls(protocol::tls_entry::direct))
      co_return startup_step::done;
  }
  for (;;) {
    auto read = co_await read_message(socket_, in_, read_kind::startup,
                                      protocol::max_startup_packet_length);
    if (read.error) {
      end_reason_ = "closed before logging in";
      co_return startup_step::done;
    }
    if (read.protocol_error) {
      co_await fail("08P01", "invalid length of startup packet");
      co_return startup_step::done;
    }
    auto packet = protocol::decode_startup_packet(read.message.body);
    in_.consume(read.message.wire.size());
    if (!packet) {
      if (packet.error == protocol::errc::unsupported_protocol) {
        co_await fail("0A000", "unsupported frontend protocol: sluice supports 3.0");
      } else {
        co_await fail("08P01", "invalid startup packet layout");
      }
      co_return startup_step::done;
    }
    switch (packet->kind) {
      case protocol::startup_kind::ssl_request:
        if (socket_.encrypted()) {
          co_await fail("08P01", "SSLRequest received on a connection already using TLS");
          co_return startup_step::done;
        }
        if (context_.tls) {
          // Bytes after the SSLRequest were sent in plain text before the handshake: taking
          // them as if encrypted would let a man in the middle inject them (CVE-2021-23214).
          if (!in_.empty()) {
            co_await fail("08P01", "received unencrypted data after SSL request");
            co_return startup_step::done;
          }
          if (co_await write_all(socket_, "S")) co_return startup_step::done;
          if (!co_await start_tls(protocol::tls_entry::ssl_request)) co_return startup_step::done;
          continue;
        }
        [[fallthrough]];
      case protocol::startup_kind::gssenc_request:
        // No TLS or GSSAPI encryption yet: 'N' tells the client to go on in plain text.
        if (co_await write_all(socket_, "N")) co_return startup_step::done;
        continue;
      case protocol::startup_kind::cancel_request:
        co_await forward_cancel({static_cast<std::uint32_t>(packet->cancel.process_id),
                                 static_cast<std::uint32_t>(packet->cancel.secret_key)});
        end_reason_ = "cancel request";
        co_return startup_step::done;
      case protocol::startup_kind::startup:
        break;
    }
    if (packet->version != protocol::protocol_3_0) {
      {
        const auto message = fmt::format("unsupported frontend protocol {}.{}: sluice supports 3.0",
                                         packet->version >> 16, packet->version & 0xffff);
        co_await fail("0A000", message);
      }
      co_return startup_step::done;
    }
    for (auto& [name, value] : packet->parameters) {
      if (name == "user") {
        user_ = value;
      } else if (name == "database") {
        database_ = value;
      } else if (name == "replication") {
        if (value != "false" && value != "off" && value != "0" && value != "no") {
          co_await fail("08P01", "sluice does not support replication connections");
          co_return startup_step::done;
        }
      } else if (name == "options") {
        auto parsed = parse_startup_options(value);
        if (!parsed.unsupported.empty()) {
          co_await fail("0A000", fmt::format("startup option \"{}\" is not supported by sluice; "
                                             "only -c name=value settings are",
                                             parsed.unsupported));
          co_return startup_step::done;
        }
        for (auto& setting : parsed.settings) startup_settings_.push_back(std::move(setting));
      } else if (name.starts_with("_pq_.")) {
        // Protocol extensions: none supported; ignoring them is what 3.0 servers do.
      } else {
        startup_settings_.emplace_back(name, value);
      }
    }
    if (user_.empty()) {
      co_await fail("28000", "no PostgreSQL user name specified in startup packet");
      co_return startup_step::done;
    }
    if (context_.tls && !socket_.encrypted() &&
        context_.tls->settings().effective_mode() == config::client_tls_mode::require) {
      co_await fail("28000",
                    "sluice requires TLS (listen.tls.mode is require): connect with "
                    "sslmode=require or stronger");
      co_return startup_step::done;
    }
    if (context_.tls && !certificate_matches_user(socket_, *context_.tls, user_)) {
      co_await fail("28000", fmt::format("certificate validation (verify-full) failed for user "
                                         "\"{}\": CN mismatch",
                                         user_));
      co_return startup_step::done;
    }
    if (database_.empty()) database_ = user_;
    co_return startup_step::proceed;
  }
}

awaitable<bool> client_session::log_in() {
  const auto& settings = context_.settings;
  if (context_.clients > settings.max_clients) {
    co_await fail("53300", "sorry, too many clients already");
    co_return false;
  }

  // Over TLS, SCRAM can bind the login to sluice's certificate.
  const std::string* end_point =
      socket_.encrypted() && context_.tls->end_point() ? &*context_.tls->end_point() : nullptr;
  const auto outcome = co_await authenticate_client(socket_, in_, settings.auth, user_,
                                                    context_.credentials, end_point);
  switch (outcome) {
    case auth_outcome::accepted:
      break;
    case auth_outcome::rejected:
      context_.log->warn(
          "client login failed addr={} db={} user={}: password authentication "
          "failed",
          peer_, database_, user_);
      {
        const auto message = fmt::format("password authentication failed for user \"{}\"", user_);
        co_await fail("28P01", message);
      }
      co_return false;
    case auth_outcome::protocol_error:
      co_await fail("08P01", "invalid authentication exchange");
      co_return false;
    case auth_outcome::disconnected:
      end_reason_ = "closed during authentication";
      co_return false;
  }

  if (is_admin_database(settings, database_)) {
    std::string ok;
    protocol::append_authentication_ok(ok);
    if (co_await write_all(socket_, ok)) co_return false;
    // Only now, with the password checked: as PostgreSQL answers a role without CONNECT.
    if (console_access_of(settings, user_) == console_access::none) {
      context_.log->warn("client refused addr={} db={} user={}: not in admin_users or stats_users",
                         peer_, database_, user_);
      co_await fail("42501", console_refusal);
      co_return false;
    }
    admin_ = true;
    pool::session_params reported;
    for (const auto& [name, value] :
         {std::pair<std::string_view, std::string_view>{"server_version", "15.0 (sluice)"},
          {"server_encoding", "UTF8"},
          {"client_encoding", "UTF8"},
          {"DateStyle", "ISO, MDY"},
          {"integer_datetimes", "on"},
          {"standard_conforming_strings", "on"}})
      reported.set(name, value);
    params_.edit() = reported;
    co_return co_await welcome_client(reported);
  }

  database_settings_ = settings.find_database(database_);
  if (!database_settings_) {
    {
      const auto message = fmt::format("database \"{}\" does not exist", database_);
      co_await fail("3D000", message);
    }
    co_return false;
  }
  if (context_.controls.disabled(database_)) {  // the console's DISABLE
    co_await fail("55000",
                  fmt::format("database \"{}\" is not currently accepting connections", database_));
    co_return false;
  }
  auto lookup = context_.pools.get(*database_settings_, user_);
  if (!lookup.pool) {
    co_await fail("08004", lookup.problem);
    co_return false;
  }
  pool_ = std::move(lookup.pool);
  // Until a lease says otherwise (see relay_lease), a server this client holds needs only
  // what its mode asks for when the client leaves.
  exit_plan_.discard = mode_of(pool_->settings()) == pool::pool_mode::session;

  std::string welcome;
  protocol::append_authentication_ok(welcome);
  if (co_await write_all(socket_, welcome)) co_return false;

  // In transaction mode a login like one already seen needs no server at all.
  const bool transaction_mode = mode_of(pool_->settings()) == pool::pool_mode::transaction;
  if (transaction_mode) {
    if (auto profile = pool_->find_login_profile(startup_settings_)) {
      params_ = profile->session.share();
      baseline_ = params_.share();
      co_return co_await welcome_client(profile->reported);
    }
  }

  // The client's session is what a server reports, overridden by its startup settings. A
  // server is needed once to learn those values and to check that PostgreSQL accepts the
  // client's settings, as it would have at a direct login.
  if (!co_await lease_server()) co_return false;
  // A fresh session's values, not this server's current ones: another client's settings
  // may still be applied to it, and sync_sql resets those.
  const auto& reported = server_->params_at_login;
  auto& session = params_.edit();  // a fresh login: this client's own record
  for (const auto& [name, entry] : reported.entries()) session.set(name, entry.value);
  for (const auto& [name, value] : startup_settings_) session.set_tracked(name, value);
  const auto sql = pool::sync_sql(session, server_->params);
  if (!sql.empty()) {
    auto applied =
        co_await execute_internal(*server_, sql, internal_query_timeout, settings.max_message_size);
    if (applied.failed) {
      give_back_server(server_->tx_status == 'I', "startup settings rejected");
      co_await fail(applied.failed->sqlstate, applied.failed->message);
      co_return false;
    }
    if (applied.error) {
      give_back_server(false, "failed while applying startup settings");
      co_await fail("08006", "server closed the connection unexpectedly");
      co_return false;
    }
    // PostgreSQL reported the settings back in canonical form ("utf8" → "UTF8"): the client
    // sees, and is later compared by, those values.
    // Only for names it reports: for others (search_path) the server record may still hold
    // what another client set, since PostgreSQL sends no ParameterStatus for them.
    for (const auto& [name, entry] : session.entries())
      if (reported.get(name))
        if (auto canonical = server_->params.get(name)) session.set(name, *canonical);
    pool::record_sync(session, server_->params);
  }

  const auto reported_copy = reported;  // the server goes back to the pool below
  baseline_ = params_.share();
  if (transaction_mode) {
    pool_->remember_login_profile(startup_settings_, {reported_copy, params_.share()});
    give_back_server(true, "login done");
  }
  co_return co_await welcome_client(reported_copy);
}

awaitable<bool> client_session::welcome_client(const pool::session_params& reported) {
  cancel_key_ = context_.cancels.enroll();
  std::string welcome;
  for (const auto& [name, entry] : reported.entries()) {
    auto value = params_.get().get(name);
    protocol::append_parameter_status(welcome, name, value ? *value : entry.value);
  }
  protocol::append_backend_key_data(welcome, {static_cast<std::int32_t>(cancel_key_->process_id),
                                              static_cast<std::int32_t>(cancel_key_->secret_key)});
  protocol::append_ready_for_query(welcome, 'I');
  co_return !co_await write_all(socket_, welcome);
}

awaitable<bool> client_session::lease_server() {
  const auto asked = std::chrono::steady_clock::now();
  constexpr auto relaxed = std::memory_order_relaxed;
  if (logged_in_) {
    status_.request_since.store(asked.time_since_epoch().count(), relaxed);
    status_.now.store(client_status::state::waiting, relaxed);
  }
  co_await wait_while_paused(context_.controls, database_);
  auto lease = co_await pool_->acquire();
  if (lease.why != lease_result::failure::none && logged_in_)
    status_.now.store(client_status::state::idle, relaxed);
  switch (lease.why) {
    case lease_result::failure::none:
      break;
    case lease_result::failure::timed_out:
      context_.log->warn("client waited too long addr={} pool={}", peer_, pool_->name());
      {
        const auto message = fmt::format("no server connection available in pool \"{}\" within {}",
                                         pool_->name(), format_duration(pool_->settings().timeout));
        co_await fail("53300", message);
      }
      co_return false;
    case lease_result::failure::rejected:
      co_await fail(lease.error->sqlstate, lease.error->message);
      co_return false;
    case lease_result::failure::stopping:
      co_await fail("57P01", "terminating connection because sluice is shutting down");
      co_return false;
  }
  server_ = std::move(lease.server);
  pool_->counters().add_wait(micros_since(asked));
  server_->status->client.store(status_.id, relaxed);
  server_->status->request_since.store(asked.time_since_epoch().count(), relaxed);
  if (logged_in_) {
    status_.server.store(server_->status->id, relaxed);
    status_.now.store(client_status::state::active, relaxed);
  }
  if (!logged_in_) co_return true;  // log_in() syncs the startup settings itself

  // Make the server's session match the client's before the client's bytes reach it.
  const auto sql = pool::sync_sql(params_.get(), server_->params);
  if (sql.empty()) {
    // Equal, perhaps only in meaning (a list spelled differently): record the client's
    // spelling so the next lease takes the fast, exact comparison.
    pool::record_sync(params_.get(), server_->params);
    co_return true;
  }
  auto applied = co_await execute_internal(*server_, sql, internal_query_timeout,
                                           context_.settings.max_message_size);
  if (!applied) {
    context_.log->error("parameter sync failed pool={} pid={}: {}", pool_->name(),
                        server_->backend_pid,
                        applied.failed ? applied.failed->message : applied.error.message());
    give_back_server(false, "parameter sync failed");
    co_await fail("08006", "sluice could not restore the session's settings on a server");
    co_return false;
  }
  pool::record_sync(params_.get(), server_->params);
  co_return true;
}

bool client_session::statements_enabled() const {
  return pool_->settings().mode == config::pool_mode::transaction &&
         pool_->settings().prepared_statements > 0;
}

std::string client_session::statement_context() const {
  // The pool (database and user), then the session settings that change what a statement's
  // text means. Rebuilt per Parse from strings the session keeps built.
  std::string context = database_;
  context += '\0';
  context += user_;
  context += '\0';
  context += params_.get().statement_context();
  return context;
}

pool::intern_function client_session::intern_function() const {
  return [this](std::string_view query, std::span<const std::uint32_t> types) {
    return context_.statements.intern(query, types, statement_context());
  };
}

void client_session::give_back_server(bool reusable, std::string_view why,
                                      pool::server_close_reason reason) {
  if (!server_) return;
  bound_ = {};  // nothing of the client's lives on the next server yet
  keep_until_.reset();
  settings_unknown_ = false;
  if (!reusable)
    context_.log->info("server dropped pool={} pid={} reason=\"{}\"", pool_->name(),
                       server_->backend_pid, why);
  constexpr auto relaxed = std::memory_order_relaxed;
  server_->status->prepared_statements.store(static_cast<std::uint32_t>(server_->statements.size()),
                                             relaxed);
  status_.server.store(0, relaxed);
  if (logged_in_) status_.now.store(client_status::state::idle, relaxed);
  pool_->release(std::move(server_), reusable, reason);
}

void client_session::add_lease_counters(const pool::lease_counters& counted) {
  pool_->counters().add(counted);
  if (!counted.error_classes.empty()) context_.counters.errors.count_classes(counted.error_classes);
}

void client_session::flush_statement_counters() {
  auto& c = statement_counters_;
  if (c.client_parses == 0 && c.server_parses == 0 && c.binds == 0 && c.evictions == 0) return;
  pool_->counters().add(pool::pool_totals{.client_parses = c.client_parses,
                                          .server_parses = c.server_parses,
                                          .binds = c.binds,
                                          .cache_hits = c.parses_saved,
                                          .evictions = c.evictions,
                                          .injected_parses = c.injected_parses});
  c = {};
  status_.prepared_statements.store(static_cast<std::uint32_t>(statements_.size()),
                                    std::memory_order_relaxed);
}

void client_session::count_login_failure(bool timed_out) {
  const std::string_view sqlstate(last_sqlstate_.data(),
                                  strnlen(last_sqlstate_.data(), last_sqlstate_.size()));
  if (!timed_out && sqlstate.empty()) return;  // the client left: nothing failed
  login_failure reason = login_failure::server_refused;
  if (timed_out) {
    reason = login_failure::timeout;
  } else if (sqlstate == "28P01") {
    reason = login_failure::password;
  } else if (sqlstate == "3D000") {
    reason = login_failure::no_such_database;
  } else if (sqlstate == "42501") {
    reason = login_failure::not_allowed;
  } else if (sqlstate == "53300") {
    reason = pool_ ? login_failure::no_server : login_failure::too_many_clients;
  } else if (sqlstate == "57P01") {
    reason = login_failure::stopping;
  } else if (sqlstate == "08P01" || sqlstate == "0A000" || sqlstate == "28000") {
    reason = login_failure::protocol;
  }
  context_.counters.count_login_failure(reason);
}

// Kept small on purpose: this loop's frame, and the frames it awaits while the client is
// idle, are what ten thousand idle clients cost. Everything a request needs lives in the
// frames of start_request() and relay_lease(), which exist only while a request is handled.
awaitable<void> client_session::serve() {
  for (;;) {
    if (server_) {
      // Transaction mode keeps a server between transactions only while something of the
      // client's lives there (see finish_transaction): wait for the next request first.
      if (mode_of(pool_->settings()) == pool::pool_mode::transaction &&
          protocol::peek_header(in_.readable(), context_.settings.max_message_size).status ==
              protocol::frame_status::need_more) {
        if (!co_await wait_holding_server()) co_return;
        continue;
      }
      if (!co_await relay_lease()) co_return;
      continue;
    }
    // Idle in transaction mode: no server until the client's next request arrives.
    const auto header = protocol::peek_header(in_.readable(), context_.settings.max_message_size);
    if (header.status != protocol::frame_status::need_more) {
      if (!co_await start_request()) co_return;
      continue;
    }
    in_.shrink_if_empty(idle_read_size);
    if (pool_->settings().client_idle_timeout) {
      const auto read = co_await read_idle_client_until(*pool_->settings().client_idle_timeout);
      if (read == idle_read::data) continue;
      if (read == idle_read::timed_out)
        co_await fail("57P05", "terminating connection due to idle-session timeout");
      co_return;
    }
    // Read here rather than in a helper coroutine: one frame fewer per idle client. A small
    // buffer, so idle clients cost little; a larger request just takes a second read. Asio
    // tries the read at once only when the socket may have data, so this wait costs no system
    // call of its own (a readiness wait would cost an epoll_ctl every time).
    auto space = in_.prepare(idle_read_size);
    auto [ec, n] =
        co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
    if (ec) co_return;
    in_.commit(n);
  }
}

awaitable<bool> client_session::start_request() {
  const auto max_message = context_.settings.max_message_size;
  const auto header = protocol::peek_header(in_.readable(), max_message);
  if (header.status == protocol::frame_status::error) {
    co_await fail("08P01", "invalid message length");
    co_return false;
  }
  const char type = header.header.type;
  if (type == protocol::frontend_type::terminate) {
    end_reason_ = "client sent Terminate";
    co_return false;
  }
  if (type == protocol::frontend_type::copy_data || type == protocol::frontend_type::copy_done ||
      type == protocol::frontend_type::copy_fail) {
    // COPY data still in flight after the server ended the COPY with an error: PostgreSQL
    // drops these, so sluice does too, without taking a server for them.
    auto whole = protocol::frame_message(in_.readable(), max_message);
    if (whole.status == protocol::frame_status::complete) {
      in_.consume(whole.message.wire.size());
    } else {
      auto space = in_.prepare(header.header.wire_size() - in_.size());
      auto [ec, n] =
          co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
      if (ec) co_return false;
      in_.commit(n);
    }
    co_return true;
  }
  if (type == protocol::frontend_type::parse && statements_enabled()) {
    auto answered =
        pool::answer_parses_locally(in_.readable(), max_message, statements_, intern_function());
    if (answered) {
      statement_counters_.client_parses += answered->parses;
      statement_counters_.parses_saved += answered->parses;
      flush_statement_counters();
      in_.consume(answered->consumed);
      co_return !co_await write_all(socket_, answered->reply);
    }
  }
  co_return co_await lease_server();
}

awaitable<bool> client_session::relay_lease() {
  const auto mode = mode_of(pool_->settings());
  context_.cancels.set_target(*cancel_key_, cancel_target{server_->endpoint, server_->backend_pid,
                                                          server_->backend_secret});
  const auto& pool_settings = pool_->settings();
  const pool::lease_fsm::settings lease_settings{
      .mode = mode,
      .max_message_size = context_.settings.max_message_size,
      .limits = {
          pool_settings.query_timeout, pool_settings.idle_transaction_timeout,
          mode == pool::pool_mode::session ? pool_settings.client_idle_timeout : std::nullopt}};
  // In the coroutine's frame, not on the heap: one allocation less per transaction.
  std::optional<pool::lease_fsm> lease;
  lease.emplace(lease_settings, pool::server_session_view{server_->params, server_->tx_status},
                params_, std::nullopt, pool::clock::now());
  // Transaction mode renames named prepared statements so they survive moving between
  // servers (unless the cache is set to 0) and accounts for what outlives a transaction;
  // session mode passes everything through untouched.
  if (mode == pool::pool_mode::transaction)
    lease->emplace_statements(
        statements_, server_->statements, intern_function(), statement_counters_,
        [this](std::string_view definition) {
          return context_.statements.intern_sql(definition, statement_context());
        },
        &bound_, statements_enabled());
  relay_end end;
  {
    relay driver(socket_, in_, *server_, *lease,
                 [this](pool::lease_counters&& counted) { add_lease_counters(counted); });
    end = co_await driver.run();
  }
  add_lease_counters(lease->take_counters());
  flush_statement_counters();
  context_.cancels.set_target(*cancel_key_, std::nullopt);
  // Checked here, not only inside: most leases have no cancel pending and so skip the
  // coroutine frame a call would allocate.
  if (context_.cancels.pending_cancels(*cancel_key_) > 0) co_await wait_for_cancels();
  exit_plan_ = lease->plan_exit();
  const bool server_said_fatal = lease->server_reported_fatal();
  const auto* ran = lease->statements();
  if (ran && ran->settings_may_have_changed()) {
    settings_unknown_ = true;
    // Custom settings ("app.tenant") are not in pg_settings: the audit asks for them by name.
    for (const auto& name : ran->settings_named())
      if (name.find('.') != std::string::npos) custom_settings_.insert(name);
  }
  const bool sequence_step = ran && ran->advanced_sequence_in_autocommit();
  lease.reset();
  switch (end) {
    case relay_end::released:
      co_return co_await finish_transaction(sequence_step);
    case relay_end::client_gone:
      if (end_reason_.empty()) end_reason_ = "client closed the connection";
      co_return false;  // run() cleans the server up
    case relay_end::server_gone:
      if (!server_said_fatal) {
        co_await fail("08006", "server closed the connection unexpectedly");
      } else {
        end_reason_ = "server sent FATAL";
      }
      give_back_server(false, "server connection lost");
      co_return false;
    case relay_end::client_violation:
      end_reason_ = "protocol violation";
      give_back_server(false, "client broke the protocol mid-request",
                       pool::server_close_reason::client_gone);
      co_return false;
    case relay_end::query_timeout:
      // Cancelled at query_timeout, and still running another query_timeout later.
      co_await fail("57014",
                    "terminating connection: the query ran past query_timeout and did not stop "
                    "when cancelled");
      co_return false;  // run() cancels the query again and drops the server
    case relay_end::idle_in_transaction_timeout:
      co_await fail("25P03", "terminating connection due to idle-in-transaction timeout");
      co_return false;  // run() rolls the transaction back
    case relay_end::client_idle_timeout:
      co_await fail("57P05", "terminating connection due to idle-session timeout");
      co_return false;
  }
  co_return false;
}

awaitable<bool> client_session::finish_transaction(bool sequence_step) {
  // Before anyone else can get the server: read back settings that PostgreSQL does not report
  // (SET search_path, work_mem, set_config(), ...), so both sessions' records are right.
  if (settings_unknown_ && !co_await audit_settings()) {
    give_back_server(false, "reading back session settings failed");
    co_await fail("08006",
                  "sluice lost the server connection before it could read back the session's "
                  "settings");
    co_return false;
  }
  // What lives on this server binds the client to it: open WITH HOLD cursors for as long as
  // they are open; a sequence just advanced in autocommit, for one more statement within
  // lastval_window, while nobody waits for a server.
  const auto& window = pool_->settings().lastval_window;
  if (bound_.pins_server()) {
    keep_until_.reset();
    co_return true;
  }
  if (sequence_step && window && !pool_->has_waiters()) {
    keep_until_ = pool::clock::now() + *window;
    co_return true;
  }
  give_back_server(true, "transaction done");
  co_return true;
}

awaitable<bool> client_session::wait_holding_server() {
  // Bounded by the lastval window, or (cursors) by client_idle_timeout alone.
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  std::optional<milliseconds> limit = pool_->settings().client_idle_timeout;
  bool window_ends_first = false;
  if (keep_until_) {
    const auto left =
        std::max(milliseconds(0), duration_cast<milliseconds>(*keep_until_ - pool::clock::now()));
    if (!limit || left < *limit) {
      limit = left;
      window_ends_first = true;
    }
  }
  const auto read = limit ? co_await read_idle_client_until(*limit) : co_await read_idle_client();
  if (read == idle_read::data) co_return true;
  if (read == idle_read::closed) co_return false;
  if (window_ends_first) {
    give_back_server(true, "lastval window over");
    co_return true;
  }
  co_await fail("57P05", "terminating connection due to idle-session timeout");
  co_return false;
}

std::string client_session::settings_audit_sql() const {
  // Every setting a SET, RESET or set_config() left at session level: what pg_settings lists
  // with source 'session'; role and session_authorization, which it does not list; and the
  // custom settings this client or the server's record named.
  const auto literal = [](std::string_view text) {
    std::string out = "'";
    for (char c : text) {
      if (c == '\'') out += '\'';
      out += c;
    }
    return out + "'";
  };
  const auto login_user = server_->params_at_login.get("session_authorization");
  std::string sql =
      "SELECT name, pg_catalog.current_setting(name) FROM pg_catalog.pg_settings "
      "WHERE source = 'session' "
      "UNION ALL SELECT 'role', pg_catalog.current_setting('role') "
      "WHERE pg_catalog.current_setting('role') <> 'none'";
  if (login_user)
    sql +=
        " UNION ALL SELECT 'session_authorization', "
        "pg_catalog.current_setting('session_authorization') "
        "WHERE pg_catalog.current_setting('session_authorization') <> " +
        literal(*login_user);
  std::set<std::string> custom = custom_settings_;
  for (const auto& [name, entry] : server_->params.entries())
    if (entry.tracked && name.find('.') != std::string::npos) custom.insert(name);
  std::string names;
  for (const auto& name : custom) {
    // Only plain names: anything else PostgreSQL would not have taken as a setting.
    if (!std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
        }))
      continue;
    names += names.empty() ? "" : ", ";
    names += literal(name);
  }
  if (!names.empty())
    sql +=
        " UNION ALL SELECT n, pg_catalog.current_setting(n, true) FROM pg_catalog.unnest("
        "ARRAY[" +
        names + "]::text[]) AS n WHERE pg_catalog.current_setting(n, true) <> ''";
  return sql;
}

awaitable<bool> client_session::audit_settings() {
  const auto sql = settings_audit_sql();
  auto read = co_await query_internal(*server_, sql, internal_query_timeout,
                                      context_.settings.max_message_size);
  if (!read || server_->tx_status != 'I') {
    context_.log->warn("reading back session settings failed pool={} pid={}: {}", pool_->name(),
                       server_->backend_pid,
                       read.failed ? read.failed->message : read.error.message());
    co_return false;
  }
  std::vector<std::pair<std::string, std::string>> session_level;
  for (auto& row : read.rows)
    if (row.size() == 2 && row[0] && row[1]) session_level.emplace_back(*row[0], *row[1]);
  pool::apply_settings_audit(session_level, server_->params_at_login, baseline_.get(),
                             params_.edit(), server_->params);
  if (context_.log->should_log(spdlog::level::debug)) {
    std::string seen;
    for (const auto& [name, value] : session_level) seen += name + "=" + value + " ";
    context_.log->debug("session settings read back pool={} pid={}: {}", pool_->name(),
                        server_->backend_pid, seen);
  }
  settings_unknown_ = false;
  co_return true;
}

awaitable<void> client_session::wait_for_cancels() {
  // Rare: only right after this client's query was cancelled. Polled, briefly and bounded.
  asio::steady_timer pause(socket_.get_executor());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  while (context_.cancels.pending_cancels(*cancel_key_) > 0 &&
         std::chrono::steady_clock::now() < give_up) {
    pause.expires_after(std::chrono::milliseconds(1));
    co_await pause.async_wait(use_nothrow);
  }
}

awaitable<client_session::idle_read> client_session::read_idle_client() {
  auto space = in_.prepare(idle_read_size);
  auto [ec, n] =
      co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
  if (ec) co_return idle_read::closed;
  in_.commit(n);
  co_return idle_read::data;
}

// Waits for more bytes from a client that holds no server, up to client_idle_timeout.
awaitable<client_session::idle_read> client_session::read_idle_client_until(
    std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  auto space = in_.prepare(idle_read_size);
  asio::steady_timer deadline(socket_.get_executor(), limit);
  auto winner =
      co_await (socket_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow) ||
                deadline.async_wait(use_nothrow));
  if (winner.index() == 1) co_return idle_read::timed_out;
  auto [ec, n] = std::get<0>(winner);
  if (ec) co_return idle_read::closed;
  in_.commit(n);
  co_return idle_read::data;
}

awaitable<void> client_session::serve_admin() {
  constexpr std::uint32_t max_admin_message = 64 * 1024;
  admin_console console(
      console_access_of(context_.settings, user_), [this] { return take_snapshot(context_); },
      &context_.controls, &context_.directory);
  for (;;) {
    auto read = co_await read_message(socket_, in_, read_kind::typed, max_admin_message);
    if (read.error) co_return;
    if (read.protocol_error) {
      co_await fail("08P01", "invalid message length");
      co_return;
    }
    if (read.message.type == protocol::frontend_type::terminate) {
      end_reason_ = "client sent Terminate";
      co_return;
    }
    auto reply = console.answer(read.message);
    in_.consume(read.message.wire.size());
    if (auto wait = console.take_release_wait())
      co_await wait_until_released(context_.pools, wait->database);
    if (!reply.empty() && co_await write_all(socket_, reply)) co_return;
  }
}

awaitable<void> client_session::leave_server_clean() {
  if (!server_) co_return;
  const auto max_message = context_.settings.max_message_size;
  if (exit_plan_.close) {
    if (exit_plan_.cancel_first)
      send_cancel_request(socket_.get_executor(), server_->endpoint, server_->backend_pid,
                          server_->backend_secret);
    give_back_server(false, "client left mid-request", pool::server_close_reason::client_gone);
    co_return;
  }
  if (exit_plan_.rollback || server_->tx_status != 'I') {
    auto rolled_back =
        co_await execute_internal(*server_, "ROLLBACK", internal_query_timeout, max_message);
    if (!rolled_back || server_->tx_status != 'I') {
      give_back_server(false, "rollback after client exit failed");
      co_return;
    }
  }
  if (settings_unknown_ && !exit_plan_.discard && !co_await audit_settings()) {
    give_back_server(false, "reading back session settings failed");
    co_return;
  }
  if (exit_plan_.discard) {
    auto reset =
        co_await execute_internal(*server_, "DISCARD ALL", internal_query_timeout, max_message);
    if (!reset) {
      give_back_server(false, "DISCARD ALL failed");
      co_return;
    }
  }
  give_back_server(true, "client gone");
}

awaitable<void> client_session::forward_cancel(const pool::backend_key& key) {
  // Only while the client runs a request on a server; the server stays its own until the
  // cancel is delivered (see cancel_directory).
  auto target = context_.cancels.begin_cancel(key);
  if (!target) co_return;  // nothing running, or not a key sluice gave out: dropped silently
  context_.log->info("cancel forwarded addr={} server_pid={}", peer_, target->process_id);
  co_await cancel_and_wait(target->server, target->process_id, target->secret_key);
  context_.cancels.end_cancel(key);
}

}  // namespace sluice::proxy
