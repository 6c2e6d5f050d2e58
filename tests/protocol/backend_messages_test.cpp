#include "protocol/backend_messages.hpp"

#include <catch2/catch.hpp>
#include <climits>
#include <functional>
#include <optional>

#include "protocol/framing.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"
#include "tests/protocol/message_builder.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::as_text;
using test::from_hex;
using test::message_builder;
using test::to_hex;

// Frames the single message in `wire`, checks its type, returns its body.
std::span<const char> body_of(const std::string& wire, char type) {
  const frame_result framed = frame_message(as_bytes(wire), 1 << 20);
  REQUIRE(framed.status == frame_status::complete);
  REQUIRE(framed.message.wire.size() == wire.size());
  REQUIRE(framed.message.type == type);
  return framed.message.body;
}

// Splits a buffer of whole messages into their wire bytes.
std::vector<std::string> split_messages(const std::string& stream) {
  std::vector<std::string> out;
  std::span<const char> rest = as_bytes(stream);
  while (!rest.empty()) {
    const frame_result framed = frame_message(rest, 1 << 20);
    REQUIRE(framed.status == frame_status::complete);
    out.emplace_back(as_text(framed.message.wire));
    rest = rest.subspan(framed.message.wire.size());
  }
  return out;
}

TEST_CASE("decodes a real server greeting", "[backend]") {
  const std::string stream = from_hex(test::fixtures::server_greeting);
  const std::vector<std::string> messages = split_messages(stream);
  REQUIRE(messages.size() == 17);

  const auto sasl_final = decode_authentication(body_of(messages[0], 'R'));
  REQUIRE(sasl_final);
  CHECK(sasl_final->code == auth_code::sasl_final);
  CHECK(as_text(sasl_final->data) == "v=cRLHTKBgYluAUMKhjMqn6VTMhG91T/PHf1FgaP+LgUo=");

  const auto ok = decode_authentication(body_of(messages[1], 'R'));
  REQUIRE(ok);
  CHECK(ok->code == auth_code::ok);
  CHECK(ok->data.empty());

  std::vector<std::pair<std::string_view, std::string_view>> statuses;
  for (std::size_t i = 2; i < 15; ++i) {
    const auto status = decode_parameter_status(body_of(messages[i], 'S'));
    REQUIRE(status);
    statuses.emplace_back(status->name, status->value);
  }
  CHECK(statuses.front() ==
        std::pair<std::string_view, std::string_view>{"application_name", "psql"});
  CHECK(statuses[9] == std::pair<std::string_view, std::string_view>{
                           "server_version", "15.20 (Debian 15.20-0+deb12u1)"});
  CHECK(statuses.back() == std::pair<std::string_view, std::string_view>{"TimeZone", "Etc/UTC"});

  const auto key = decode_backend_key_data(body_of(messages[15], 'K'));
  REQUIRE(key);
  CHECK(key->process_id == 0x151d);
  CHECK(key->secret_key == 0x7c5642f2);

  const auto ready = decode_ready_for_query(body_of(messages[16], 'Z'));
  REQUIRE(ready);
  CHECK(ready->status == transaction_status::idle);

  // Rebuilding every message gives back the server's bytes.
  std::string rebuilt;
  append_authentication_sasl_final(rebuilt, as_text(sasl_final->data));
  append_authentication_ok(rebuilt);
  for (const auto& [name, value] : statuses) append_parameter_status(rebuilt, name, value);
  append_backend_key_data(rebuilt, *key);
  append_ready_for_query(rebuilt, ready->status);
  CHECK(to_hex(rebuilt) == to_hex(stream));
}

TEST_CASE("decodes real authentication requests", "[backend]") {
  SECTION("AuthenticationSASL") {
    const std::string wire = from_hex(test::fixtures::auth_sasl);
    const auto auth = decode_authentication(body_of(wire, 'R'));
    REQUIRE(auth);
    CHECK(auth->code == auth_code::sasl);
    CHECK(sasl_mechanisms(auth->data) == std::vector<std::string_view>{"SCRAM-SHA-256"});
    std::string rebuilt;
    const std::string_view mechanisms[] = {"SCRAM-SHA-256"};
    append_authentication_sasl(rebuilt, mechanisms);
    CHECK(to_hex(rebuilt) == to_hex(wire));
  }
  SECTION("AuthenticationSASLContinue") {
    const std::string wire = from_hex(test::fixtures::auth_sasl_continue);
    const auto auth = decode_authentication(body_of(wire, 'R'));
    REQUIRE(auth);
    CHECK(auth->code == auth_code::sasl_continue);
    CHECK(as_text(auth->data) ==
          "r=C2mmBVQY8QOG9e25PIXczitW2DNswmBnL5KB5wQK5rndA4G6,s=k3omoCANXHoiUTfUljmfgw==,i=4096");
  }
  SECTION("AuthenticationMD5Password") {
    const std::string wire = from_hex(test::fixtures::auth_md5);
    const auto auth = decode_authentication(body_of(wire, 'R'));
    REQUIRE(auth);
    CHECK(auth->code == auth_code::md5);
    CHECK(to_hex(auth->data) == "4f00776d");
    std::string rebuilt;
    append_authentication_md5(rebuilt, std::span<const char, 4>(auth->data.data(), 4));
    CHECK(to_hex(rebuilt) == to_hex(wire));
  }
}

TEST_CASE("decodes real ErrorResponses and NoticeResponses", "[backend]") {
  struct expected_error {
    std::string_view hex;
    char type;
    std::string_view severity, sqlstate, message, routine;
  };
  const expected_error e =
      GENERATE(expected_error{test::fixtures::error_auth_failed, 'E', "FATAL", "28P01",
                              "password authentication failed for user \"sluice\"", "auth_failed"},
               expected_error{test::fixtures::error_no_database, 'E', "FATAL", "3D000",
                              "database \"nosuchdb\" does not exist", "InitPostgres"},
               expected_error{test::fixtures::error_query_canceled, 'E', "ERROR", "57014",
                              "canceling statement due to user request", "ProcessInterrupts"},
               expected_error{test::fixtures::notice_with_detail_and_hint, 'N', "NOTICE", "00000",
                              "hello", "exec_stmt_raise"});
  const std::string wire = from_hex(e.hex);
  const auto response = decode_error_response(body_of(wire, e.type));
  REQUIRE(response);
  CHECK(response->field('S') == e.severity);
  CHECK(response->field('V') == e.severity);
  CHECK(response->sqlstate() == e.sqlstate);
  CHECK(response->message() == e.message);
  CHECK(response->field('R') == e.routine);
  CHECK(response->field('q').empty());  // Absent field.
  CHECK(response->fields.front().first == 'S');
}

TEST_CASE("the notice fixture carries detail, hint and context", "[backend]") {
  const std::string wire = from_hex(test::fixtures::notice_with_detail_and_hint);
  const auto notice = decode_error_response(body_of(wire, 'N'));
  REQUIRE(notice);
  CHECK(notice->field('D') == "some detail");
  CHECK(notice->field('H') == "a hint");
  CHECK(notice->field('W') == "PL/pgSQL function inline_code_block line 1 at RAISE");
  CHECK(notice->fields.size() == 10);
}

TEST_CASE("decodes and rebuilds a real simple-query reply", "[backend]") {
  const std::vector<std::string> messages =
      split_messages(from_hex(test::fixtures::query_response));
  REQUIRE(messages.size() == 4);
  const auto tag = decode_command_complete(body_of(messages[2], 'C'));
  REQUIRE(tag);
  CHECK(tag->tag == "SELECT 1");

  std::string rebuilt;
  const column_description columns[] = {{.name = "one", .type_oid = 23, .type_size = 4}};
  append_row_description(rebuilt, columns);
  const std::optional<std::string_view> row[] = {"1"};
  append_data_row(rebuilt, row);
  append_command_complete(rebuilt, tag->tag);
  append_ready_for_query(rebuilt, 'I');
  CHECK(to_hex(rebuilt) == to_hex(from_hex(test::fixtures::query_response)));
}

TEST_CASE("the extended-protocol replies rebuild byte for byte", "[backend]") {
  std::string parse_reply;
  append_parse_complete(parse_reply);
  append_ready_for_query(parse_reply, 'I');
  CHECK(to_hex(parse_reply) == to_hex(from_hex(test::fixtures::pgbench_parse_reply)));

  std::string execute_reply;
  append_bind_complete(execute_reply);
  const column_description columns[] = {{.name = "answer", .type_oid = 23, .type_size = 4}};
  append_row_description(execute_reply, columns);
  const std::optional<std::string_view> row[] = {"42"};
  append_data_row(execute_reply, row);
  append_command_complete(execute_reply, "SELECT 1");
  append_ready_for_query(execute_reply, 'I');
  CHECK(to_hex(execute_reply) == to_hex(from_hex(test::fixtures::pgbench_execute_reply)));
}

TEST_CASE("Authentication round-trips", "[backend][round-trip]") {
  using builder = std::function<void(std::string&)>;
  const auto [code, data, build] = GENERATE(table<std::int32_t, std::string, builder>({
      {auth_code::ok, "", [](std::string& out) { append_authentication_ok(out); }},
      {auth_code::cleartext, "", [](std::string& out) { append_authentication_cleartext(out); }},
      {auth_code::md5, std::string("\x00\xff\x01\x7f", 4),
       [](std::string& out) {
         const char salt[4] = {'\x00', '\xff', '\x01', '\x7f'};
         append_authentication_md5(out, salt);
       }},
      {auth_code::sasl, std::string("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34),
       [](std::string& out) {
         const std::string_view names[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
         append_authentication_sasl(out, names);
       }},
      {auth_code::sasl_continue, "r=abc,s=c2FsdA==,i=4096",
       [](std::string&
              out) { append_authentication_sasl_continue(out, "r=abc,s=c2FsdA==,i=4096"); }},
      {auth_code::sasl_final, "v=xyz",
       [](std::string& out) { append_authentication_sasl_final(out, "v=xyz"); }},
      {auth_code::sasl_final, "",
       [](std::string& out) { append_authentication_sasl_final(out, ""); }},
  }));
  std::string built;
  build(built);
  CHECK(to_hex(built) == to_hex(message_builder{}.int32(code).raw(data).typed('R')));
  const auto auth = decode_authentication(body_of(built, 'R'));
  REQUIRE(auth);
  CHECK(auth->code == code);
  CHECK(as_text(auth->data) == data);
  if (code == auth_code::sasl) {
    CHECK(sasl_mechanisms(auth->data) ==
          std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  }
}

TEST_CASE("ParameterStatus round-trips", "[backend][round-trip]") {
  const auto [name, value] = GENERATE(table<std::string, std::string>({
      {"client_encoding", "UTF8"},
      {"", ""},
      {"application_name", std::string(5000, 'x')},
      {"TimeZone", "Europe/Berlin"},
  }));
  std::string built;
  append_parameter_status(built, name, value);
  CHECK(built == message_builder{}.cstr(name).cstr(value).typed('S'));
  const auto status = decode_parameter_status(body_of(built, 'S'));
  REQUIRE(status);
  CHECK(status->name == name);
  CHECK(status->value == value);
}

TEST_CASE("BackendKeyData round-trips", "[backend][round-trip]") {
  const auto [pid, secret] = GENERATE(table<std::int32_t, std::int32_t>(
      {{0, 0}, {1234, -1}, {INT_MIN, INT_MAX}, {0x151d, 0x7c5642f2}}));
  std::string built;
  append_backend_key_data(built, {pid, secret});
  CHECK(built == message_builder{}.int32(pid).int32(secret).typed('K'));
  const auto key = decode_backend_key_data(body_of(built, 'K'));
  REQUIRE(key);
  CHECK(key->process_id == pid);
  CHECK(key->secret_key == secret);
}

TEST_CASE("ReadyForQuery round-trips", "[backend][round-trip]") {
  const char status = GENERATE('I', 'T', 'E');
  std::string built;
  append_ready_for_query(built, status);
  CHECK(built == message_builder{}.byte(status).typed('Z'));
  const auto ready = decode_ready_for_query(body_of(built, 'Z'));
  REQUIRE(ready);
  CHECK(ready->status == status);
}

TEST_CASE("ErrorResponse and NoticeResponse round-trip", "[backend][round-trip]") {
  const bool notice = GENERATE(false, true);
  const error_fields fields = GENERATE(
      error_fields{.sqlstate = "08P01", .message = "invalid message length"},
      error_fields{.severity = "FATAL", .sqlstate = "53300", .message = "too many clients"},
      error_fields{.sqlstate = "42P05",
                   .message = "prepared statement \"s1\" already exists",
                   .detail = "d",
                   .hint = "h"},
      error_fields{.severity = "WARNING", .sqlstate = "01000", .message = "", .hint = "only"});
  std::string built;
  if (notice) {
    append_notice_response(built, fields);
  } else {
    append_error_response(built, fields);
  }
  message_builder expected;
  expected.byte('S').cstr(fields.severity).byte('V').cstr(fields.severity);
  expected.byte('C').cstr(fields.sqlstate).byte('M').cstr(fields.message);
  if (!fields.detail.empty()) expected.byte('D').cstr(fields.detail);
  if (!fields.hint.empty()) expected.byte('H').cstr(fields.hint);
  expected.byte('\0');
  CHECK(to_hex(built) == to_hex(expected.typed(notice ? 'N' : 'E')));

  const auto response = decode_error_response(body_of(built, notice ? 'N' : 'E'));
  REQUIRE(response);
  CHECK(response->field('S') == fields.severity);
  CHECK(response->field('V') == fields.severity);
  CHECK(response->sqlstate() == fields.sqlstate);
  CHECK(response->message() == fields.message);
  CHECK(response->field('D') == fields.detail);
  CHECK(response->field('H') == fields.hint);
}

TEST_CASE("CommandComplete round-trips", "[backend][round-trip]") {
  const std::string tag = GENERATE(as<std::string>{}, "SELECT 1", "INSERT 0 3", "DISCARD ALL", "");
  std::string built;
  append_command_complete(built, tag);
  CHECK(built == message_builder{}.cstr(tag).typed('C'));
  const auto complete = decode_command_complete(body_of(built, 'C'));
  REQUIRE(complete);
  CHECK(complete->tag == tag);
}

TEST_CASE("NegotiateProtocolVersion round-trips", "[backend][round-trip]") {
  const std::vector<std::string_view> options =
      GENERATE(std::vector<std::string_view>{}, std::vector<std::string_view>{"_pq_.a", "_pq_.b"});
  std::string built;
  append_negotiate_protocol_version(built, 0, options);
  message_builder expected;
  expected.int32(0).int32(static_cast<std::int32_t>(options.size()));
  for (const auto option : options) expected.cstr(option);
  CHECK(built == expected.typed('v'));
  const auto negotiate = decode_negotiate_protocol_version(body_of(built, 'v'));
  REQUIRE(negotiate);
  CHECK(negotiate->newest_minor == 0);
  CHECK(negotiate->unsupported == options);
}

TEST_CASE("bodiless backend messages are 5 bytes", "[backend][round-trip]") {
  using builder = void (*)(std::string&);
  const auto [type, build] = GENERATE(table<char, builder>({
      {'1', append_parse_complete},
      {'2', append_bind_complete},
      {'3', append_close_complete},
      {'I', append_empty_query_response},
      {'n', append_no_data},
  }));
  std::string built;
  build(built);
  CHECK(built == message_builder{}.typed(type));
  CHECK(body_of(built, type).empty());
}

TEST_CASE("DataRow encodes NULL apart from the empty string", "[backend]") {
  const std::optional<std::string_view> values[] = {std::nullopt, "", "ab"};
  std::string built;
  append_data_row(built, values);
  CHECK(to_hex(built) ==
        "44"
        "00000014"
        "0003"
        "ffffffff"
        "00000000"
        "00000002"
        "6162");
}

TEST_CASE("broken backend bodies give errors", "[backend]") {
  using decoder = std::function<std::error_code(std::span<const char>)>;
  const auto wrap = [](auto decode) -> decoder {
    return [decode](std::span<const char> body) { return decode(body).error; };
  };
  const decoder authentication = wrap(decode_authentication);
  const decoder status = wrap(decode_parameter_status);
  const decoder key = wrap(decode_backend_key_data);
  const decoder ready = wrap(decode_ready_for_query);
  const decoder error = wrap(decode_error_response);
  const decoder complete = wrap(decode_command_complete);
  const decoder negotiate = wrap(decode_negotiate_protocol_version);
  const auto [name, decode, body_hex, expected] =
      GENERATE_COPY(table<std::string, decoder, std::string, errc>({
          {"auth empty", authentication, "", errc::truncated},
          {"auth short code", authentication, "0000", errc::truncated},
          {"auth ok with data", authentication, "00000000 00", errc::malformed},
          {"auth cleartext with data", authentication, "00000003 00", errc::malformed},
          {"auth md5 short salt", authentication, "00000005 0102", errc::truncated},
          {"auth md5 long salt", authentication, "00000005 0102030405", errc::malformed},
          {"auth sasl no terminator", authentication, "0000000a 41424300", errc::malformed},
          {"auth sasl unterminated name", authentication, "0000000a 414243", errc::malformed},
          {"auth sasl garbage after list", authentication, "0000000a 4100 00 42", errc::malformed},
          {"status empty", status, "", errc::malformed},
          {"status no value", status, "6100", errc::malformed},
          {"status unterminated value", status, "6100 62", errc::malformed},
          {"status extra", status, "6100 6200 63", errc::malformed},
          {"key short", key, "00000001 0002", errc::truncated},
          {"key long", key, "00000001 00000002 03", errc::malformed},
          {"ready empty", ready, "", errc::truncated},
          {"ready bad status", ready, "58", errc::malformed},
          {"ready long", ready, "49 49", errc::malformed},
          {"error empty", error, "", errc::truncated},
          {"error no terminator", error, "53 4552524f5200", errc::truncated},
          {"error unterminated value", error, "53 4552524f52", errc::malformed},
          {"error extra", error, "53 4500 00 00", errc::malformed},
          {"complete unterminated", complete, "53454c454354", errc::malformed},
          {"complete extra", complete, "5300 00", errc::malformed},
          {"negotiate short", negotiate, "00000000", errc::truncated},
          {"negotiate negative count", negotiate, "00000000 ffffffff", errc::malformed},
          {"negotiate missing names", negotiate, "00000000 7fffffff 6100", errc::malformed},
      }));
  INFO(name);
  const std::string body = from_hex(body_hex);
  CHECK(decode(as_bytes(body)) == expected);
}

TEST_CASE("sasl_mechanisms never reads past its data", "[backend]") {
  CHECK(sasl_mechanisms({}).empty());
  const std::string unterminated = "SCRAM";
  CHECK(sasl_mechanisms(as_bytes(unterminated)).empty());
  const std::string partial("A\0B", 3);
  CHECK(sasl_mechanisms(as_bytes(partial)) == std::vector<std::string_view>{"A"});
}

}  // namespace
}  // namespace sluice::protocol
