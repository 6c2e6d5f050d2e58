#include "protocol/server_login_fsm.hpp"

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/md5_auth.hpp"
#include "protocol/message_types.hpp"
#include "protocol/startup.hpp"

namespace sluice::protocol {

server_login_fsm::server_login_fsm(login credentials, std::uint32_t max_message_size)
    : login_(std::move(credentials)), max_message_size_(max_message_size) {}

std::string server_login_fsm::start() const {
  std::vector<std::pair<std::string, std::string>> params{{"user", login_.user},
                                                          {"database", login_.database}};
  if (!login_.options.empty()) params.emplace_back("options", login_.options);
  if (!login_.application_name.empty())
    params.emplace_back("application_name", login_.application_name);
  std::string out;
  append_startup_message(out, params);
  return out;
}

std::string server_login_fsm::ssl_request(const server_tls_plan& plan) {
  awaiting_ssl_answer_ = plan;
  std::string out;
  append_ssl_request(out);
  return out;
}

std::string server_login_fsm::tls_established() {
  if (state_ != state::tls_handshake) {
    fail("TLS established out of order");
    return {};
  }
  state_ = state::reading;
  return start();
}

server_login_fsm::step server_login_fsm::on_ssl_answer_byte(std::span<const char> bytes) {
  step out;
  if (bytes.empty()) return out;
  const server_tls_plan plan = *awaiting_ssl_answer_;
  awaiting_ssl_answer_.reset();
  out.consumed = 1;
  const char answer = bytes[0];
  switch (on_ssl_answer(plan, answer)) {
    case ssl_answer_action::handshake:
      if (bytes.size() > 1) {
        fail("received unencrypted data after SSL response");
      } else {
        state_ = state::tls_handshake;
      }
      break;
    case ssl_answer_action::go_on_plain:
      out.reply = start();
      break;
    case ssl_answer_action::fail:
      fail(answer == 'N' ? "server does not support SSL, but SSL was required"
                         : "received invalid response to SSL negotiation");
      break;
  }
  out.now = state_;
  return out;
}

void server_login_fsm::fail(std::string problem) {
  problem_ = std::move(problem);
  state_ = state::failed;
}

void server_login_fsm::on_authentication(std::span<const char> body, std::string& reply) {
  auto auth = decode_authentication(body);
  if (!auth) return fail("malformed authentication request from server");
  namespace code = auth_code;
  switch (auth->code) {
    case code::ok:
      // After SASL, only once the server proved it knows the password too.
      if (scram_ && !scram_->done()) return fail("server skipped SCRAM's final verification");
      authenticated_ = true;
      return;
    case code::cleartext:
      append_password_message(reply, login_.password);
      return;
    case code::md5: {
      if (auth->data.size() != 4) return fail("malformed md5 salt from server");
      const auto hash = md5_password_hash(login_.password, login_.user);
      append_password_message(
          reply, md5_salted_response(hash, std::span<const char, 4>(auth->data.data(), 4)));
      return;
    }
    case code::sasl: {
      bool offered = false;
      for (auto mechanism : sasl_mechanisms(auth->data))
        if (mechanism == "SCRAM-SHA-256") offered = true;
      if (!offered) return fail("server offers no SASL mechanism sluice supports");
      scram_.emplace(login_.password);
      append_sasl_initial_response(reply, "SCRAM-SHA-256", scram_->client_first_message());
      return;
    }
    case code::sasl_continue: {
      if (!scram_) return fail("unexpected SASL continue from server");
      auto final_message =
          scram_->on_server_first(std::string_view(auth->data.data(), auth->data.size()));
      if (!final_message) return fail("server sent an invalid SCRAM challenge");
      append_sasl_response(reply, *final_message);
      return;
    }
    case code::sasl_final:
      if (!scram_) return fail("unexpected SASL final from server");
      if (scram_->on_server_final(std::string_view(auth->data.data(), auth->data.size())))
        return fail("server failed SCRAM verification (wrong server signature)");
      return;
    default:
      return fail("server asks for an unsupported authentication method (code " +
                  std::to_string(auth->code) + ")");
  }
}

server_login_fsm::step server_login_fsm::on_server_bytes(std::span<const char> bytes) {
  namespace be = backend_type;
  if (awaiting_ssl_answer_) return on_ssl_answer_byte(bytes);
  step out;
  while (state_ == state::reading && out.consumed < bytes.size()) {
    const auto framed = frame_message(bytes.subspan(out.consumed), max_message_size_);
    if (framed.status == frame_status::need_more) break;
    if (framed.status == frame_status::error) {
      fail("server sent a malformed message");
      break;
    }
    const auto& message = framed.message;
    out.consumed += message.wire.size();
    switch (message.type) {
      case be::authentication:
        on_authentication(message.body, out.reply);
        break;
      case be::parameter_status:
        if (auto status = decode_parameter_status(message.body))
          session_.parameters.emplace_back(std::string(status->name), std::string(status->value));
        break;
      case be::backend_key_data:
        if (auto key = decode_backend_key_data(message.body)) {
          session_.process_id = key->process_id;
          session_.secret_key = key->secret_key;
        }
        break;
      case be::error_response:
        if (auto error = decode_error_response(message.body)) {
          rejection_ = {std::string(error->field('S')), std::string(error->sqlstate()),
                        std::string(error->message()), std::string(error->field('D'))};
        }
        state_ = state::rejected;
        break;
      case be::ready_for_query:
        if (!authenticated_) {
          fail("server said ReadyForQuery before AuthenticationOk");
          break;
        }
        if (auto ready = decode_ready_for_query(message.body))
          session_.transaction_status = ready->status;
        state_ = state::ready;
        break;
      default:  // NoticeResponse, NegotiateProtocolVersion: nothing to act on
        break;
    }
  }
  out.now = state_;
  return out;
}

}  // namespace sluice::protocol
