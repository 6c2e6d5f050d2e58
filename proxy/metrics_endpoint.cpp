#include "proxy/metrics_endpoint.hpp"

#include <fmt/format.h>

#include "proxy/message_io.hpp"

namespace sluice::proxy {
namespace {

// Label values escape backslash, double quote and newline, as the format requires.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

struct http_result {
  error_code error;
  std::string request;
};

awaitable<http_result> read_request(stream_socket& socket) {
  constexpr std::size_t max_request = 8192;
  http_result out;
  char chunk[1024];
  while (out.request.find("\r\n\r\n") == std::string::npos) {
    if (out.request.size() > max_request) {
      out.error = asio::error::message_size;
      co_return out;
    }
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), use_nothrow);
    if (ec) {
      out.error = ec;
      co_return out;
    }
    out.request.append(chunk, n);
  }
  co_return out;
}

awaitable<void> answer(stream_socket socket, std::function<admin_snapshot()> snapshot) {
  auto request = co_await with_deadline(socket, std::chrono::seconds(5), read_request(socket));
  if (request.error) co_return;
  std::string body, status = "200 OK";
  if (request.request.starts_with("GET /metrics ") ||
      request.request.starts_with("GET /metrics?")) {
    body = render_metrics(snapshot());
  } else {
    status = "404 Not Found";
    body = "sluice serves GET /metrics only\n";
  }
  const auto response = fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
      "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, body.size(), body);
  co_await write_all(socket, response);
  error_code ignored;
  socket.shutdown(stream_socket::shutdown_both, ignored);
}

}  // namespace

std::string render_metrics(const admin_snapshot& snapshot) {
  std::string out;
  out += "# HELP sluice_clients Client connections open.\n# TYPE sluice_clients gauge\n";
  out += fmt::format("sluice_clients {}\n", snapshot.clients_open);
  out +=
      "# HELP sluice_prepared_statements Distinct prepared statements in the registry.\n"
      "# TYPE sluice_prepared_statements gauge\n";
  out += fmt::format("sluice_prepared_statements {}\n", snapshot.prepared_statements);
  out +=
      "# HELP sluice_pool_servers Server connections per pool, by state.\n"
      "# TYPE sluice_pool_servers gauge\n";
  for (const auto& pool : snapshot.pools) {
    const auto labels =
        fmt::format("database=\"{}\",user=\"{}\"", label(pool.database), label(pool.user));
    out += fmt::format("sluice_pool_servers{{{},state=\"idle\"}} {}\n", labels, pool.servers.idle);
    out +=
        fmt::format("sluice_pool_servers{{{},state=\"active\"}} {}\n", labels, pool.servers.active);
    out += fmt::format("sluice_pool_servers{{{},state=\"connecting\"}} {}\n", labels,
                       pool.servers.connecting);
  }
  out +=
      "# HELP sluice_pool_waiting_clients Clients waiting for a server, per pool.\n"
      "# TYPE sluice_pool_waiting_clients gauge\n";
  for (const auto& pool : snapshot.pools)
    out += fmt::format("sluice_pool_waiting_clients{{database=\"{}\",user=\"{}\"}} {}\n",
                       label(pool.database), label(pool.user), pool.servers.waiting);
  out += "# HELP sluice_pool_size The pool's size setting.\n# TYPE sluice_pool_size gauge\n";
  for (const auto& pool : snapshot.pools)
    out += fmt::format("sluice_pool_size{{database=\"{}\",user=\"{}\"}} {}\n", label(pool.database),
                       label(pool.user), pool.settings.size);
  return out;
}

awaitable<void> serve_metrics(tcp::acceptor& acceptor, std::function<admin_snapshot()> snapshot,
                              std::shared_ptr<spdlog::logger> log) {
  for (;;) {
    stream_socket socket(acceptor.get_executor());
    auto [ec] = co_await acceptor.async_accept(socket, use_nothrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      log->warn("metrics accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, answer(std::move(socket), snapshot), asio::detached);
  }
}

}  // namespace sluice::proxy
