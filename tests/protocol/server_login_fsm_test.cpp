// server_login_fsm against a scripted PostgreSQL: the real SCRAM server fsm on the other side,
// md5 and cleartext, every reply split at every byte, and a failure injected at every step
// (the server's ErrorResponse, a broken message, a wrong signature, the connection ending).
#include "protocol/server_login_fsm.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/md5_auth.hpp"
#include "protocol/scram_server_fsm.hpp"
#include "protocol/scram_verifier.hpp"
#include "protocol/startup.hpp"

namespace sluice::protocol {
namespace {

constexpr std::uint32_t max_message = 1 << 20;
const server_login_fsm::login credentials{"app", "s3cret", "appdb", "-c work_mem=8MB", "svc"};

// The messages of `bytes` (whole ones only).
std::vector<message_view> messages_of(const std::string& bytes) {
  std::vector<message_view> out;
  std::span<const char> rest(bytes.data(), bytes.size());
  while (!rest.empty()) {
    const auto framed = frame_message(rest, max_message);
    REQUIRE(framed.status == frame_status::complete);
    out.push_back(framed.message);
    rest = rest.subspan(framed.message.wire.size());
  }
  return out;
}

std::string session_tail() {
  std::string out;
  append_authentication_ok(out);
  append_parameter_status(out, "server_version", "15.18");
  append_parameter_status(out, "TimeZone", "UTC");
  append_backend_key_data(out, {4242, 777});
  append_ready_for_query(out, 'I');
  return out;
}

std::string error(std::string_view sqlstate, std::string_view message) {
  std::string out;
  append_error_response(out, {.severity = "FATAL", .sqlstate = sqlstate, .message = message});
  return out;
}

// A PostgreSQL that asks for `method` and answers what the client sends. Each round is the
// server's bytes for the client's last message; `tamper` may change any of them.
class scripted_server {
 public:
  enum class method { scram, md5, cleartext };
  explicit scripted_server(method m, std::string password = "s3cret")
      : method_(m),
        password_(std::move(password)),
        scram_(make_scram_verifier(password_, "0123456789abcdef")) {}

  // The server's answer to `client` (the StartupMessage first, then each reply).
  std::string answer(const std::string& client) {
    std::string out;
    if (round_++ == 0) {
      REQUIRE(decode_startup_packet({client.data() + 4, client.size() - 4}));
      switch (method_) {
        case method::scram: {
          const std::array<std::string_view, 1> mechanisms{"SCRAM-SHA-256"};
          append_authentication_sasl(out, mechanisms);
          break;
        }
        case method::md5:
          append_authentication_md5(out, std::span<const char, 4>(salt_, 4));
          break;
        case method::cleartext:
          append_authentication_cleartext(out);
          break;
      }
      return out;
    }
    const auto sent = messages_of(client);
    REQUIRE(sent.size() == 1);
    REQUIRE(sent[0].type == 'p');
    switch (method_) {
      case method::scram:
        if (round_ == 2) {
          const auto first = decode_sasl_initial_response(sent[0].body);
          REQUIRE(first);
          const auto server_first = scram_.on_client_first(first->data);
          REQUIRE(server_first);
          append_authentication_sasl_continue(out, *server_first);
          return out;
        } else {
          const auto final_message = decode_sasl_response(sent[0].body);
          REQUIRE(final_message);
          const auto server_final = scram_.on_client_final(final_message->data);
          if (!server_final) return error("28P01", "password authentication failed");
          append_authentication_sasl_final(out, *server_final);
          return out + session_tail();
        }
      case method::md5: {
        const auto password = decode_password_message(sent[0].body);
        REQUIRE(password);
        const auto expected = md5_salted_response(md5_password_hash(password_, "app"),
                                                  std::span<const char, 4>(salt_, 4));
        if (password->password != expected) return error("28P01", "password authentication failed");
        return session_tail();
      }
      case method::cleartext: {
        const auto password = decode_password_message(sent[0].body);
        REQUIRE(password);
        if (password->password != password_)
          return error("28P01", "password authentication failed");
        return session_tail();
      }
    }
    return out;
  }

 private:
  method method_;
  std::string password_;
  scram_server_fsm scram_;
  const char salt_[4] = {'\x01', '\x02', '\x03', '\x04'};
  int round_ = 0;
};

// Drives a login: the server's bytes are delivered in pieces of `piece` bytes; `tamper` may
// replace what the server says in round N. Returns the final state.
server_login_fsm::state run(server_login_fsm& fsm, scripted_server& server, std::size_t piece,
                            const std::function<std::string(int, std::string)>& tamper = {}) {
  std::string to_server = fsm.start();
  for (int round = 0; round < 10; ++round) {
    auto from_server = server.answer(to_server);
    if (tamper) from_server = tamper(round, from_server);
    to_server.clear();
    std::string buffered;
    for (std::size_t at = 0; at < from_server.size(); at += piece) {
      buffered += from_server.substr(at, piece);
      const auto step = fsm.on_server_bytes({buffered.data(), buffered.size()});
      buffered.erase(0, step.consumed);
      to_server += step.reply;
      if (step.now != server_login_fsm::state::reading) return step.now;
    }
    if (to_server.empty()) return fsm.current();  // nothing more to say: the stream ended here
  }
  return fsm.current();
}

TEST_CASE("server_login_fsm: logs in with each method, bytes split anywhere",
          "[protocol][server_login]") {
  using method = scripted_server::method;
  const auto m = GENERATE(method::scram, method::md5, method::cleartext);
  const auto piece = GENERATE(as<std::size_t>{}, 1, 2, 3, 7, 100000);
  CAPTURE(static_cast<int>(m), piece);
  server_login_fsm fsm(credentials, max_message);
  scripted_server server(m);
  REQUIRE(run(fsm, server, piece) == server_login_fsm::state::ready);
  const auto& session = fsm.ready_session();
  CHECK(session.process_id == 4242);
  CHECK(session.secret_key == 777);
  CHECK(session.transaction_status == 'I');
  REQUIRE(session.parameters.size() == 2);
  CHECK(session.parameters[1] == std::pair<std::string, std::string>{"TimeZone", "UTC"});
}

TEST_CASE("server_login_fsm: the startup packet names the user, database and options",
          "[protocol][server_login]") {
  const server_login_fsm fsm(credentials, max_message);
  const auto startup = fsm.start();
  const auto packet = decode_startup_packet({startup.data() + 4, startup.size() - 4});
  REQUIRE(packet);
  std::map<std::string, std::string> params(packet->parameters.begin(), packet->parameters.end());
  CHECK(params["user"] == "app");
  CHECK(params["database"] == "appdb");
  CHECK(params["options"] == "-c work_mem=8MB");
  CHECK(params["application_name"] == "svc");
}

TEST_CASE("server_login_fsm: a wrong password is the server's rejection",
          "[protocol][server_login]") {
  using method = scripted_server::method;
  const auto m = GENERATE(method::scram, method::md5, method::cleartext);
  server_login_fsm fsm(credentials, max_message);
  scripted_server server(m, "another password");
  CHECK(run(fsm, server, 5) == server_login_fsm::state::rejected);
  CHECK(fsm.refused().sqlstate == "28P01");
  CHECK(fsm.refused().message == "password authentication failed");
}

TEST_CASE("server_login_fsm: a failure injected at every step ends the login",
          "[protocol][server_login]") {
  using method = scripted_server::method;
  const auto round = GENERATE(0, 1, 2);
  struct injection {
    const char* what;
    std::function<std::string(std::string)> change;
    server_login_fsm::state expected;
  };
  const auto injected = GENERATE(values<injection>({
      {"an ErrorResponse instead",
       [](std::string) { return error("53300", "sorry, too many clients already"); },
       server_login_fsm::state::rejected},
      {"a broken length", [](std::string) { return std::string("R\0\0\0\x02", 5); },
       server_login_fsm::state::failed},
      {"a message the flow does not allow",
       [](std::string) {
         std::string out;
         append_ready_for_query(out, 'I');
         return out;
       },
       server_login_fsm::state::failed},
      {"an authentication sluice cannot do",
       [](std::string) {
         std::string out = "R";
         out += std::string("\0\0\0\x08\0\0\0\x07", 8);  // GSS (7)
         return out;
       },
       server_login_fsm::state::failed},
      {"the connection ending halfway",
       [](std::string bytes) { return bytes.substr(0, bytes.size() / 2); },
       server_login_fsm::state::reading},
  }));
  CAPTURE(round, injected.what);
  server_login_fsm fsm(credentials, max_message);
  scripted_server server(method::scram);
  const auto state = run(fsm, server, 3, [&](int at, std::string bytes) {
    return at == round ? injected.change(std::move(bytes)) : bytes;
  });
  CHECK(state == injected.expected);
  CHECK(fsm.current() != server_login_fsm::state::ready);
  if (state == server_login_fsm::state::failed) CHECK_FALSE(fsm.problem().empty());
}

TEST_CASE("server_login_fsm: SCRAM needs the server's proof before AuthenticationOk",
          "[protocol][server_login]") {
  server_login_fsm fsm(credentials, max_message);
  scripted_server server(scripted_server::method::scram);
  const auto state = run(fsm, server, 1000, [](int at, std::string bytes) {
    if (at != 2) return bytes;
    // Drop AuthenticationSASLFinal, or corrupt its signature.
    const auto messages = messages_of(bytes);
    std::string out;
    for (const auto& m : messages)
      if (!(m.type == 'R' && m.body.size() > 4 && m.body[3] == 12))
        out.append(m.wire.data(), m.wire.size());
    return out;
  });
  CHECK(state == server_login_fsm::state::failed);
  CHECK(fsm.problem().find("SCRAM") != std::string::npos);
}

}  // namespace
}  // namespace sluice::protocol

namespace sluice::protocol {
namespace {

server_login_fsm tls_fsm() {
  return server_login_fsm({"alice", "pw", "app", "", ""}, 1 << 20);
}

std::string expected_ssl_request() {
  std::string out;
  append_ssl_request(out);
  return out;
}

TEST_CASE("server_login_fsm: 'S' to SSLRequest asks for the handshake, then the startup",
          "[server_login][tls]") {
  auto fsm = tls_fsm();
  CHECK(fsm.ssl_request(plan_server_tls(sslmode::verify_full, true)) == expected_ssl_request());
  CHECK(fsm.on_server_bytes({}).consumed == 0);  // nothing yet: keep reading
  const std::string answer = "S";
  const auto step = fsm.on_server_bytes(answer);
  CHECK(step.consumed == 1);
  CHECK(step.reply.empty());
  CHECK(step.now == server_login_fsm::state::tls_handshake);
  CHECK(fsm.tls_established() == fsm.start());
  CHECK(fsm.current() == server_login_fsm::state::reading);
}

TEST_CASE("server_login_fsm: 'N' to SSLRequest, by sslmode", "[server_login][tls]") {
  const auto mode =
      GENERATE(sslmode::prefer, sslmode::require, sslmode::verify_ca, sslmode::verify_full);
  auto fsm = tls_fsm();
  const auto plan = plan_server_tls(mode, false);
  fsm.ssl_request(plan);
  const std::string answer = "N";
  const auto step = fsm.on_server_bytes(answer);
  CHECK(step.consumed == 1);
  if (plan.tls_required) {
    CHECK(step.now == server_login_fsm::state::failed);
    CHECK(fsm.problem() == "server does not support SSL, but SSL was required");
  } else {
    CHECK(step.now == server_login_fsm::state::reading);
    CHECK(step.reply == fsm.start());  // plain text from here on
  }
}

TEST_CASE("server_login_fsm: anything else after SSLRequest fails the login",
          "[server_login][tls]") {
  auto fsm = tls_fsm();
  fsm.ssl_request(plan_server_tls(sslmode::prefer, false));
  // Bytes behind the 'S' came before encryption (a man in the middle could inject them).
  const std::string injected =
      GENERATE(std::string("SR\0\0\0\x08\0\0\0\0"), std::string("E"), std::string("R"));
  const auto step = fsm.on_server_bytes(injected);
  CHECK(step.now == server_login_fsm::state::failed);
  CHECK_FALSE(fsm.problem().empty());
}

TEST_CASE("server_login_fsm: tls_established out of order fails", "[server_login][tls]") {
  auto fsm = tls_fsm();
  CHECK(fsm.tls_established().empty());
  CHECK(fsm.current() == server_login_fsm::state::failed);
}

}  // namespace
}  // namespace sluice::protocol
