#include "proxy/config/upstream_url.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>

namespace sluice::config {
namespace {

using result = scalar_result<upstream_settings>;

constexpr std::array<std::string_view, 6> ssl_modes{"disable", "allow",     "prefer",
                                                    "require", "verify-ca", "verify-full"};
constexpr std::array<std::string_view, 3> gssenc_modes{"disable", "prefer", "require"};
constexpr std::array<std::string_view, 3> channel_bindings{"disable", "prefer", "require"};
constexpr std::array<std::string_view, 6> session_attrs{"any",     "read-write", "read-only",
                                                        "primary", "standby",    "prefer-standby"};

constexpr std::string_view no_tls = "which sluice does not support on server connections yet";

// Why sluice refuses a libpq keyword it does not read, so that no setting in a url is
// silently ignored. Any keyword not here and not read below gets the generic refusal.
struct refusal {
  std::string_view keyword;
  std::string_view why;  // empty: a TLS setting
};

constexpr std::string_view tls_setting = {};
constexpr std::string_view keepalive =
    "sluice does not configure TCP keepalives on server connections (pool.pre_ping checks "
    "idle servers)";
constexpr std::string_view gssapi =
    "it is for GSSAPI authentication, which sluice does not support";
constexpr std::string_view one_host = "sluice connects to exactly one host";

constexpr std::array refusals{
    // TLS: with sluice speaking plain text, each of these would be a silent downgrade.
    refusal{"sslcert", tls_setting},
    refusal{"sslkey", tls_setting},
    refusal{"sslrootcert", tls_setting},
    refusal{"sslcrl", tls_setting},
    refusal{"sslcrldir", tls_setting},
    refusal{"sslpassword", tls_setting},
    refusal{"sslcompression", tls_setting},
    refusal{"sslsni", tls_setting},
    refusal{"sslcertmode", tls_setting},
    refusal{"sslnegotiation", tls_setting},
    refusal{"sslkeylogfile", tls_setting},
    refusal{"ssl_min_protocol_version", tls_setting},
    refusal{"ssl_max_protocol_version", tls_setting},
    // Settings sluice has a key of its own for, or does not need.
    refusal{"connect_timeout",
            "set pool.connect_timeout (for one database: databases.<name>.pool.connect_timeout)"},
    refusal{"hostaddr", "put the address in host (sluice resolves host itself)"},
    refusal{"passfile",
            "sluice reads no password file; give the password in the url, or leave it out to "
            "log in with the client's own plain password from users"},
    refusal{"service", "sluice reads no service file; write the service's settings in the url"},
    refusal{"client_encoding",
            "each client chooses its own client_encoding, and sluice sets it on the server for "
            "that client"},
    refusal{"keepalives", keepalive},
    refusal{"keepalives_idle", keepalive},
    refusal{"keepalives_interval", keepalive},
    refusal{"keepalives_count", keepalive},
    refusal{"tcp_user_timeout", keepalive},
    refusal{"replication", "sluice does not proxy replication connections"},
    refusal{"krbsrvname", gssapi},
    refusal{"gsslib", gssapi},
    refusal{"gssdelegation", gssapi},
    refusal{"requirepeer", "sluice does not check a unix socket's peer"},
    refusal{"load_balance_hosts", one_host},
    refusal{"require_auth",
            "sluice answers whichever of SCRAM-SHA-256, md5 and password the server asks for"},
};

const refusal* find_refusal(std::string_view keyword) {
  for (const auto& r : refusals)
    if (r.keyword == keyword) return &r;
  return nullptr;
}

std::string refusal_problem(std::string_view keyword) {
  const std::string name = "connection option \"" + std::string(keyword) + "\"";
  const auto* r = find_refusal(keyword);
  if (r == nullptr) {
    return name +
           " is not supported here (sluice reads host, port, dbname, user, password, options, "
           "application_name, fallback_application_name, sslmode, gssencmode, channel_binding "
           "and target_session_attrs)";
  }
  if (r->why.empty()) return name + " configures TLS, " + std::string(no_tls);
  return name + " is not supported here: " + std::string(r->why);
}

// libpq rejects keywords it does not know itself (older or newer ones than it has); when
// sluice knows why it would refuse one, say that too.
std::string explain_unknown_keyword(std::string message) {
  for (const std::string_view prefix :
       {"invalid connection option \"", "invalid URI query parameter: \""}) {
    if (!message.starts_with(prefix)) continue;
    const auto close = message.find('"', prefix.size());
    if (close == std::string::npos) break;
    if (const auto* r =
            find_refusal(std::string_view(message).substr(prefix.size(), close - prefix.size()))) {
      message += r->why.empty() ? " (it configures TLS, " + std::string(no_tls) + ")"
                                : " (" + std::string(r->why) + ")";
    }
    break;
  }
  return message;
}

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

bool contains(const auto& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
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
    return result::failure("invalid connection string: " +
                           explain_unknown_keyword(redact_libpq_message(message)));
  }

  upstream_settings out;
  std::string port_text;
  std::string fallback_application_name;
  std::string gssencmode;
  std::string channel_binding;
  std::string target_session_attrs;
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
    } else if (keyword == "application_name") {
      out.application_name = value;
    } else if (keyword == "fallback_application_name") {
      fallback_application_name = value;
    } else if (keyword == "gssencmode") {
      gssencmode = value;
    } else if (keyword == "channel_binding") {
      channel_binding = value;
    } else if (keyword == "target_session_attrs") {
      target_session_attrs = value;
    } else {
      return result::failure(refusal_problem(keyword));
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
  // Each value below is echoed only once it is known to be one of libpq's own words, never
  // what the url says otherwise.
  if (!out.sslmode.empty()) {
    if (!contains(ssl_modes, out.sslmode)) {
      return result::failure("sslmode must be one of " + joined(ssl_modes));
    }
    // Like a libpq built without TLS: allow and prefer fall back to plain text, the others
    // fail rather than connect without the TLS they ask for.
    if (out.sslmode != "disable" && out.sslmode != "allow" && out.sslmode != "prefer") {
      return result::failure("sslmode=" + out.sslmode + " asks for TLS, " + std::string(no_tls) +
                             "; use sslmode=disable (allow and prefer are accepted too: they "
                             "connect in plain text, as libpq does when TLS is unavailable)");
    }
  }
  if (!gssencmode.empty()) {
    if (!contains(gssenc_modes, gssencmode)) {
      return result::failure("gssencmode must be one of " + joined(gssenc_modes));
    }
    if (gssencmode == "require") {
      return result::failure(
          "gssencmode=require asks for GSSAPI encryption, which sluice does not support; use "
          "gssencmode=disable (prefer is accepted too: it connects in plain text, as libpq does "
          "when GSSAPI is unavailable)");
    }
  }
  if (!channel_binding.empty()) {
    if (!contains(channel_bindings, channel_binding)) {
      return result::failure("channel_binding must be one of " + joined(channel_bindings));
    }
    if (channel_binding == "require") {
      return result::failure("channel_binding=require needs TLS, " + std::string(no_tls) +
                             "; use channel_binding=disable or prefer");
    }
  }
  if (!target_session_attrs.empty()) {
    if (!contains(session_attrs, target_session_attrs)) {
      return result::failure("target_session_attrs must be one of " + joined(session_attrs));
    }
    if (target_session_attrs != "any") {
      return result::failure("target_session_attrs=" + target_session_attrs +
                             " is not supported: " + std::string(one_host) +
                             " and does not check whether it is a primary or a standby");
    }
  }
  if (out.application_name.empty()) out.application_name = fallback_application_name;
  if (out.dbname.empty()) out.dbname = database_name;
  return {std::move(out), {}};
}

}  // namespace sluice::config
