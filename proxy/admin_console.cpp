#include "proxy/admin_console.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>

#include "protocol/backend_messages.hpp"
#include "protocol/binary_values.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/message_types.hpp"
#include "proxy/admin_tables.hpp"

namespace sluice::proxy {
namespace {

// Upper case, one space between words, no trailing ';' or space.
std::string normalize(std::string_view sql) {
  std::string out;
  for (char c : sql) {
    if (c == ';') break;
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// What one statement asks for.
struct console_request {
  enum class kind { empty, show, help, command, unknown } what = kind::unknown;
  std::string table;                    // for show: "POOLS"; for command: the verb, "PAUSE"
  std::optional<std::string> argument;  // for command: its database or id, as written
};

constexpr std::string_view commands[] = {"PAUSE",  "RESUME",      "DISABLE",    "ENABLE",
                                         "RELOAD", "SHUTDOWN",    "SUSPEND",    "RECONNECT",
                                         "KILL",   "KILL_CLIENT", "WAIT_CLOSE", "SET"};

// "PAUSE app" -> {"PAUSE", "app"}: the verb upper case, the argument as written (database
// names are case-sensitive), quotes removed as PgBouncer does.
std::optional<console_request> classify_command(std::string_view sql) {
  const auto normalized = normalize(sql);
  const auto verb = normalized.substr(0, normalized.find(' '));
  if (std::find(std::begin(commands), std::end(commands), verb) == std::end(commands))
    return std::nullopt;
  console_request request{console_request::kind::command, verb, std::nullopt};
  auto rest = sql.substr(0, sql.find(';'));
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())))
    rest.remove_prefix(1);
  rest.remove_prefix(std::min(rest.size(), verb.size()));
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())))
    rest.remove_prefix(1);
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back())))
    rest.remove_suffix(1);
  if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"')
    rest = rest.substr(1, rest.size() - 2);
  if (!rest.empty()) request.argument = std::string(rest);
  return request;
}

console_request classify(std::string_view sql) {
  if (auto command = classify_command(sql)) return *command;
  const auto command = normalize(sql);
  if (command.empty()) return {console_request::kind::empty, {}};
  for (std::string_view verb : {"SHOW", "SELECT"}) {
    if (command == verb) return {console_request::kind::help, {}};
    if (command.starts_with(verb) && command.size() > verb.size() && command[verb.size()] == ' ') {
      auto rest = command.substr(verb.size() + 1);
      if (rest == "HELP") return {console_request::kind::help, {}};
      if (rest.find(' ') == std::string::npos) return {console_request::kind::show, rest};
    }
  }
  return {};
}

std::string known_commands() {
  std::string names;
  for (auto name : show_table_names())
    names += fmt::format("{}{}", names.empty() ? "" : ", ", name);
  return fmt::format("the sluice admin console knows SHOW (or SELECT) HELP, {}", names);
}

result_table help_table() {
  result_table table;
  table.columns.push_back({"command"});
  for (auto name : show_table_names()) table.rows.push_back({fmt::format("SHOW {}", name)});
  return table;
}

void append_error(std::string& out, std::string_view sqlstate, std::string_view message) {
  protocol::append_error_response(
      out,
      {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
}

// The table a request answers, or an error written to `out`.
std::optional<result_table> table_for(const console_request& request,
                                      const admin_console::snapshot_source& snapshot,
                                      std::string& out) {
  switch (request.what) {
    case console_request::kind::help:
      return help_table();
    case console_request::kind::show:
      if (auto table = show_table(request.table, snapshot())) return table;
      break;
    default:
      break;
  }
  append_error(out, "42601", known_commands());
  return std::nullopt;
}

std::int16_t format_of(const std::vector<std::int16_t>& formats, std::size_t column) {
  if (formats.empty()) return 0;
  return formats.size() == 1 ? formats[0] : (column < formats.size() ? formats[column] : 0);
}

void append_description(std::string& out, const result_table& table,
                        const std::vector<std::int16_t>& formats) {
  std::vector<protocol::column_description> described;
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    const auto type = table.columns[i].type;
    const std::int16_t size = type == protocol::type_oid::int4   ? 4
                              : type == protocol::type_oid::int8 ? 8
                                                                 : -1;
    described.push_back({.name = table.columns[i].name,
                         .type_oid = type,
                         .type_size = size,
                         .format_code = format_of(formats, i)});
  }
  protocol::append_row_description(out, described);
}

void append_rows(std::string& out, const result_table& table,
                 const std::vector<std::int16_t>& formats) {
  std::vector<std::optional<std::string>> encoded;
  std::vector<std::optional<std::string_view>> cells;
  for (const auto& row : table.rows) {
    encoded.assign(row.begin(), row.end());
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      if (!encoded[i] || format_of(formats, i) != 1) continue;
      // A value the binary encoder cannot write (not a number of its type) stays NULL
      // rather than text the client would misread as binary.
      encoded[i] = protocol::binary_value(table.columns[i].type, *encoded[i]);
    }
    cells.assign(encoded.begin(), encoded.end());
    protocol::append_data_row(out, cells);
  }
  protocol::append_command_complete(out, fmt::format("SHOW {}", table.rows.size()));
}

// Bind's result-format codes: after the parameter formats and values (protocol docs, Bind).
std::optional<std::vector<std::int16_t>> result_formats_of(std::span<const char> body,
                                                           std::size_t offset) {
  std::size_t at = offset;
  const auto int16 = [&]() -> std::optional<std::int16_t> {
    if (at + 2 > body.size()) return std::nullopt;
    const auto v = static_cast<std::int16_t>((static_cast<unsigned char>(body[at]) << 8) |
                                             static_cast<unsigned char>(body[at + 1]));
    at += 2;
    return v;
  };
  auto parameter_formats = int16();
  if (!parameter_formats || *parameter_formats < 0) return std::nullopt;
  at += 2 * static_cast<std::size_t>(*parameter_formats);
  auto parameters = int16();
  if (!parameters || *parameters < 0) return std::nullopt;
  for (int i = 0; i < *parameters; ++i) {
    if (at + 4 > body.size()) return std::nullopt;
    std::int32_t length = 0;
    for (int b = 0; b < 4; ++b) length = (length << 8) | static_cast<unsigned char>(body[at + b]);
    at += 4;
    if (length > 0) at += static_cast<std::size_t>(length);
  }
  auto count = int16();
  if (!count || *count < 0) return std::nullopt;
  std::vector<std::int16_t> formats;
  for (int i = 0; i < *count; ++i) {
    auto f = int16();
    if (!f) return std::nullopt;
    formats.push_back(*f);
  }
  return formats;
}

}  // namespace

bool is_admin_database(const config::settings& settings, std::string_view database) {
  return (database == admin_database || database == pgbouncer_admin_database) &&
         !settings.find_database(database);
}

console_access console_access_of(const config::settings& settings, std::string_view user) {
  const auto listed = [&](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), user) != names.end();
  };
  if (listed(settings.admin_users)) return console_access::admin;
  if (listed(settings.stats_users)) return console_access::stats;
  return console_access::none;
}

admin_console::admin_console(console_access access, snapshot_source snapshot,
                             console_controls* controls, client_directory* directory)
    : access_(access), snapshot_(std::move(snapshot)), controls_(controls), directory_(directory) {}

void admin_console::run_command(std::string_view verb, const std::optional<std::string>& argument,
                                std::string& out) {
  if (access_ != console_access::admin)
    return append_error(out, "42501",
                        fmt::format("permission denied: only admin_users may run {}", verb));
  if (verb == "KILL_CLIENT" && directory_) {
    std::uint64_t id = 0;
    const bool number = argument && !argument->empty() &&
                        std::all_of(argument->begin(), argument->end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
    if (number) id = std::stoull(*argument);
    if (!number || directory_->close_client(id) == 0)
      return append_error(out, "42704", fmt::format("no client with id {}", argument.value_or("")));
    return protocol::append_command_complete(out, verb);
  }
  const bool changes_pauses = verb == "PAUSE" || verb == "RESUME" || verb == "DISABLE" ||
                              verb == "ENABLE" || (verb == "KILL" && directory_);
  if (!changes_pauses || !controls_)
    return append_error(
        out, "0A000",
        fmt::format("{} is not supported yet by sluice (see the README's admin console)", verb));
  if ((verb == "DISABLE" || verb == "ENABLE") && !argument)
    return append_error(out, "42601", fmt::format("{} needs a database name", verb));
  if (argument) {
    const auto snapshot = snapshot_();
    if (snapshot.settings && !snapshot.settings->find_database(*argument))
      return append_error(out, "3D000", fmt::format("database \"{}\" does not exist", *argument));
  }
  if (verb == "PAUSE") {
    controls_->pause(argument);
    release_wait_ = release_wait{argument};
  } else if (verb == "KILL") {
    // As PgBouncer: the database stays paused, so new clients wait until RESUME.
    controls_->pause(argument);
    directory_->close_clients_of(argument);
  } else if (verb == "RESUME") {
    controls_->resume(argument);
  } else if (verb == "DISABLE") {
    controls_->disable(*argument);
  } else {
    controls_->enable(*argument);
  }
  protocol::append_command_complete(out, verb);
}

std::string admin_console::answer(const protocol::message_view& message) {
  std::string out;
  if (message.type == protocol::frontend_type::query) {
    auto query = protocol::decode_query(message.body);
    if (!query) {
      append_error(out, "08P01", "malformed Query message");
    } else {
      answer_query(query->sql, out);
    }
    protocol::append_ready_for_query(out, 'I');
    return out;
  }
  answer_extended(message, out);
  return out;
}

void admin_console::answer_query(std::string_view sql, std::string& out) {
  const auto request = classify(sql);
  if (request.what == console_request::kind::empty) {
    protocol::append_empty_query_response(out);
    return;
  }
  if (request.what == console_request::kind::command)
    return run_command(request.table, request.argument, out);
  if (auto table = table_for(request, snapshot_, out)) {
    append_description(out, *table, {});
    append_rows(out, *table, {});
  }
}

void admin_console::fail_extended(std::string& out, std::string_view sqlstate,
                                  std::string_view text) {
  append_error(out, sqlstate, text);
  skipping_to_sync_ = true;
}

void admin_console::answer_extended(const protocol::message_view& message, std::string& out) {
  namespace fe = protocol::frontend_type;
  if (message.type == fe::sync) {
    skipping_to_sync_ = false;
    portals_.erase("");  // the unnamed portal ends with its transaction
    protocol::append_ready_for_query(out, 'I');
    return;
  }
  if (skipping_to_sync_ || message.type == fe::flush) return;
  switch (message.type) {
    case fe::parse: {
      auto parse = protocol::decode_parse(message.body);
      if (!parse) return fail_extended(out, "08P01", "malformed Parse message");
      if (!parse->name.empty() && statements_.contains(parse->name))
        return fail_extended(out, "42P05",
                             fmt::format("prepared statement \"{}\" already exists", parse->name));
      statements_[std::string(parse->name)] = std::string(parse->query);
      protocol::append_parse_complete(out);
      return;
    }
    case fe::bind: {
      auto bind = protocol::decode_bind(message.body);
      if (!bind) return fail_extended(out, "08P01", "malformed Bind message");
      auto statement = statements_.find(bind->statement);
      if (statement == statements_.end())
        return fail_extended(
            out, "26000", fmt::format("prepared statement \"{}\" does not exist", bind->statement));
      auto formats = result_formats_of(message.body, bind->params_offset);
      if (!formats) return fail_extended(out, "08P01", "malformed Bind message");
      portals_[std::string(bind->portal)] = {statement->second, std::move(*formats)};
      protocol::append_bind_complete(out);
      return;
    }
    case fe::describe: {
      auto describe = protocol::decode_describe(message.body);
      if (!describe) return fail_extended(out, "08P01", "malformed Describe message");
      std::string sql;
      std::vector<std::int16_t> formats;
      if (describe->kind == protocol::target_kind::statement) {
        auto it = statements_.find(describe->name);
        if (it == statements_.end())
          return fail_extended(
              out, "26000",
              fmt::format("prepared statement \"{}\" does not exist", describe->name));
        sql = it->second;
        protocol::append_parameter_description(out, {});
      } else {
        auto it = portals_.find(describe->name);
        if (it == portals_.end())
          return fail_extended(out, "34000",
                               fmt::format("portal \"{}\" does not exist", describe->name));
        sql = it->second.sql;
        formats = it->second.result_formats;
      }
      const auto request = classify(sql);
      if (request.what == console_request::kind::empty) {
        protocol::append_no_data(out);
        return;
      }
      std::string error;
      if (auto table = table_for(request, snapshot_, error)) {
        append_description(out, *table, formats);
      } else {
        out += error;
        skipping_to_sync_ = true;
      }
      return;
    }
    case fe::execute: {
      auto execute = protocol::decode_execute(message.body);
      if (!execute) return fail_extended(out, "08P01", "malformed Execute message");
      auto it = portals_.find(execute->portal);
      if (it == portals_.end())
        return fail_extended(out, "34000",
                             fmt::format("portal \"{}\" does not exist", execute->portal));
      const auto request = classify(it->second.sql);
      if (request.what == console_request::kind::empty) {
        protocol::append_empty_query_response(out);
        return;
      }
      std::string error;
      if (auto table = table_for(request, snapshot_, error)) {
        append_rows(out, *table, it->second.result_formats);
      } else {
        out += error;
        skipping_to_sync_ = true;
      }
      return;
    }
    case fe::close: {
      auto close = protocol::decode_close(message.body);
      if (!close) return fail_extended(out, "08P01", "malformed Close message");
      if (close->kind == protocol::target_kind::statement)
        statements_.erase(std::string(close->name));
      else
        portals_.erase(std::string(close->name));
      protocol::append_close_complete(out);
      return;
    }
    default:
      return fail_extended(
          out, "08P01",
          fmt::format("unexpected message type '{}' on the admin console", message.type));
  }
}

}  // namespace sluice::proxy
