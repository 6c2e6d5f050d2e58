#include "proxy/daemon.hpp"

#include <functional>
#include <thread>
#include <vector>

#include "proxy/asio.hpp"
#include "proxy/cancel_directory.hpp"
#include "proxy/client_session.hpp"
#include "proxy/client_tls.hpp"
#include "proxy/credentials.hpp"
#include "proxy/metrics_endpoint.hpp"
#include "proxy/pool_registry.hpp"
#include "proxy/worker_set.hpp"

namespace sluice::proxy {
namespace {

awaitable<void> accept_loop(tcp::acceptor& acceptor, daemon_context& context, worker_set& workers) {
  for (;;) {
    // Each session lives on one worker's context, spread round robin; nothing else runs its
    // handlers, so it needs no strand.
    stream_socket socket(workers.next());
    auto [ec] = co_await acceptor.async_accept(socket, use_nothrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: log, back off briefly, keep serving the clients we have.
      context.log->error("accept failed: {}", ec.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto executor = socket.get_executor();  // the session's worker
    auto session = std::make_shared<client_session>(context, std::move(socket));
    asio::co_spawn(
        executor, [session]() { return session->run(); },
        [log = context.log](std::exception_ptr error) {
          // One session's bug must never take the daemon down.
          if (!error) return;
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            log->error("session ended by exception: {}", e.what());
          }
        });
  }
}

tcp::endpoint listen_endpoint(asio::io_context& io, const config::listen_settings& listen) {
  tcp::resolver resolver(io);
  auto results = resolver.resolve(listen.host, std::to_string(listen.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service);
  return results.begin()->endpoint();
}

}  // namespace

int run_daemon(const config::settings& settings, std::shared_ptr<spdlog::logger> log) {
  const unsigned threads = worker_count(settings.workers);
  worker_set workers(threads);
  asio::io_context& io = workers.first();  // the listener and signals live here

  credential_store credentials(settings.users);
  pool_registry pools(workers, settings, credentials, log);
  cancel_directory cancels;
  shared_statement_registry statements;
  std::unique_ptr<client_tls> tls;
  if (settings.listen.tls.effective_mode() != config::client_tls_mode::disable) {
    try {
      tls = std::make_unique<client_tls>(settings.listen.tls);
    } catch (const std::exception& e) {
      log->critical("cannot set up TLS: {}", e.what());
      return 1;
    }
    if (!tls->end_point())
      log->warn(
          "listen.tls.cert_file: no tls-server-end-point hash for this certificate's "
          "signature algorithm; SCRAM-SHA-256-PLUS (channel binding) is not offered");
  }
  client_directory directory;
  daemon_counters counters;
  console_controls controls;
  daemon_context context{settings,  credentials, pools,    cancels, statements,
                         directory, counters,    controls, log,     tls.get()};

  tcp::acceptor acceptor(io);
  try {
    const auto endpoint = listen_endpoint(io, settings.listen);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    log->critical("cannot listen on {}:{}: {}", settings.listen.host, settings.listen.port,
                  e.what());
    return 1;
  }
  log->info("sluice listening on {}:{} workers={} databases={} users={}", settings.listen.host,
            settings.listen.port, threads, settings.databases.size(), settings.users.size());

  asio::co_spawn(io, accept_loop(acceptor, context, workers), asio::detached);

  tcp::acceptor metrics(io);
  if (settings.listen.metrics_port != 0) {
    try {
      const auto endpoint = listen_endpoint(
          io,
          {.host = settings.listen.host, .port = settings.listen.metrics_port, .metrics_port = 0});
      metrics.open(endpoint.protocol());
      metrics.set_option(tcp::acceptor::reuse_address(true));
      metrics.bind(endpoint);
      metrics.listen();
    } catch (const std::exception& e) {
      log->critical("cannot listen for metrics on {}:{}: {}", settings.listen.host,
                    settings.listen.metrics_port, e.what());
      return 1;
    }
    log->info("metrics on http://{}:{}/metrics", settings.listen.host,
              settings.listen.metrics_port);
    asio::co_spawn(io,
                   serve_metrics(
                       metrics, [&] { return take_snapshot(context); }, log),
                   asio::detached);
  }
  pools.warm_up();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](error_code ec, int signal) {
    if (ec) return;
    log->info("signal {} received: shutting down", signal);
    error_code ignored;
    acceptor.close(ignored);
    metrics.close(ignored);
    pools.stop_all();
    workers.stop();
  });
  // SIGHUP must not kill the daemon (its default action): a live reload is not implemented
  // yet, so say so and keep serving with the config it has.
  asio::signal_set hangups(io, SIGHUP);
  std::function<void(error_code, int)> on_hangup = [&](error_code ec, int) {
    if (ec) return;
    log->warn(
        "SIGHUP received: reloading the config is not supported yet; restart sluice to "
        "apply changes (still serving with the config it started with)");
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);
  // As PgBouncer: SIGUSR1 is PAUSE (every database), SIGUSR2 is RESUME.
  asio::signal_set pause_signals(io, SIGUSR1, SIGUSR2);
  std::function<void(error_code, int)> on_pause_signal = [&](error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGUSR1) {
      log->info("SIGUSR1 received: pausing every database (new transactions wait)");
      controls.pause(std::nullopt);
    } else {
      log->info("SIGUSR2 received: resuming every database");
      controls.resume(std::nullopt);
    }
    pause_signals.async_wait(on_pause_signal);
  };
  pause_signals.async_wait(on_pause_signal);

  workers.run();
  log->info("sluice stopped");
  return 0;
}

}  // namespace sluice::proxy
