#include "proxy/server_connection.hpp"

#include <sys/socket.h>

#include "pool/idle_server_messages.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/server_login_fsm.hpp"
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

awaitable<open_outcome> login(server_connection& server, const upstream_login& login_as,
                              std::uint32_t max_message_size) {
  // The driver of protocol::server_login_fsm: it reads and writes, the fsm decides.
  open_outcome out;
  protocol::server_login_fsm fsm({login_as.user, login_as.password, login_as.database,
                                  login_as.options, login_as.application_name},
                                 max_message_size);
  const auto startup = fsm.start();
  if ((out.error = co_await write_all(server.socket, startup))) co_return out;
  for (;;) {
    const auto step = fsm.on_server_bytes(server.buffer.readable());
    server.buffer.consume(step.consumed);
    using state = protocol::server_login_fsm::state;
    switch (step.now) {
      case state::ready: {
        const auto& session = fsm.ready_session();
        for (const auto& [name, value] : session.parameters) server.params.set(name, value);
        server.backend_pid = session.process_id;
        server.backend_secret = session.secret_key;
        server.tx_status = session.transaction_status;
        co_return out;
      }
      case state::rejected: {
        const auto& refused = fsm.refused();
        out.rejected =
            server_error{refused.severity, refused.sqlstate, refused.message, refused.detail};
        co_return out;
      }
      case state::failed:
        out.problem = fsm.problem();
        co_return out;
      case state::tls_handshake:  // never: this driver sends no SSLRequest yet
        out.problem = "TLS towards servers is not supported yet";
        co_return out;
      case state::reading:
        break;
    }
    if (!step.reply.empty() && (out.error = co_await write_all(server.socket, step.reply)))
      co_return out;
    auto space = server.buffer.prepare(4096);
    auto [ec, n] = co_await server.socket.async_read_some(asio::buffer(space.data(), space.size()),
                                                          use_nothrow);
    if (ec) {
      out.error = ec;
      co_return out;
    }
    server.buffer.commit(n);
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
