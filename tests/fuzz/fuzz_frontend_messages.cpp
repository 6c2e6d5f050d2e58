// Fuzz target: a client's byte stream after the startup packet, framed and decoded the way the
// daemon frames and decodes it (protocol/framing, protocol/frontend_messages).
//
// Checked on every input, besides no crash and no sanitizer report:
// - framing: a complete message is exactly its length field plus the type byte, starts at the
//   front of the input, and within the per-type cap; a strict prefix of it is need_more, never an
//   error or a different message; an error carries a code;
// - decoding: every view points into the body it was decoded from;
// - round trip: re-encoding a decoded message with the builders gives back the same bytes, so
//   what the relay rewrites (the names in Parse, Bind, Describe, Close) is all it changes.
#include <cstdint>
#include <string>

#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/message_limits.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace sluice::fuzz {
namespace {

using protocol::frame_status;

std::span<const char> span_of(const std::string& s) {
  return {s.data(), s.size()};
}
bool same_bytes(std::span<const char> a, const std::string& b) {
  return std::string_view(a.data(), a.size()) == b;
}

void check_prefixes(std::span<const char> in, const protocol::message_view& m, std::uint32_t cap) {
  // Every shorter prefix is need_more: the relay must wait, not fail or frame something else.
  // The header sizes and the last byte are where off-by-one errors live; checking all of a long
  // message's prefixes would only slow the fuzzer down.
  for (std::size_t n = 0; n < m.wire.size(); ++n) {
    if (n > 6 && n + 2 < m.wire.size()) n = m.wire.size() - 2;
    const auto prefix = protocol::frame_message(in.first(n), cap);
    SLUICE_FUZZ_CHECK(prefix.status == frame_status::need_more);
    SLUICE_FUZZ_CHECK(!prefix.error);
  }
}

void decode(const protocol::message_view& m) {
  const auto body = m.body;
  std::string again;
  switch (m.type) {
    case 'p': {
      // PasswordMessage, SASLInitialResponse and SASLResponse share the type: the daemon picks
      // the decoder from its auth step, so each must cope with any of them.
      if (const auto pw = protocol::decode_password_message(body)) {
        SLUICE_FUZZ_CHECK(within(body, pw->password));
        protocol::append_password_message(again, pw->password);
        SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      }
      if (const auto initial = protocol::decode_sasl_initial_response(body)) {
        SLUICE_FUZZ_CHECK(within(body, initial->mechanism));
        SLUICE_FUZZ_CHECK(within(body, initial->data));
        again.clear();
        protocol::append_sasl_initial_response(again, initial->mechanism, initial->data);
        const auto decoded_again =
            protocol::decode_sasl_initial_response(span_of(again).subspan(5));
        SLUICE_FUZZ_CHECK(decoded_again);
        SLUICE_FUZZ_CHECK(decoded_again->mechanism == initial->mechanism);
        SLUICE_FUZZ_CHECK(decoded_again->data == initial->data);
      }
      const auto response = protocol::decode_sasl_response(body);
      SLUICE_FUZZ_CHECK(response);
      SLUICE_FUZZ_CHECK(response->data.size() == body.size());
      return;
    }
    case 'Q': {
      const auto q = protocol::decode_query(body);
      if (!q) return;
      SLUICE_FUZZ_CHECK(within(body, q->sql));
      protocol::append_query(again, q->sql);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'P': {
      const auto p = protocol::decode_parse(body);
      if (!p) return;
      SLUICE_FUZZ_CHECK(within(body, p->name));
      SLUICE_FUZZ_CHECK(within(body, p->query));
      SLUICE_FUZZ_CHECK(p->param_types.size() <= 65535);
      protocol::append_parse(again, p->name, p->query, p->param_types);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'B': {
      const auto b = protocol::decode_bind(body);
      if (!b) return;
      SLUICE_FUZZ_CHECK(within(body, b->portal));
      SLUICE_FUZZ_CHECK(within(body, b->statement));
      SLUICE_FUZZ_CHECK(b->params_offset <= body.size());
      const auto rest = body.subspan(b->params_offset);
      protocol::append_bind_header(again, b->portal, b->statement, rest);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      // The relay sends the prefix and then the client's own bytes: together, the same message.
      std::string prefix;
      protocol::append_bind_prefix(prefix, b->portal, b->statement, rest.size());
      prefix.append(rest.data(), rest.size());
      SLUICE_FUZZ_CHECK(prefix == again);
      return;
    }
    case 'D':
    case 'C': {
      // Describe and Close have the same layout, and different builders.
      if (m.type == 'D') {
        const auto d = protocol::decode_describe(body);
        if (!d) return;
        SLUICE_FUZZ_CHECK(d->kind == 'S' || d->kind == 'P');
        SLUICE_FUZZ_CHECK(within(body, d->name));
        protocol::append_describe(again, d->kind, d->name);
      } else {
        const auto c = protocol::decode_close(body);
        if (!c) return;
        SLUICE_FUZZ_CHECK(c->kind == 'S' || c->kind == 'P');
        SLUICE_FUZZ_CHECK(within(body, c->name));
        protocol::append_close(again, c->kind, c->name);
      }
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'E': {
      const auto e = protocol::decode_execute(body);
      if (!e) return;
      SLUICE_FUZZ_CHECK(within(body, e->portal));
      protocol::append_execute(again, e->portal, e->max_rows);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    default:
      return;  // forwarded by byte count: nothing is decoded
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  auto in = fuzz::as_chars(data, size);
  while (!in.empty()) {
    const auto cap = protocol::frontend_length_limit(in[0]);
    const auto framed = protocol::frame_message(in, cap);
    if (framed.status == protocol::frame_status::error) {
      SLUICE_FUZZ_CHECK(framed.error);
      return 0;  // the stream cannot be resynced: the daemon closes the connection here
    }
    if (framed.status == protocol::frame_status::need_more) {
      SLUICE_FUZZ_CHECK(!framed.error);
      SLUICE_FUZZ_CHECK(in.size() < 5 ||
                        protocol::peek_header(in, cap).header.wire_size() > in.size());
      return 0;
    }
    const auto& m = framed.message;
    SLUICE_FUZZ_CHECK(m.wire.data() == in.data());
    SLUICE_FUZZ_CHECK(m.type == in[0]);
    SLUICE_FUZZ_CHECK(m.wire.size() >= 5 && m.wire.size() <= in.size());
    SLUICE_FUZZ_CHECK(m.wire.size() - 1 <= cap);
    SLUICE_FUZZ_CHECK(m.body.size() + 5 == m.wire.size());
    SLUICE_FUZZ_CHECK(m.body.data() == m.wire.data() + 5);
    const auto header = protocol::peek_header(in, cap);
    SLUICE_FUZZ_CHECK(header.status == protocol::frame_status::complete);
    SLUICE_FUZZ_CHECK(header.header.wire_size() == m.wire.size());
    fuzz::check_prefixes(in, m, cap);
    fuzz::decode(m);
    in = in.subspan(m.wire.size());
  }
  return 0;
}
