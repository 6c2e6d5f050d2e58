#pragma once
// Wire fixtures for pool tests: frontend and backend message builders, splitting a byte string
// into messages, and readable descriptions of request and reply streams (two streams with equal
// descriptions are what a client cannot tell apart).
#include <array>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "tests/protocol/message_builder.hpp"

namespace sluice::pool::testing {

constexpr std::uint32_t max_message = 1 << 20;

// A broken expectation of the fixtures or the model throws: a failed test under Catch2, a crash
// under the fuzzer (tests/fuzz), so neither framework is needed here.
struct model_error : std::logic_error {
  using std::logic_error::logic_error;
};
[[noreturn]] inline void model_fail(const std::string& what) {
  throw model_error(what);
}
inline void model_require(bool ok, const char* what) {
  if (!ok) model_fail(std::string("model: expected ") + what);
}

// --- Messages -----------------------------------------------------------------------------------

struct message {
  char type;
  std::string body;
  std::string wire;
};

inline std::vector<message> split(std::string_view bytes) {
  std::vector<message> out;
  std::span<const char> rest(bytes.data(), bytes.size());
  while (!rest.empty()) {
    const auto framed = protocol::frame_message(rest, max_message);
    model_require(bool(framed.status == protocol::frame_status::complete),
                  "framed.status == protocol::frame_status::complete");
    const auto& m = framed.message;
    out.push_back({m.type, std::string(m.body.data(), m.body.size()),
                   std::string(m.wire.data(), m.wire.size())});
    rest = rest.subspan(m.wire.size());
  }
  return out;
}

inline std::span<const char> span_of(const std::string& s) {
  return {s.data(), s.size()};
}

// Message types in order, one character each: "12DCZ".
inline std::string types(std::string_view bytes) {
  std::string out;
  for (const auto& m : split(bytes)) out.push_back(m.type);
  return out;
}

// Backend messages, readable: ErrorResponse with its SQLSTATE and message, CommandComplete with
// its tag. Two streams with equal descriptions are what a client can tell apart.
inline std::string describe_replies(std::string_view bytes) {
  std::string out;
  for (const auto& m : split(bytes)) {
    if (!out.empty()) out += ' ';
    out.push_back(m.type);
    if (m.type == 'E' || m.type == 'N') {
      const auto error = protocol::decode_error_response(span_of(m.body));
      model_require(bool(error), "error");
      out += "[" + std::string(error->sqlstate()) + " " + std::string(error->message()) + "]";
    } else if (m.type == 'C') {
      const auto tag = protocol::decode_command_complete(span_of(m.body));
      model_require(bool(tag), "tag");
      out += "[" + std::string(tag->tag) + "]";
    }
  }
  return out;
}

// Frontend messages, readable, for failure traces.
inline std::string describe_requests(std::string_view bytes) {
  std::string out;
  for (const auto& m : split(bytes)) {
    if (!out.empty()) out += ' ';
    out.push_back(m.type);
    const auto body = span_of(m.body);
    switch (m.type) {
      case 'P': {
        const auto p = protocol::decode_parse(body);
        model_require(bool(p), "p");
        out += "(" + std::string(p->name) + "," + std::string(p->query);
        for (auto t : p->param_types) out += "," + std::to_string(t);
        out += ")";
        break;
      }
      case 'B': {
        const auto b = protocol::decode_bind(body);
        model_require(bool(b), "b");
        out += "(" + std::string(b->portal) + "," + std::string(b->statement) + ")";
        break;
      }
      case 'D':
      case 'C': {
        const auto d = protocol::decode_describe(body);  // same layout as Close
        model_require(bool(d), "d");
        out += "(" + std::string(1, d->kind) + "," + std::string(d->name) + ")";
        break;
      }
      case 'Q': {
        const auto q = protocol::decode_query(body);
        model_require(bool(q), "q");
        out += "(" + std::string(q->sql) + ")";
        break;
      }
      default:
        break;
    }
  }
  return out;
}

// Client → server builders.
namespace fe {
inline std::string parse(std::string_view name, std::string_view sql,
                         std::vector<std::uint32_t> t = {}) {
  std::string out;
  protocol::append_parse(out, name, sql, t);
  return out;
}
// Bind with text parameters; `params` are the values, sent as they are.
inline std::string bind(std::string_view statement, std::vector<std::string> params = {},
                        std::string_view portal = "") {
  protocol::test::message_builder rest;
  rest.int16(0);  // no parameter format codes: all text
  rest.int16(static_cast<std::int16_t>(params.size()));
  for (const auto& p : params) rest.int32(static_cast<std::int32_t>(p.size())).raw(p);
  rest.int16(1).int16(1);  // one result format code: binary
  std::string out;
  protocol::append_bind_header(out, portal, statement, span_of(rest.body()));
  return out;
}
inline std::string describe(char kind, std::string_view name) {
  std::string out;
  protocol::append_describe(out, kind, name);
  return out;
}
inline std::string execute(std::string_view portal = "") {
  std::string out;
  protocol::append_execute(out, portal, 0);
  return out;
}
inline std::string close(char kind, std::string_view name) {
  std::string out;
  protocol::append_close(out, kind, name);
  return out;
}
inline std::string sync() {
  std::string out;
  protocol::append_sync(out);
  return out;
}
inline std::string flush() {
  std::string out;
  protocol::append_flush(out);
  return out;
}
inline std::string query(std::string_view sql) {
  std::string out;
  protocol::append_query(out, sql);
  return out;
}
// COPY FROM STDIN data and its end.
inline std::string copy_data(std::string_view data) {
  protocol::test::message_builder b;
  b.raw(data);
  return b.typed('d');
}
inline std::string copy_done() {
  protocol::test::message_builder b;
  return b.typed('c');
}
}  // namespace fe

// Server → client builders.
namespace be {
inline std::string error(std::string_view sqlstate, std::string_view message) {
  std::string out;
  protocol::append_error_response(
      out,
      {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
  return out;
}
inline std::string notice(std::string_view message) {
  std::string out;
  protocol::append_notice_response(
      out,
      {.severity = "NOTICE", .sqlstate = "00000", .message = message, .detail = {}, .hint = {}});
  return out;
}
inline std::string parameter_status(std::string_view name, std::string_view value) {
  std::string out;
  protocol::append_parameter_status(out, name, value);
  return out;
}
inline std::string notification() {
  protocol::test::message_builder b;
  b.int32(4242).cstr("channel").cstr("payload");
  return b.typed('A');
}
inline std::string parameter_description(const std::vector<std::uint32_t>& oids) {
  protocol::test::message_builder b;
  b.int16(static_cast<std::int16_t>(oids.size()));
  for (auto oid : oids) b.uint32(oid);
  return b.typed('t');
}
inline std::string row_description() {
  std::string out;
  const std::array<protocol::column_description, 1> columns{{{.name = "?column?", .type_oid = 23}}};
  protocol::append_row_description(out, columns);
  return out;
}
inline std::string data_row() {
  std::string out;
  const std::array<std::optional<std::string_view>, 1> values{{"1"}};
  protocol::append_data_row(out, values);
  return out;
}
inline std::string command_complete(std::string_view tag) {
  std::string out;
  protocol::append_command_complete(out, tag);
  return out;
}
inline std::string ready(char status = 'I') {
  std::string out;
  protocol::append_ready_for_query(out, status);
  return out;
}
inline std::string parse_complete() {
  std::string out;
  protocol::append_parse_complete(out);
  return out;
}
inline std::string bind_complete() {
  std::string out;
  protocol::append_bind_complete(out);
  return out;
}
// CopyInResponse for one text column.
inline std::string copy_in_response() {
  protocol::test::message_builder b;
  b.raw(std::string_view("\0", 1)).int16(1).int16(0);
  return b.typed('G');
}
}  // namespace be

}  // namespace sluice::pool::testing
