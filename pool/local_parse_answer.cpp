#include "pool/local_parse_answer.hpp"

#include <vector>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"

namespace sluice::pool {

std::optional<local_parse_answer> answer_parses_locally(std::span<const char> bytes,
                                                        std::uint32_t max_message_size,
                                                        client_statement_map& client,
                                                        const intern_function& intern) {
  std::vector<std::pair<std::string, statement_ptr>> names;
  std::size_t pos = 0;
  for (;;) {
    const auto framed = protocol::frame_message(bytes.subspan(pos), max_message_size);
    if (framed.status != protocol::frame_status::complete) return std::nullopt;
    const auto& message = framed.message;
    pos += message.wire.size();
    if (message.type == 'S') break;
    if (message.type != 'P') return std::nullopt;
    auto parse = protocol::decode_parse(message.body);
    if (!parse || parse->name.empty()) return std::nullopt;
    std::string name(parse->name);
    if (client.contains(name)) return std::nullopt;  // the server path raises 42P05
    for (const auto& [seen, statement] : names)
      if (seen == name) return std::nullopt;
    auto statement = intern(parse->query, parse->param_types);
    if (!statement->verified.load(std::memory_order_relaxed)) return std::nullopt;
    names.emplace_back(std::move(name), std::move(statement));
  }
  if (names.empty()) return std::nullopt;

  local_parse_answer answer;
  answer.consumed = pos;
  answer.parses = names.size();
  for (auto& [name, statement] : names) {
    client.insert_or_assign(std::move(name), std::move(statement));
    protocol::append_parse_complete(answer.reply);
  }
  protocol::append_ready_for_query(answer.reply, 'I');
  return answer;
}

}  // namespace sluice::pool
