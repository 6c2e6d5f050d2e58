#include "protocol/server_tls_policy.hpp"

#include <algorithm>

namespace sluice::protocol {

std::optional<sslmode> parse_sslmode(std::string_view text) {
  if (text == "disable") return sslmode::disable;
  if (text == "allow") return sslmode::allow;
  if (text == "prefer") return sslmode::prefer;
  if (text == "require") return sslmode::require;
  if (text == "verify-ca") return sslmode::verify_ca;
  if (text == "verify-full") return sslmode::verify_full;
  return std::nullopt;
}

server_tls_plan plan_server_tls(sslmode mode, bool root_cert_given) {
  server_tls_plan plan;
  switch (mode) {
    case sslmode::disable:
      break;
    case sslmode::allow:
      plan.fallback = true;
      break;
    case sslmode::prefer:
      plan.first_attempt_tls = true;
      plan.fallback = true;
      break;
    case sslmode::require:
      plan.first_attempt_tls = plan.tls_required = true;
      plan.verify_chain = root_cert_given;
      break;
    case sslmode::verify_ca:
      plan.first_attempt_tls = plan.tls_required = plan.verify_chain = true;
      break;
    case sslmode::verify_full:
      plan.first_attempt_tls = plan.tls_required = plan.verify_chain = true;
      plan.verify_host_name = true;
      break;
  }
  return plan;
}

ssl_answer_action on_ssl_answer(const server_tls_plan& plan, char answer) {
  if (answer == 'S') return ssl_answer_action::handshake;
  if (answer == 'N' && !plan.tls_required) return ssl_answer_action::go_on_plain;
  return ssl_answer_action::fail;
}

std::optional<channel_binding_mode> parse_channel_binding(std::string_view text) {
  if (text == "disable") return channel_binding_mode::disable;
  if (text == "prefer") return channel_binding_mode::prefer;
  if (text == "require") return channel_binding_mode::require;
  return std::nullopt;
}

scram_choice choose_scram(std::span<const std::string_view> offered, bool binding_available,
                          channel_binding_mode mode) {
  const auto has = [&](std::string_view name) {
    return std::find(offered.begin(), offered.end(), name) != offered.end();
  };
  if (mode != channel_binding_mode::disable && binding_available && has("SCRAM-SHA-256-PLUS"))
    return scram_choice::plus;
  if (mode == channel_binding_mode::require) return scram_choice::fail;
  return has("SCRAM-SHA-256") ? scram_choice::plain : scram_choice::fail;
}

}  // namespace sluice::protocol
