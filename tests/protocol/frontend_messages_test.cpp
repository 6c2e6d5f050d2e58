#include "protocol/frontend_messages.hpp"

#include <catch2/catch.hpp>
#include <functional>

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

std::span<const char> body_of(const std::string& wire, char type) {
  const frame_result framed = frame_message(as_bytes(wire), 1 << 20);
  REQUIRE(framed.status == frame_status::complete);
  REQUIRE(framed.message.wire.size() == wire.size());
  REQUIRE(framed.message.type == type);
  return framed.message.body;
}

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

TEST_CASE("decodes and rebuilds psql's SASL messages", "[frontend]") {
  const std::string initial = from_hex(test::fixtures::psql_sasl_initial_response);
  const auto first = decode_sasl_initial_response(body_of(initial, 'p'));
  REQUIRE(first);
  CHECK(first->mechanism == "SCRAM-SHA-256");
  CHECK(first->data == "n,,n=,r=C2mmBVQY8QOG9e25PIXczitW");

  const std::string response = from_hex(test::fixtures::psql_sasl_response);
  const auto final = decode_sasl_response(body_of(response, 'p'));
  REQUIRE(final);
  CHECK(final->data.starts_with("c=biws,r=C2mmBVQY8QOG9e25PIXczitW2DNswmBnL5KB5wQK5rndA4G6,p="));

  std::string rebuilt;
  append_sasl_initial_response(rebuilt, first->mechanism, first->data);
  append_sasl_response(rebuilt, final->data);
  CHECK(to_hex(rebuilt) == to_hex(initial + response));
}

TEST_CASE("decodes and rebuilds psql's MD5 PasswordMessage, Query and Terminate", "[frontend]") {
  const std::string password = from_hex(test::fixtures::md5_password_message);
  const auto message = decode_password_message(body_of(password, 'p'));
  REQUIRE(message);
  CHECK(message->password == "md583a444b02862852eb579127068025e54");

  const std::string query_wire = from_hex(test::fixtures::psql_query);
  const auto q = decode_query(body_of(query_wire, 'Q'));
  REQUIRE(q);
  CHECK(q->sql == "select 1 as one");

  std::string rebuilt;
  append_password_message(rebuilt, message->password);
  append_query(rebuilt, q->sql);
  append_terminate(rebuilt);
  CHECK(to_hex(rebuilt) == to_hex(password + query_wire + from_hex(test::fixtures::terminate)));
}

TEST_CASE("decodes and rebuilds pgbench's extended-protocol messages", "[frontend]") {
  const std::string stream = from_hex(test::fixtures::pgbench_parse_sync) +
                             from_hex(test::fixtures::pgbench_bind_describe_execute_sync);
  const std::vector<std::string> messages = split_messages(stream);
  REQUIRE(messages.size() == 6);

  const auto p = decode_parse(body_of(messages[0], 'P'));
  REQUIRE(p);
  CHECK(p->name == "P_0");
  CHECK(p->query == "SELECT $1::int4 AS answer;");
  CHECK(p->param_types.empty());

  const auto b = decode_bind(body_of(messages[2], 'B'));
  REQUIRE(b);
  CHECK(b->portal == "");
  CHECK(b->statement == "P_0");
  // No parameter formats, one parameter "42" in text, one result format (text).
  CHECK(to_hex(body_of(messages[2], 'B').subspan(b->params_offset)) ==
        "0000"
        "0001"
        "00000002"
        "3432"
        "0001"
        "0000");

  const auto d = decode_describe(body_of(messages[3], 'D'));
  REQUIRE(d);
  CHECK(d->kind == target_kind::portal);
  CHECK(d->name == "");

  const auto e = decode_execute(body_of(messages[4], 'E'));
  REQUIRE(e);
  CHECK(e->portal == "");
  CHECK(e->max_rows == 0);

  std::string rebuilt;
  append_parse(rebuilt, p->name, p->query, p->param_types);
  append_sync(rebuilt);
  append_bind_header(rebuilt, b->portal, b->statement,
                     body_of(messages[2], 'B').subspan(b->params_offset));
  append_describe(rebuilt, d->kind, d->name);
  append_execute(rebuilt, e->portal, e->max_rows);
  append_sync(rebuilt);
  CHECK(to_hex(rebuilt) == to_hex(stream));
}

TEST_CASE("a Bind can be renamed and its parameters copied verbatim", "[frontend]") {
  const std::string new_name = GENERATE(as<std::string>{}, "", "s", "sluice_statement_123456");
  const std::string original =
      split_messages(from_hex(test::fixtures::pgbench_bind_describe_execute_sync))[0];
  const std::span<const char> body = body_of(original, 'B');
  const auto b = decode_bind(body);
  REQUIRE(b);

  std::string renamed;
  append_bind_header(renamed, b->portal, new_name, body.subspan(b->params_offset));
  const std::string rest(as_text(body.subspan(b->params_offset)));
  CHECK(to_hex(renamed) ==
        to_hex(message_builder{}.cstr(b->portal).cstr(new_name).raw(rest).typed('B')));

  const auto again = decode_bind(body_of(renamed, 'B'));
  REQUIRE(again);
  CHECK(again->statement == new_name);
  CHECK(as_text(body_of(renamed, 'B').subspan(again->params_offset)) == rest);
}

TEST_CASE("PasswordMessage and Query round-trip", "[frontend][round-trip]") {
  const std::string text =
      GENERATE(as<std::string>{}, "", "secret", "select 1; select 2", std::string(10000, 'q'));
  std::string built;
  append_password_message(built, text);
  append_query(built, text);
  const std::vector<std::string> messages = split_messages(built);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0] == message_builder{}.cstr(text).typed('p'));
  CHECK(messages[1] == message_builder{}.cstr(text).typed('Q'));
  const auto password = decode_password_message(body_of(messages[0], 'p'));
  REQUIRE(password);
  CHECK(password->password == text);
  const auto q = decode_query(body_of(messages[1], 'Q'));
  REQUIRE(q);
  CHECK(q->sql == text);
}

TEST_CASE("SASLInitialResponse and SASLResponse round-trip", "[frontend][round-trip]") {
  const auto [mechanism, data] = GENERATE(table<std::string, std::string>({
      {"SCRAM-SHA-256", "n,,n=,r=abc"},
      {"SCRAM-SHA-256", ""},
      {"", std::string("\0\1\2", 3)},
  }));
  std::string built;
  append_sasl_initial_response(built, mechanism, data);
  CHECK(built == message_builder{}
                     .cstr(mechanism)
                     .int32(static_cast<std::int32_t>(data.size()))
                     .raw(data)
                     .typed('p'));
  const auto initial = decode_sasl_initial_response(body_of(built, 'p'));
  REQUIRE(initial);
  CHECK(initial->mechanism == mechanism);
  CHECK(initial->data == data);

  std::string response;
  append_sasl_response(response, data);
  CHECK(response == message_builder{}.raw(data).typed('p'));
  const auto decoded = decode_sasl_response(body_of(response, 'p'));
  REQUIRE(decoded);
  CHECK(decoded->data == data);
}

TEST_CASE("SASLInitialResponse with length -1 has empty data", "[frontend]") {
  const std::string body = message_builder{}.cstr("SCRAM-SHA-256").int32(-1).body();
  const auto initial = decode_sasl_initial_response(as_bytes(body));
  REQUIRE(initial);
  CHECK(initial->mechanism == "SCRAM-SHA-256");
  CHECK(initial->data.empty());
}

TEST_CASE("Parse round-trips", "[frontend][round-trip]") {
  const auto [name, sql, types] =
      GENERATE(table<std::string, std::string, std::vector<std::uint32_t>>({
          {"", "SELECT 1", {}},
          {"P_0", "SELECT $1::int4 AS answer;", {}},
          {"s1", "SELECT $1, $2", {23, 25}},
          {"s2", "SELECT $1", {0xffffffff}},
          {"big", "SELECT 1", std::vector<std::uint32_t>(65535, 23)},
      }));
  std::string built;
  append_parse(built, name, sql, types);
  message_builder expected;
  expected.cstr(name).cstr(sql).int16(static_cast<std::int16_t>(types.size()));
  for (const auto oid : types) expected.uint32(oid);
  CHECK(built == expected.typed('P'));
  const auto p = decode_parse(body_of(built, 'P'));
  REQUIRE(p);
  CHECK(p->name == name);
  CHECK(p->query == sql);
  CHECK(p->param_types == types);
}

TEST_CASE("Describe and Close round-trip", "[frontend][round-trip]") {
  const char kind = GENERATE(target_kind::statement, target_kind::portal);
  const std::string name = GENERATE(as<std::string>{}, "", "s1");
  std::string built;
  append_describe(built, kind, name);
  append_close(built, kind, name);
  const std::vector<std::string> messages = split_messages(built);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0] == message_builder{}.byte(kind).cstr(name).typed('D'));
  CHECK(messages[1] == message_builder{}.byte(kind).cstr(name).typed('C'));
  const auto d = decode_describe(body_of(messages[0], 'D'));
  REQUIRE(d);
  CHECK(d->kind == kind);
  CHECK(d->name == name);
  const auto c = decode_close(body_of(messages[1], 'C'));
  REQUIRE(c);
  CHECK(c->kind == kind);
  CHECK(c->name == name);
}

TEST_CASE("Execute round-trips", "[frontend][round-trip]") {
  const auto [portal, max_rows] =
      GENERATE(table<std::string, std::int32_t>({{"", 0}, {"p1", 100}, {"p2", -1}}));
  std::string built;
  append_execute(built, portal, max_rows);
  CHECK(built == message_builder{}.cstr(portal).int32(max_rows).typed('E'));
  const auto e = decode_execute(body_of(built, 'E'));
  REQUIRE(e);
  CHECK(e->portal == portal);
  CHECK(e->max_rows == max_rows);
}

TEST_CASE("Sync, Flush and Terminate are 5 bytes", "[frontend][round-trip]") {
  using builder = void (*)(std::string&);
  const auto [type, build] = GENERATE(table<char, builder>({
      {'S', append_sync},
      {'H', append_flush},
      {'X', append_terminate},
  }));
  std::string built;
  build(built);
  CHECK(built == message_builder{}.typed(type));
  CHECK(body_of(built, type).empty());
}

TEST_CASE("broken frontend bodies give errors", "[frontend]") {
  using decoder = std::function<std::error_code(std::span<const char>)>;
  const auto wrap = [](auto decode) -> decoder {
    return [decode](std::span<const char> body) { return decode(body).error; };
  };
  const decoder password = wrap(decode_password_message);
  const decoder initial = wrap(decode_sasl_initial_response);
  const decoder query_decoder = wrap(decode_query);
  const decoder parse_decoder = wrap(decode_parse);
  const decoder bind_decoder = wrap(decode_bind);
  const decoder describe_decoder = wrap(decode_describe);
  const decoder execute_decoder = wrap(decode_execute);
  const decoder close_decoder = wrap(decode_close);
  const auto [name, decode, body_hex, expected] =
      GENERATE_COPY(table<std::string, decoder, std::string, errc>({
          {"password empty", password, "", errc::malformed},
          {"password unterminated", password, "616263", errc::malformed},
          {"password extra", password, "6100 62", errc::malformed},
          {"initial unterminated mechanism", initial, "5343", errc::malformed},
          {"initial no length", initial, "5300 0000", errc::truncated},
          {"initial data past end", initial, "5300 00000005 616263", errc::truncated},
          {"initial length below -1", initial, "5300 fffffffe", errc::malformed},
          {"initial extra after data", initial, "5300 00000001 61 62", errc::malformed},
          {"initial extra after -1", initial, "5300 ffffffff 61", errc::malformed},
          {"query unterminated", query_decoder, "73656c656374", errc::malformed},
          {"query extra", query_decoder, "7300 00", errc::malformed},
          {"parse no query", parse_decoder, "7300", errc::malformed},
          {"parse no count", parse_decoder, "7300 7100", errc::truncated},
          {"parse types past end", parse_decoder, "7300 7100 0002 00000017", errc::truncated},
          {"parse huge count", parse_decoder, "7300 7100 ffff", errc::truncated},
          {"parse extra", parse_decoder, "7300 7100 0000 00", errc::malformed},
          {"bind no statement", bind_decoder, "00", errc::malformed},
          {"bind unterminated portal", bind_decoder, "70", errc::malformed},
          {"describe empty", describe_decoder, "", errc::truncated},
          {"describe bad kind", describe_decoder, "5800", errc::malformed},
          {"describe unterminated", describe_decoder, "5373", errc::malformed},
          {"describe extra", describe_decoder, "5300 00", errc::malformed},
          {"execute no max_rows", execute_decoder, "00 0000", errc::truncated},
          {"execute extra", execute_decoder, "00 00000000 00", errc::malformed},
          {"close bad kind", close_decoder, "7300", errc::malformed},
          {"close unterminated", close_decoder, "50", errc::malformed},
      }));
  INFO(name);
  const std::string body = from_hex(body_hex);
  CHECK(decode(as_bytes(body)) == expected);
}

TEST_CASE("Bind decoding leaves the parameter bytes to the server", "[frontend]") {
  // Only the names are checked: what follows is copied, and PostgreSQL validates it.
  const std::string body = message_builder{}.cstr("").cstr("s").raw("\xff\xff").body();
  const auto b = decode_bind(as_bytes(body));
  REQUIRE(b);
  CHECK(b->params_offset == 3);
}

}  // namespace
}  // namespace sluice::protocol
