#include "proxy/config/upstream_url.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>

namespace sluice::config {
namespace {

using result = scalar_result<upstream_settings>;

constexpr std::array<std::string_view, 7> supported_options{"host",     "port",    "dbname", "user",
                                                            "password", "sslmode", "options"};

constexpr std::array<std::string_view, 6> ssl_modes{"disable", "allow",     "prefer",
                                                    "require", "verify-ca", "verify-full"};

struct conninfo_free {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// libpq's parse errors quote the offending token, and sometimes the whole URI, which is
// where the password is. Keep the message but blank out every quoted part, except in the
// two messages whose quote is an option name.
std::string redact_libpq_message(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  if (message.starts_with("invalid connection option") ||
      message.starts_with("invalid URI query parameter:")) {
    return message;
  }
  std::string out;
  bool quoted = false;
  for (const char c : message) {
    if (c == '"') {
      out += quoted ? "\"" : "\"...";
      quoted = !quoted;
    } else if (!quoted) {
      out += c;
    }
  }
  return out;
}

std::string joined(const auto& words) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

}  // namespace

scalar_result<upstream_settings> parse_upstream_url(std::string_view url,
                                                    std::string_view database_name) {
  if (url.empty()) return result::failure("must not be empty");
  const std::string text(url);
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, conninfo_free> options(
      PQconninfoParse(text.c_str(), &raw_error));
  if (!options) {
    std::string message = raw_error != nullptr ? raw_error : "out of memory";
    if (raw_error != nullptr) PQfreemem(raw_error);
    return result::failure("invalid connection string: " + redact_libpq_message(message));
  }

  upstream_settings out;
  std::string port_text;
  for (const PQconninfoOption* option = options.get(); option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const std::string_view keyword = option->keyword;
    const std::string_view value = option->val;
    if (keyword == "host") {
      if (!value.empty()) out.host = value;
    } else if (keyword == "port") {
      port_text = value;
    } else if (keyword == "dbname") {
      out.dbname = value;
    } else if (keyword == "user") {
      out.user = value;
    } else if (keyword == "password") {
      out.password = value;
    } else if (keyword == "sslmode") {
      out.sslmode = value;
    } else if (keyword == "options") {
      out.options = value;
    } else {
      return result::failure("connection option \"" + std::string(keyword) +
                             "\" is not supported here (use " + joined(supported_options) + ")");
    }
  }

  if (out.host.find(',') != std::string::npos || port_text.find(',') != std::string::npos) {
    return result::failure("lists several hosts; sluice connects to exactly one");
  }
  if (!port_text.empty()) {
    const auto port = parse_unsigned(port_text);
    if (!port.value || *port.value == 0 || *port.value > 65535) {
      return result::failure("port must be a number from 1 to 65535");
    }
    out.port = static_cast<std::uint16_t>(*port.value);
  }
  if (!out.sslmode.empty() &&
      std::find(ssl_modes.begin(), ssl_modes.end(), out.sslmode) == ssl_modes.end()) {
    return result::failure("sslmode must be one of " + joined(ssl_modes));
  }
  if (out.dbname.empty()) out.dbname = database_name;
  return {std::move(out), {}};
}

}  // namespace sluice::config
