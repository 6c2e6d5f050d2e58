#include "protocol/server_tls_policy.hpp"

#include <array>

#include <catch2/catch.hpp>

namespace sluice::protocol {
namespace {

TEST_CASE("server tls: sslmode plans as libpq's", "[tls][sslmode]") {
  struct row {
    std::string_view mode;
    bool root_cert;
    bool first_tls, fallback, required, chain, host;
  };
  const auto r = GENERATE(row{"disable", false, false, false, false, false, false},
                          row{"allow", false, false, true, false, false, false},
                          row{"prefer", false, true, true, false, false, false},
                          row{"prefer", true, true, true, false, false, false},
                          row{"require", false, true, false, true, false, false},
                          // libpq: a root certificate makes require behave as verify-ca
                          row{"require", true, true, false, true, true, false},
                          row{"verify-ca", true, true, false, true, true, false},
                          row{"verify-full", true, true, false, true, true, true});
  CAPTURE(r.mode, r.root_cert);
  const auto mode = parse_sslmode(r.mode);
  REQUIRE(mode);
  const auto plan = plan_server_tls(*mode, r.root_cert);
  CHECK(plan.first_attempt_tls == r.first_tls);
  CHECK(plan.fallback == r.fallback);
  CHECK(plan.tls_required == r.required);
  CHECK(plan.verify_chain == r.chain);
  CHECK(plan.verify_host_name == r.host);
}

TEST_CASE("server tls: unknown sslmode and channel_binding values", "[tls][sslmode]") {
  CHECK_FALSE(parse_sslmode("verify_full"));
  CHECK_FALSE(parse_sslmode(""));
  CHECK_FALSE(parse_channel_binding("yes"));
  CHECK(parse_channel_binding("require") == channel_binding_mode::require);
}

TEST_CASE("server tls: the answer to SSLRequest", "[tls][sslmode]") {
  const auto prefer = plan_server_tls(sslmode::prefer, false);
  const auto require = plan_server_tls(sslmode::require, false);
  CHECK(on_ssl_answer(prefer, 'S') == ssl_answer_action::handshake);
  CHECK(on_ssl_answer(prefer, 'N') == ssl_answer_action::go_on_plain);
  CHECK(on_ssl_answer(require, 'S') == ssl_answer_action::handshake);
  CHECK(on_ssl_answer(require, 'N') == ssl_answer_action::fail);
  // An ErrorResponse ('E', a pre-7.0 server or a broken one) or garbage is never plain text.
  CHECK(on_ssl_answer(prefer, 'E') == ssl_answer_action::fail);
  CHECK(on_ssl_answer(prefer, 'R') == ssl_answer_action::fail);
}

TEST_CASE("server tls: SCRAM mechanism choice with channel_binding", "[tls][scram]") {
  const std::array<std::string_view, 2> both{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  const std::array<std::string_view, 1> plain_only{"SCRAM-SHA-256"};
  const std::array<std::string_view, 1> other{"OAUTHBEARER"};
  using m = channel_binding_mode;
  CHECK(choose_scram(both, true, m::prefer) == scram_choice::plus);
  CHECK(choose_scram(both, true, m::require) == scram_choice::plus);
  CHECK(choose_scram(both, true, m::disable) == scram_choice::plain);
  CHECK(choose_scram(both, false, m::prefer) == scram_choice::plain);  // no TLS: cannot bind
  CHECK(choose_scram(both, false, m::require) == scram_choice::fail);
  CHECK(choose_scram(plain_only, true, m::prefer) == scram_choice::plain);
  CHECK(choose_scram(plain_only, true, m::require) == scram_choice::fail);
  CHECK(choose_scram(other, true, m::prefer) == scram_choice::fail);
}

}  // namespace
}  // namespace sluice::protocol
