#include "proxy/server_connection.hpp"

#include <sys/socket.h>

#include "pool/idle_server_messages.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/md5_auth.hpp"
#include "protocol/scram.hpp"
#include "protocol/startup.hpp"
#include "proxy/message_io.hpp"

namespace sluice::proxy {
namespace {

bool is_socket_directory(const std::string& host) {
  return !host.empty() && host.front() == '/';
}

// libpq's name for a server's socket in `directory`.
stream_endpoint unix_socket_endpoint(const std::string& directory, std::uint16_t port) {
  return asio::local::stream_protocol::endpoint(directory + "/.s.PGSQL." + std::to_string(port));
}

struct login_steps {
  server_connection& server;
  const upstream_login& login;
  std::uint32_t max_message_size;
  std::optional<protocol::scram_client_fsm> scram{};
};

// Answers one Authentication request. Returns a problem description, or "" to go on.
std::string answer_authentication(login_steps& steps, const protocol::authentication& auth,
                                  std::string& reply) {
  namespace code = protocol::auth_code;
  switch (auth.code) {
    case code::ok:
      return {};
    case code::cleartext:
      protocol::append_password_message(reply, steps.login.password);
      return {};
    case code::md5: {
      if (auth.data.size() != 4) return "malformed md5 salt from server";
      const auto hash = protocol::md5_password_hash(steps.login.password, steps.login.user);
      protocol::append_password_message(
          reply,
          protocol::md5_salted_response(hash, std::span<const char, 4>(auth.data.data(), 4)));
      return {};
    }
    case code::sasl: {
      bool offered = false;
      for (auto mechanism : protocol::sasl_mechanisms(auth.data))
        if (mechanism == "SCRAM-SHA-256") offered = true;
      if (!offered) return "server offers no SASL mechanism sluice supports";
      steps.scram.emplace(steps.login.password);
      protocol::append_sasl_initial_response(reply, "SCRAM-SHA-256",
                                             steps.scram->client_first_message());
      return {};
    }
    case code::sasl_continue: {
      if (!steps.scram) return "unexpected SASL continue from server";
      auto final_message =
          steps.scram->on_server_first(std::string_view(auth.data.data(), auth.data.size()));
      if (!final_message) return "server sent an invalid SCRAM challenge";
      protocol::append_sasl_response(reply, *final_message);
      return {};
    }
    case code::sasl_final: {
      if (!steps.scram) return "unexpected SASL final from server";
      if (steps.scram->on_server_final(std::string_view(auth.data.data(), auth.data.size())))
        return "server failed SCRAM verification (wrong server signature)";
      return {};
    }
    default:
      return "server asks for an unsupported authentication method (code " +
             std::to_string(auth.code) + ")";
  }
}

awaitable<open_outcome> login(server_connection& server, const upstream_login& login_as,
                              std::uint32_t max_message_size) {
  open_outcome out;
  std::vector<std::pair<std::string, std::string>> params{{"user", login_as.user},
                                                          {"database", login_as.database}};
  if (!login_as.options.empty()) params.emplace_back("options", login_as.options);
  if (!login_as.application_name.empty())
    params.emplace_back("application_name", login_as.application_name);
  std::string request;
  protocol::append_startup_message(request, params);
  if ((out.error = co_await write_all(server.socket, request))) co_return out;

  login_steps steps{server, login_as, max_message_size};
  for (;;) {
    auto read =
        co_await read_message(server.socket, server.buffer, read_kind::typed, max_message_size);
    if (read.error) {
      out.error = read.error;
      co_return out;
    }
    if (read.protocol_error) {
      out.problem = "server sent a malformed message: " + read.protocol_error.message();
      co_return out;
    }
    const auto message = read.message;
    std::string reply;
    switch (message.type) {
      case 'R': {
        auto auth = protocol::decode_authentication(message.body);
        if (!auth) {
          out.problem = "malformed authentication request from server";
          co_return out;
        }
        out.problem = answer_authentication(steps, *auth, reply);
        break;
      }
      case 'S':
        if (auto status = protocol::decode_parameter_status(message.body))
          server.params.set(status->name, status->value);
        break;
      case 'K':
        if (auto key = protocol::decode_backend_key_data(message.body)) {
          server.backend_pid = key->process_id;
          server.backend_secret = key->secret_key;
        }
        break;
      case 'E':
        out.rejected = copy_error(message.body);
        break;
      case 'Z':
        if (auto ready = protocol::decode_ready_for_query(message.body))
          server.tx_status = ready->status;
        server.buffer.consume(message.wire.size());
        co_return out;
      default:  // NoticeResponse, NegotiateProtocolVersion: nothing to act on
        break;
    }
    server.buffer.consume(message.wire.size());
    if (out.rejected || !out.problem.empty()) co_return out;
    if (!reply.empty() && (out.error = co_await write_all(server.socket, reply))) co_return out;
  }
}

}  // namespace

server_error copy_error(std::span<const char> error_body) {
  server_error error;
  if (auto decoded = protocol::decode_error_response(error_body)) {
    error.severity = decoded->field('S');
    error.sqlstate = decoded->sqlstate();
    error.message = decoded->message();
    error.detail = decoded->field('D');
  }
  return error;
}

awaitable<open_outcome> open_server(server_connection& server,
                                    const config::upstream_settings& upstream,
                                    const upstream_login& login_as,
                                    std::chrono::milliseconds connect_timeout,
                                    std::chrono::milliseconds login_timeout,
                                    std::uint32_t max_message_size) {
  open_outcome out;
  // Every address the host has, tried in turn as libpq does: a Unix-domain socket in a
  // directory (host=/var/run/postgresql: its .s.PGSQL.<port>), or the host's TCP addresses.
  std::vector<stream_endpoint> candidates;
  if (is_socket_directory(upstream.host)) {
    candidates.emplace_back(unix_socket_endpoint(upstream.host, upstream.port));
  } else {
    tcp::resolver resolver(server.socket.get_executor());
    // Locals, not temporaries inside the co_await: GCC 12 mishandles the lifetime of
    // temporaries in co_await expressions (it freed one twice here).
    const std::string host = upstream.host;
    const std::string port = std::to_string(upstream.port);
    auto [resolve_error, endpoints] = co_await resolver.async_resolve(host, port, use_nothrow);
    if (resolve_error) {
      out.error = resolve_error;
      co_return out;
    }
    for (const auto& entry : endpoints) candidates.emplace_back(entry.endpoint());
  }

  struct connect_result {
    error_code error;
  };
  auto connect = [&]() -> awaitable<connect_result> {
    error_code last = asio::error::host_not_found;
    for (const auto& candidate : candidates) {
      error_code ignored;
      server.socket.close(ignored);
      server.socket.open(candidate.protocol(), last);
      if (last) continue;
      auto [ec] = co_await server.socket.async_connect(candidate, use_nothrow);
      if (!ec) {
        server.endpoint = candidate;
        co_return connect_result{};
      }
      last = ec;
    }
    co_return connect_result{last};
  };
  auto connected = co_await with_deadline(server.socket, connect_timeout, connect());
  if (connected.error) {
    out.error = connected.error;
    co_return out;
  }
  // TCP only; a Unix-domain socket refuses these, which is fine.
  error_code not_tcp;
  server.socket.set_option(tcp::no_delay(true), not_tcp);
  server.socket.set_option(asio::socket_base::keep_alive(true), not_tcp);

  out = co_await with_deadline(server.socket, login_timeout,
                               login(server, login_as, max_message_size));
  server.opened_at = std::chrono::steady_clock::now();
  server.params_at_login = server.params;
  co_return out;
}

awaitable<rows_outcome> query_internal(server_connection& server, std::string_view sql,
                                       std::chrono::milliseconds timeout,
                                       std::uint32_t max_message_size) {
  auto run = [&]() -> awaitable<rows_outcome> {
    rows_outcome out;
    std::string request;
    protocol::append_query(request, sql);
    if ((out.error = co_await write_all(server.socket, request))) co_return out;
    for (;;) {
      auto read =
          co_await read_message(server.socket, server.buffer, read_kind::typed, max_message_size);
      if (!read) {
        out.error = read.error ? read.error : asio::error::invalid_argument;
        co_return out;
      }
      const auto message = read.message;
      if (message.type == 'S') {
        if (auto status = protocol::decode_parameter_status(message.body))
          server.params.set(status->name, status->value);
      } else if (message.type == 'D') {
        if (auto row = protocol::decode_data_row(message.body)) {
          auto& kept = out.rows.emplace_back();
          for (const auto& value : row->values)
            kept.push_back(value ? std::optional<std::string>(*value) : std::nullopt);
        }
      } else if (message.type == 'E' && !out.failed) {
        out.failed = copy_error(message.body);
      } else if (message.type == 'Z') {
        if (auto ready = protocol::decode_ready_for_query(message.body))
          server.tx_status = ready->status;
        server.buffer.consume(message.wire.size());
        co_return out;
      }
      server.buffer.consume(message.wire.size());
    }
  };
  // A local, not a temporary in the co_return: see open_server about GCC 12.
  auto out = co_await with_deadline(server.socket, timeout, run());
  co_return out;
}

awaitable<exec_outcome> execute_internal(server_connection& server, std::string_view sql,
                                         std::chrono::milliseconds timeout,
                                         std::uint32_t max_message_size) {
  auto result = co_await query_internal(server, sql, timeout, max_message_size);
  exec_outcome out;
  out.error = result.error;
  out.failed = std::move(result.failed);
  co_return out;
}

awaitable<void> cancel_and_wait(stream_endpoint server, std::int32_t process_id,
                                std::int32_t secret_key) {
  stream_socket upstream(co_await asio::this_coro::executor);
  auto exchange = [&]() -> awaitable<open_outcome> {
    open_outcome out;
    upstream.open(server.protocol(), out.error);
    if (out.error) co_return out;
    auto [ec] = co_await upstream.async_connect(server, use_nothrow);
    if ((out.error = ec)) co_return out;
    std::string request;
    protocol::append_cancel_request(request, {process_id, secret_key});
    if ((out.error = co_await write_all(upstream, request))) co_return out;
    char ignored[16];
    for (;;) {  // the postmaster sends nothing; it closes once the signals are out
      auto [read_error, n] = co_await upstream.async_read_some(asio::buffer(ignored), use_nothrow);
      if (read_error) co_return out;
    }
  };
  co_await with_deadline(upstream, std::chrono::seconds(5), exchange());
}

void send_cancel_request(asio::any_io_executor executor, stream_endpoint server,
                         std::int32_t process_id, std::int32_t secret_key) {
  asio::co_spawn(executor, cancel_and_wait(server, process_id, secret_key), asio::detached);
}

bool idle_server_fit(server_connection& server, std::uint32_t max_message_size) {
  if (!server.socket.is_open()) return false;
  for (;;) {
    auto space = server.buffer.prepare(4096);
    const auto n = ::recv(server.socket.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
    if (n == 0) return false;  // orderly shutdown by the server
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;  // any other error: dead
    }
    server.buffer.commit(static_cast<std::size_t>(n));
    if (server.buffer.size() > max_message_size) return false;  // no idle server says that much
  }
  if (server.buffer.empty()) return true;
  const auto scan = pool::scan_idle_server_bytes(server.buffer.readable(), max_message_size);
  for (const auto& [name, value] : scan.parameter_status) server.params.set(name, value);
  server.buffer.consume(scan.consumed);
  // A message still arriving in part is left for whoever reads the server next.
  return scan.fit;
}

}  // namespace sluice::proxy
