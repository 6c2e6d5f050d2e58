#include "pool/local_parse_answer.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "pool/statement_registry.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "tests/protocol/hex.hpp"

namespace sluice::pool {
namespace {

using protocol::test::to_hex;

constexpr std::uint32_t max_message = 1 << 20;

std::string parse(std::string_view name, std::string_view sql,
                  std::vector<std::uint32_t> types = {}) {
  std::string out;
  protocol::append_parse(out, name, sql, types);
  return out;
}
std::string sync() {
  std::string out;
  protocol::append_sync(out);
  return out;
}
std::string flush() {
  std::string out;
  protocol::append_flush(out);
  return out;
}
std::string bind(std::string_view statement) {
  std::string out;
  const std::string rest("\0\0\0\0\0\0", 6);  // no formats, no parameters, no result formats
  protocol::append_bind_header(out, "", statement, {rest.data(), rest.size()});
  return out;
}
std::string describe(char kind, std::string_view name) {
  std::string out;
  protocol::append_describe(out, kind, name);
  return out;
}
std::string execute() {
  std::string out;
  protocol::append_execute(out, "", 0);
  return out;
}
std::string close(char kind, std::string_view name) {
  std::string out;
  protocol::append_close(out, kind, name);
  return out;
}
std::string query(std::string_view sql) {
  std::string out;
  protocol::append_query(out, sql);
  return out;
}

struct fixture {
  statement_registry registry;
  client_statement_map client;
  intern_function intern = [this](std::string_view q, std::span<const std::uint32_t> t) {
    return registry.intern(q, t);
  };
  std::vector<statement_ptr> held;  // keeps registry entries alive, as server caches would

  // A statement some server has accepted.
  statement_ptr verified(std::string_view sql, std::vector<std::uint32_t> types = {}) {
    auto s = registry.intern(sql, types);
    s->verified.store(true);
    held.push_back(s);
    return s;
  }
  std::optional<local_parse_answer> answer(const std::string& bytes) {
    return answer_parses_locally({bytes.data(), bytes.size()}, max_message, client, intern);
  }
};

std::string expected_reply(std::size_t parses) {
  std::string out;
  for (std::size_t i = 0; i < parses; ++i) protocol::append_parse_complete(out);
  protocol::append_ready_for_query(out, 'I');
  return out;
}

TEST_CASE("local_parse_answer: verified named Parses then Sync are answered here",
          "[pool][statements][local_parse]") {
  fixture f;
  auto s1 = f.verified("SELECT 1");
  auto s2 = f.verified("SELECT $1", {23});
  const auto count = GENERATE(1, 2, 3);
  std::string batch;
  std::vector<std::pair<std::string, statement_ptr>> names{
      {"a", s1}, {"b", s2}, {"c", s1}};  // two names may share a statement
  names.resize(count);
  for (const auto& [name, s] : names) batch += parse(name, s->query, s->param_types);
  batch += sync();

  const auto answered = f.answer(batch);
  REQUIRE(answered);
  CHECK(answered->consumed == batch.size());
  CHECK(answered->parses == names.size());
  CHECK(to_hex(answered->reply) == to_hex(expected_reply(names.size())));
  CHECK(f.client.size() == names.size());
  for (const auto& [name, s] : names) {
    REQUIRE(f.client.contains(name));
    CHECK(f.client.at(name) == s);
  }
}

TEST_CASE("local_parse_answer: consumes only up to the Sync", "[pool][statements][local_parse]") {
  fixture f;
  f.verified("SELECT 1");
  const std::string answered_part = parse("a", "SELECT 1") + sync();
  const std::string next = bind("a") + execute() + sync();
  const auto answered = f.answer(answered_part + next);
  REQUIRE(answered);
  CHECK(answered->consumed == answered_part.size());
  CHECK(answered->parses == 1);
}

TEST_CASE("local_parse_answer: anything else goes to a server", "[pool][statements][local_parse]") {
  struct row {
    const char* what;
    std::string bytes;
  };
  const auto r = GENERATE(values<row>({
      {"unverified statement", parse("a", "SELECT 'never prepared'") + sync()},
      {"one unverified among verified",
       parse("a", "SELECT 1") + parse("b", "SELECT 'never prepared'") + sync()},
      {"verified text, other parameter types", parse("a", "SELECT 1", {23}) + sync()},
      {"unnamed Parse", parse("", "SELECT 1") + sync()},
      {"duplicate name in the batch", parse("a", "SELECT 1") + parse("a", "SELECT 1") + sync()},
      {"name the client already has", parse("taken", "SELECT 1") + sync()},
      {"Bind after the Parse", parse("a", "SELECT 1") + bind("a") + sync()},
      {"Describe after the Parse", parse("a", "SELECT 1") + describe('S', "a") + sync()},
      {"Execute after the Parse", parse("a", "SELECT 1") + execute() + sync()},
      {"Close after the Parse", parse("a", "SELECT 1") + close('S', "a") + sync()},
      {"Flush instead of Sync", parse("a", "SELECT 1") + flush()},
      {"Flush before Sync", parse("a", "SELECT 1") + flush() + sync()},
      {"Query after the Parse", parse("a", "SELECT 1") + query("SELECT 1")},
      {"Sync alone", sync()},
      {"nothing", std::string{}},
      {"no Sync yet", parse("a", "SELECT 1")},
      {"no Sync yet, two Parses", parse("a", "SELECT 1") + parse("b", "SELECT 1")},
  }));
  CAPTURE(r.what);
  fixture f;
  auto s = f.verified("SELECT 1");
  f.client["taken"] = s;
  CHECK_FALSE(f.answer(r.bytes));
  // Nothing was recorded.
  CHECK(f.client.size() == 1);
  CHECK(f.client.contains("taken"));
}

TEST_CASE("local_parse_answer: partial input at every byte boundary waits for the rest",
          "[pool][statements][local_parse]") {
  fixture f;
  f.verified("SELECT 1");
  f.verified("SELECT 2");
  const std::string batch = parse("a", "SELECT 1") + parse("b", "SELECT 2") + sync();
  for (std::size_t cut = 0; cut < batch.size(); ++cut) {
    CAPTURE(cut);
    CHECK_FALSE(f.answer(batch.substr(0, cut)));
    CHECK(f.client.empty());
  }
  const auto whole = f.answer(batch);
  REQUIRE(whole);
  CHECK(whole->parses == 2);
}

TEST_CASE("local_parse_answer: an oversized or malformed message is left to the relay",
          "[pool][statements][local_parse]") {
  fixture f;
  f.verified("SELECT 1");
  const std::string batch = parse("a", "SELECT 1") + sync();
  // Too long for the limit.
  CHECK_FALSE(answer_parses_locally({batch.data(), batch.size()}, 8, f.client, f.intern));
  // A Parse whose body does not decode (cut inside the parameter count).
  std::string bad = "P";
  const std::string body = std::string("a\0SELECT 1\0", 11) + std::string(1, '\0');
  const std::uint32_t len = static_cast<std::uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) bad.push_back(static_cast<char>(len >> shift));
  bad += body;
  CHECK_FALSE(f.answer(bad + sync()));
  CHECK(f.client.empty());
}

}  // namespace
}  // namespace sluice::pool
