#include "proxy/metrics_endpoint.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>

namespace sluice::proxy {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr auto request_deadline = std::chrono::seconds(10);  // idle keep-alive included
constexpr std::uint32_t max_request_bytes = 8192;

bool ready(const admin_snapshot& snapshot) {
  return !snapshot.draining && std::all_of(snapshot.pools.begin(), snapshot.pools.end(),
                                           [](const auto& pool) { return pool.reachable; });
}

http::response<http::string_body> respond(const http::request<http::empty_body>& request,
                                          const std::function<admin_snapshot()>& snapshot) {
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.set(http::field::server, "sluice");
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  const auto target = request.target().substr(0, request.target().find('?'));
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET, HEAD");
    response.body() = "sluice answers GET and HEAD only\n";
  } else if (target == "/metrics") {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.body() = render_metrics(snapshot());
  } else if (target == "/healthz") {
    response.result(http::status::ok);
    response.body() = "ok\n";
  } else if (target == "/readyz") {
    const bool is_ready = ready(snapshot());
    response.result(is_ready ? http::status::ok : http::status::service_unavailable);
    response.body() = is_ready ? "ready\n" : "not ready: draining or an upstream is unreachable\n";
  } else {
    response.result(http::status::not_found);
    response.body() = "sluice serves /metrics, /healthz and /readyz\n";
  }
  response.prepare_payload();  // Content-Length of the body, also for HEAD
  return response;
}

awaitable<void> serve_connection(tcp::socket socket, std::function<admin_snapshot()> snapshot) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(max_request_bytes);
  for (;;) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(max_request_bytes);
    stream.expires_after(request_deadline);
    auto [read_error, _] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    if (read_error) break;  // closed, timed out or malformed: nothing to answer
    const auto& request = parser.get();
    auto response = respond(request, snapshot);
    const bool head = request.method() == http::verb::head;
    stream.expires_after(request_deadline);
    error_code write_error;
    if (head) {
      http::response_serializer<http::string_body> serializer(response);
      std::tie(write_error, std::ignore) =
          co_await http::async_write_header(stream, serializer, use_nothrow);
    } else {
      std::tie(write_error, std::ignore) =
          co_await http::async_write(stream, response, use_nothrow);
    }
    if (write_error || !response.keep_alive()) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

awaitable<void> serve_metrics(tcp::acceptor& acceptor, std::function<admin_snapshot()> snapshot,
                              std::shared_ptr<spdlog::logger> log) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      log->warn("metrics accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, serve_connection(std::move(socket), snapshot), asio::detached);
  }
}

}  // namespace sluice::proxy
