#include "proxy/config/pgbouncer_import.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "proxy/config/key_table.hpp"
#include "proxy/config/scalars.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::config::pgbouncer {
namespace {

// --- What sluice does with each [pgbouncer] setting it does not map -------------------------

struct unsupported_rule {
  std::string_view key;  // a prefix when it ends in '*'
  std::string_view why;
};

constexpr std::string_view no_key = "sluice has no equivalent setting";
constexpr std::string_view low_level = "a low-level network setting sluice does not expose";
constexpr std::string_view no_tls =
    "sluice has no TLS yet, so clients and servers are served in plain text; map this when "
    "sluice's TLS settings land";

// clang-format off
constexpr unsupported_rule unsupported[] = {
  {"logfile", "sluice logs to stderr (under systemd, to the journal); it has no log file"},
  {"pidfile", "sluice runs in the foreground and writes no pid file; systemd tracks it"},
  {"user", "sluice does not change user itself: start it as an unprivileged user (the "
           "package's unit runs it as `sluice`)"},
  {"unix_socket_mode", "sluice listens on TCP only, not on a Unix-domain socket"},
  {"unix_socket_group", "sluice listens on TCP only, not on a Unix-domain socket"},
  {"max_db_connections", "sluice has no cap on servers per database: each (database, user) "
                         "pool is bounded by pool.size + pool.overflow"},
  {"max_user_connections", "sluice has no cap on servers per user: each (database, user) pool "
                           "is bounded by pool.size + pool.overflow"},
  {"max_db_client_connections", "sluice caps clients only in total (max_clients)"},
  {"max_user_client_connections", "sluice caps clients only in total (max_clients)"},
  {"server_round_robin", "sluice picks idle servers its own way; there is no setting"},
  {"track_extra_parameters", "sluice tracks the parameters servers report and the settings a "
                             "SET changes without a list"},
  {"ignore_startup_parameters", no_key},
  {"peer_id", "sluice has no peering (cancels across processes) yet"},
  {"disable_pqexec", no_key},
  {"application_name_add_host", no_key},
  {"conffile", "not needed: sluice is given its config with -c"},
  {"service_name", "a Windows service setting"},
  {"job_name", "a Windows service setting"},
  {"stats_period", "sluice logs no periodic stats; SHOW STATS and /metrics "
                   "(listen.metrics_port) give live counts"},
  {"log_stats", "sluice logs no periodic stats; SHOW STATS and /metrics "
                "(listen.metrics_port) give live counts"},
  {"scram_iterations", "sluice computes SCRAM verifiers for plain passwords itself; no setting"},
  {"auth_hba_file", "sluice has no HBA file: every client authenticates with `auth`"},
  {"auth_ident_file", "sluice has no HBA file or ident maps"},
  {"auth_user", "sluice cannot look passwords up on the server (auth_query): list every user "
                "under users"},
  {"auth_query", "sluice cannot look passwords up on the server: list every user under users"},
  {"auth_dbname", "sluice cannot look passwords up on the server: list every user under users"},
  {"auth_ldap_options", "sluice has no LDAP authentication"},
  {"syslog", "sluice logs to stderr; under systemd the journal forwards to syslog"},
  {"syslog_ident", "sluice logs to stderr; under systemd set SyslogIdentifier= in the unit"},
  {"syslog_facility", "sluice logs to stderr; under systemd set SyslogFacility= in the unit"},
  {"log_connections", "sluice logs logins at debug level and failures at info and above "
                      "(log_level); there is no switch"},
  {"log_disconnections", "sluice logs disconnections at debug level (log_level); there is no "
                         "switch"},
  {"log_pooler_errors", "sluice always logs the errors it sends (log_level)"},
  {"server_reset_query", "sluice runs no reset query: it tracks each client's session settings "
                         "and sets them on whichever server the client gets"},
  {"server_reset_query_always", "sluice runs no reset query"},
  {"server_check_query", "sluice's pre-ping is its own; pool.pre_ping says when it runs"},
  {"server_fast_close", no_key},
  {"server_login_retry", no_key},
  {"autodb_idle_timeout", "sluice has no automatic (`*`) databases"},
  {"pool_idle_timeout", no_key},
  {"dns_max_ttl", "sluice resolves host names when it connects, with the system resolver"},
  {"dns_nxdomain_ttl", "sluice resolves host names when it connects, with the system resolver"},
  {"dns_zone_check_period", "sluice resolves host names when it connects, with the system "
                            "resolver"},
  {"resolv_conf", "sluice resolves host names with the system resolver"},
  {"query_wait_notify", no_key},
  {"login_notify_message", no_key},
  {"cancel_wait_timeout", no_key},
  {"transaction_timeout", "sluice has no limit on a whole transaction "
                          "(pool.idle_transaction_timeout limits idle time inside one)"},
  {"suspend_timeout", "sluice has no SUSPEND or online restart"},
  {"pkt_buf", low_level},
  {"sbuf_loopcnt", low_level},
  {"listen_backlog", low_level},
  {"so_reuseport", low_level},
  {"tcp_*", low_level},
  {"client_tls*", no_tls},
  {"server_tls*", no_tls},
};
// clang-format on

std::string_view unsupported_reason(std::string_view key) {
  for (const auto& rule : unsupported) {
    if (rule.key.ends_with('*') ? key.starts_with(rule.key.substr(0, rule.key.size() - 1))
                                : key == rule.key) {
      return rule.why;
    }
  }
  return {};
}

bool is_secret_key(std::string_view key) {
  return key.find("password") != std::string_view::npos || key == "auth_ldap_options";
}

// --- Values ---------------------------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A YAML double-quoted scalar whose text sluice reads back exactly: `${` is written `$${` so
// that it is not taken for a variable.
std::string yaml_string(std::string_view text, bool expand = false) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else if (!expand && c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      out += "$$";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Text that sluice's ${NAME} expansion leaves as it is: `${` written as `$${`.
std::string literal_dollars(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') out += '$';
    out += text[i];
  }
  return out;
}

// PgBouncer's times are seconds, with decimals ("5", "0.5", "120.0").
std::optional<duration> parse_seconds(std::string_view text) {
  double seconds = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, seconds);
  if (ec != std::errc{} || ptr != end || seconds < 0 || seconds > 1e9) return std::nullopt;
  return duration{static_cast<std::int64_t>(std::llround(seconds * 1000))};
}

std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t n = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return n;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  for (const char c : text) {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!item.empty()) out.push_back(std::move(item));
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty()) out.push_back(std::move(item));
  return out;
}

std::string where_text(const source_line& where) {
  return fmt::format("{}:{}", where.file, where.line);
}

std::string env_name_part(std::string_view text) {
  std::string out;
  for (const char c : text) {
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
               : '_';
  }
  return out;
}

// --- Output ---------------------------------------------------------------------------------

struct yaml_out {
  std::string text;

  void line(int indent, std::string_view s) {
    text.append(static_cast<std::size_t>(indent) * 2, ' ');
    text += s;
    text += '\n';
  }
  void comment(int indent, std::string_view s) { line(indent, fmt::format("# {}", s)); }
  void blank() { text += '\n'; }
};

// One value for a sluice key, with the notes that explain it.
struct mapped_value {
  std::string yaml;                // the scalar as written, or "" to leave the key out
  std::vector<std::string> notes;  // comment lines above the key
  std::string origin;              // end-of-line comment: where it came from
};

// A [pgbouncer] setting: the file's last value for it, else none.
struct global_setting {
  std::string value;
  source_line where;
};

class converter {
 public:
  converter(const ini_file& ini, std::string_view ini_name, const userlist* users)
      : ini_(ini), ini_name_(ini_name), users_(users) {}

  import_result run() {
    collect();
    header();
    emit_globals();
    emit_pool();
    emit_databases();
    emit_users();
    emit_console_lists();
    emit_sections_not_converted();
    emit_globals_not_converted();
    return {std::move(out_.text), std::move(variables_)};
  }

 private:
  // --- Reading ------------------------------------------------------------------------------

  void collect() {
    for (const auto& section : ini_.sections) {
      if (section.name == "pgbouncer") {
        for (const auto& e : section.entries) {
          const std::string key = lower(e.key);
          if (globals_.contains(key)) {
            overridden_.push_back(
                fmt::format("{} at {} is set again at {}; the last one counts, as in PgBouncer",
                            key, where_text(globals_[key].where), where_text(e.where)));
          }
          globals_[key] = {e.value, e.where};
        }
      } else if (section.name == "databases") {
        for (const auto& e : section.entries) databases_.push_back(&e);
      } else if (section.name == "users") {
        for (const auto& e : section.entries) user_settings_.push_back(&e);
      } else {
        other_sections_.push_back(&section);
      }
    }
  }

  const global_setting* global(std::string_view key) {
    used_.insert(std::string(key));
    const auto it = globals_.find(std::string(key));
    return it == globals_.end() ? nullptr : &it->second;
  }

  // The effective value of a setting: the file's, else PgBouncer's default.
  std::string effective(std::string_view key, std::string_view pgbouncer_default,
                        std::string* origin) {
    if (const auto* g = global(key)) {
      *origin = fmt::format("{} = {} ({})", key, g->value, where_text(g->where));
      return g->value;
    }
    *origin = fmt::format("PgBouncer's default {} = {}", key, pgbouncer_default);
    return std::string(pgbouncer_default);
  }

  // --- Writing ------------------------------------------------------------------------------

  void header() {
    out_.comment(
        0, fmt::format("sluice config converted from {} by `sluice import-pgbouncer`.", ini_name_));
    out_.comment(0,
                 "Each setting says where it came from; PgBouncer's defaults are written out "
                 "where it had no value,");
    out_.comment(0,
                 "since the two poolers' defaults differ. Lines starting with \"# ! \" are "
                 "what sluice does differently");
    out_.comment(0,
                 "or not at all: read them before you switch over. Check the result with "
                 "`sluice --check -c FILE`.");
    for (const auto& path : ini_.included) out_.comment(0, "Included: " + path);
    for (const auto& p : ini_.problems) out_.comment(0, "! could not read: " + p);
    if (users_) {
      for (const auto& p : users_->problems) out_.comment(0, "! could not read: " + p);
    }
    for (const auto& o : overridden_) out_.comment(0, "! " + o);
    // Filled in at the end, once every variable is known: see finish_variables().
    variables_at_ = out_.text.size();
    out_.blank();
  }

  void emit_key(int indent, std::string_view key, const mapped_value& v) {
    for (const auto& note : v.notes) out_.comment(indent, "! " + note);
    if (v.yaml.empty()) return;
    out_.line(indent,
              fmt::format("{}: {}{}", key, v.yaml, v.origin.empty() ? "" : "  # " + v.origin));
  }

  // A duration setting: seconds in PgBouncer, with `zero` saying what PgBouncer's 0 becomes.
  enum class zero_means { off, zero, unsupported };
  mapped_value duration_value(std::string_view key, std::string_view pgbouncer_default,
                              zero_means zero, std::string_view zero_note = {}) {
    mapped_value v;
    const std::string text = effective(key, pgbouncer_default, &v.origin);
    const auto d = parse_seconds(text);
    if (!d) {
      v.notes.push_back(
          fmt::format("{} = {} is not a number of seconds; sluice's default is "
                      "kept",
                      key, text));
      v.origin.clear();
      return v;
    }
    if (d->count() == 0) {
      switch (zero) {
        case zero_means::off:
          v.yaml = "off";
          return v;
        case zero_means::zero:
          v.yaml = "0";
          return v;
        case zero_means::unsupported:
          v.notes.push_back(fmt::format("{} = 0: {}", key, zero_note));
          v.origin.clear();
          return v;
      }
    }
    v.yaml = format_duration(*d);
    return v;
  }

  // A count checked against the sluice key's range.
  mapped_value count_value(std::string_view key, std::string_view pgbouncer_default,
                           std::string_view sluice_path) {
    mapped_value v;
    const std::string text = effective(key, pgbouncer_default, &v.origin);
    const auto n = parse_count(text);
    const auto* spec = find_key(sluice_path);
    if (!n) {
      v.notes.push_back(
          fmt::format("{} = {} is not a whole number; sluice's default is kept", key, text));
      v.origin.clear();
      return v;
    }
    auto value = *n;
    if (spec && (value < spec->min || value > spec->max)) {
      value = std::clamp(value, spec->min, spec->max);
      v.notes.push_back(fmt::format("{} = {} is outside sluice's range for {}; {} is used", key, *n,
                                    sluice_path, value));
    }
    v.yaml = std::to_string(value);
    return v;
  }

  void emit_globals() {
    // listen
    out_.line(0, "listen:");
    {
      mapped_value host;
      const auto* addr = global("listen_addr");
      if (!addr || addr->value.empty()) {
        host.yaml = "\"127.0.0.1\"";
        host.notes.push_back(
            "PgBouncer without listen_addr accepts no TCP connections, only Unix-domain "
            "sockets; sluice listens on TCP only, so it takes 127.0.0.1");
      } else {
        host.origin = fmt::format("listen_addr = {} ({})", addr->value, where_text(addr->where));
        auto addresses = split_list(addr->value);
        std::string first = addresses.empty() ? std::string("127.0.0.1") : addresses.front();
        if (first == "*") {
          first = "0.0.0.0";
          host.notes.push_back(
              "listen_addr = * is every address; sluice binds one: 0.0.0.0 is every IPv4 "
              "address (\"::\" would take IPv6 as well)");
        }
        if (addresses.size() > 1) {
          host.notes.push_back(
              fmt::format("listen_addr lists {} addresses; sluice listens on one, the first",
                          addresses.size()));
        }
        host.yaml = yaml_string(first);
      }
      emit_key(1, "host", host);
      emit_key(1, "port", count_value("listen_port", "6432", "listen.port"));
      if (const auto* dir = global("unix_socket_dir"); dir && !dir->value.empty()) {
        out_.comment(1, fmt::format("! unix_socket_dir = {} ({}): sluice does not listen on a "
                                    "Unix-domain socket; the directory is still where databases "
                                    "without a host connect",
                                    dir->value, where_text(dir->where)));
      }
    }

    emit_key(0, "max_clients", count_value("max_client_conn", "100", "max_clients"));
    emit_auth();
    {
      auto v = count_value("max_packet_size", "2147483647", "max_message_size");
      if (!v.yaml.empty()) {
        v.yaml = format_byte_size(std::stoull(v.yaml));
      }
      emit_key(0, "max_message_size", v);
    }
    emit_key(0, "client_login_timeout",
             duration_value("client_login_timeout", "60", zero_means::unsupported,
                            "PgBouncer waits forever; sluice needs a limit and keeps its "
                            "default (15s)"));
    {
      mapped_value v;
      const std::string text = effective("verbose", "0", &v.origin);
      const auto n = parse_count(text).value_or(0);
      v.yaml = n == 0 ? "info" : n == 1 ? "debug" : "trace";
      emit_key(0, "log_level", v);
    }
  }

  // The strongest method every user's stored secret can be checked with, as close to
  // PgBouncer's auth_type as sluice can get.
  void emit_auth() {
    mapped_value v;
    const std::string type = lower(effective("auth_type", "md5", &v.origin));
    auth_method wanted = auth_method::scram_sha_256;
    if (type == "md5") {
      wanted = auth_method::md5;
      v.notes.push_back(
          "auth_type = md5: PgBouncer uses SCRAM for users whose secret is a SCRAM verifier; "
          "sluice asks every client for one method");
    } else if (type == "plain") {
      wanted = auth_method::plain;
    } else if (type == "trust" || type == "any") {
      v.notes.push_back(
          fmt::format("auth_type = {}: PgBouncer asked for no password; sluice "
                      "always authenticates clients, with SCRAM where it can",
                      type));
    } else if (type != "scram-sha-256") {
      v.notes.push_back(fmt::format(
          "auth_type = {}: sluice has no {} authentication; clients log in with a password", type,
          type));
    }
    // Every user's secret must be checkable with the method (validate.cpp refuses otherwise).
    const auto all_can = [&](auth_method m) {
      return std::all_of(users_out_.begin(), users_out_.end(), [&](const auto& u) {
        return can_authenticate(m, classify_password(u.password_text));
      });
    };
    // Users are worked out first (see emit_users) so that the method can depend on them.
    prepare_users();
    auth_method chosen = wanted;
    if (!all_can(chosen)) {
      for (const auto m : {auth_method::scram_sha_256, auth_method::md5, auth_method::plain}) {
        if (all_can(m)) {
          chosen = m;
          break;
        }
      }
      v.notes.push_back(
          "not every user's stored secret works with that method (an md5 hash needs md5, a "
          "SCRAM verifier scram-sha-256), so sluice uses the strongest one they all support");
    }
    if (chosen == auth_method::plain) {
      v.notes.push_back(
          "plain sends passwords in clear text: until sluice has TLS, only on "
          "a trusted network");
    }
    v.yaml = chosen == auth_method::scram_sha_256 ? "scram-sha-256"
             : chosen == auth_method::md5         ? "md5"
                                                  : "plain";
    emit_key(0, "auth", v);
  }

  void emit_pool() {
    out_.blank();
    out_.line(0, "pool:");
    {
      mapped_value v;
      const std::string mode = lower(effective("pool_mode", "session", &v.origin));
      v.yaml = pool_mode_word(mode, v.notes);
      emit_key(1, "mode", v);
    }
    emit_key(1, "size", count_value("default_pool_size", "20", "pool.size"));
    emit_key(1, "min_size", count_value("min_pool_size", "0", "pool.min_size"));
    emit_key(1, "overflow", count_value("reserve_pool_size", "0", "pool.overflow"));
    emit_key(1, "overflow_after", duration_value("reserve_pool_timeout", "5", zero_means::zero));
    emit_key(1, "timeout",
             duration_value("query_wait_timeout", "120", zero_means::unsupported,
                            "PgBouncer lets clients wait for a server forever; sluice needs a "
                            "limit and keeps its default (30s)"));
    emit_key(1, "recycle",
             duration_value("server_lifetime", "3600", zero_means::unsupported,
                            "PgBouncer uses each server connection once; sluice has no such "
                            "mode and keeps its default (1h)"));
    emit_key(1, "idle_timeout", duration_value("server_idle_timeout", "600", zero_means::off));
    emit_key(1, "pre_ping", duration_value("server_check_delay", "30", zero_means::zero));
    {
      auto v = count_value("max_prepared_statements", "200", "pool.prepared_statements");
      emit_key(1, "prepared_statements", v);
    }
    emit_key(1, "client_idle_timeout", duration_value("client_idle_timeout", "0", zero_means::off));
    emit_key(1, "idle_transaction_timeout",
             duration_value("idle_transaction_timeout", "0", zero_means::off));
    emit_key(1, "query_timeout", duration_value("query_timeout", "0", zero_means::off));
    {
      auto connect = duration_value("server_connect_timeout", "15", zero_means::unsupported,
                                    "PgBouncer waits forever; sluice keeps its defaults");
      auto login = connect;
      login.notes = {
          "PgBouncer's server_connect_timeout covers connecting and logging in; sluice has a "
          "limit for each, and both get its value"};
      emit_key(1, "connect_timeout", connect);
      emit_key(1, "login_timeout", login);
    }
  }

  static std::string pool_mode_word(const std::string& mode, std::vector<std::string>& notes) {
    if (mode == "session" || mode == "transaction") return mode;
    if (mode == "statement") {
      notes.push_back(
          "pool_mode = statement: sluice has no statement mode; transaction mode is the "
          "closest, and it lets multi-statement transactions through where PgBouncer refuses "
          "them");
      return "transaction";
    }
    notes.push_back(
        fmt::format("pool_mode = {} is not a PgBouncer mode; transaction is used", mode));
    return "transaction";
  }

  // --- Databases ----------------------------------------------------------------------------

  std::string default_socket_dir() {
    const auto* dir = global("unix_socket_dir");
    return dir && !dir->value.empty() ? dir->value : std::string("/tmp");
  }

  // libpq keyword/value quoting: single quotes, with \' and \\ inside.
  static std::string connstr_value(std::string_view value) {
    const bool plain = !value.empty() && value.find_first_of(" '\\\t") == std::string_view::npos;
    if (plain) return std::string(value);
    std::string out = "'";
    for (const char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  }

  void emit_databases() {
    out_.blank();
    out_.line(0, "databases:");
    std::map<std::string, const ini_entry*> last;  // later lines win, as in PgBouncer
    std::vector<std::string> order;
    for (const auto* e : databases_) {
      const std::string name = unquote_identifier(e->key);
      if (last.contains(name)) {
        out_.comment(1, fmt::format("! database {} at {} is defined again at {}; the last one "
                                    "counts",
                                    name, where_text(last[name]->where), where_text(e->where)));
      } else {
        order.push_back(name);
      }
      last[name] = e;
    }
    int written = 0;
    for (const auto& name : order) {
      if (emit_database(name, *last[name])) ++written;
    }
    if (written == 0) {
      out_.comment(1,
                   "! PgBouncer's [databases] has none that sluice can serve, and sluice "
                   "needs at least one.");
      out_.comment(1,
                   "! This placeholder is where PgBouncer connects for a database line "
                   "without settings (the Unix");
      out_.comment(1, "! socket in unix_socket_dir, port 5432): edit it.");
      out_.line(1, "postgres:");
      out_.line(2, "url: " + yaml_string("host=" + connstr_value(default_socket_dir()) +
                                         " dbname=postgres"));
    }
  }

  // Writes one database; false when it was left out (and said why).
  bool emit_database(const std::string& name, const ini_entry& entry) {
    const std::string at = where_text(entry.where);
    if (name == "*") {
      out_.comment(1, fmt::format("! * ({}): sluice has no fallback database for names it does "
                                  "not list; list each database",
                                  at));
      return false;
    }
    const auto parsed = parse_connstr(entry.value);
    if (!parsed.problem.empty()) {
      out_.comment(1, fmt::format("! {} ({}): its connection string could not be read ({}); "
                                  "left out",
                                  name, at, parsed.problem));
      return false;
    }
    std::vector<std::string> notes;
    std::vector<std::pair<std::string, std::string>> url;  // keyword, value
    std::vector<std::pair<std::string, mapped_value>> pool;
    std::string options;
    std::string host;
    for (const auto& p : parsed.params) {
      const std::string shown = is_secret_key(p.key) ? "(hidden)" : p.value;
      if (p.key == "dbname" || p.key == "port" || p.key == "user" || p.key == "application_name") {
        url.emplace_back(p.key, p.value);
      } else if (p.key == "host") {
        const auto hosts = split_list(p.value);
        host = hosts.empty() ? std::string() : hosts.front();
        if (hosts.size() > 1) {
          notes.push_back(
              fmt::format("host={}: sluice connects to one host, the first; "
                          "PgBouncer goes round the list",
                          p.value));
        }
        if (host.starts_with('@')) {
          out_.comment(1, fmt::format("! {} ({}): host={} is an abstract Unix socket, which "
                                      "sluice cannot reach; left out",
                                      name, at, p.value));
          return false;
        }
      } else if (p.key == "password") {
        const std::string variable = "SLUICE_DB_" + env_name_part(name) + "_PASSWORD";
        add_variable(variable, fmt::format("password= of database {} ({})", name, at));
        url.emplace_back("password", "'${" + variable + "}'");
      } else if (p.key == "client_encoding" || p.key == "datestyle" || p.key == "timezone") {
        // Sent at startup as PgBouncer does; sluice's url takes them through `options`.
        std::string escaped;
        for (const char c : p.value) {
          if (c == ' ' || c == '\\') escaped += '\\';
          escaped += c;
        }
        if (!options.empty()) options += ' ';
        options += fmt::format("-c {}={}", p.key, escaped);
      } else if (p.key == "pool_size") {
        pool.emplace_back("size", local_count(p, "pool.size", at));
      } else if (p.key == "min_pool_size") {
        pool.emplace_back("min_size", local_count(p, "pool.min_size", at));
      } else if (p.key == "reserve_pool_size" || p.key == "reserve_pool") {
        pool.emplace_back("overflow", local_count(p, "pool.overflow", at));
      } else if (p.key == "pool_mode") {
        mapped_value v;
        v.yaml = pool_mode_word(lower(p.value), v.notes);
        pool.emplace_back("mode", std::move(v));
      } else if (p.key == "query_wait_timeout") {
        pool.emplace_back("timeout", local_duration(p, at, false));
      } else if (p.key == "server_lifetime") {
        pool.emplace_back("recycle", local_duration(p, at, false));
      } else if (p.key == "connect_query") {
        notes.push_back(
            fmt::format("connect_query={}: sluice runs no query on new server "
                        "connections; for settings, the url's options "
                        "(-c name=value) do the same",
                        shown));
      } else if (p.key == "auth_user" || p.key == "auth_query" || p.key == "auth_dbname") {
        notes.push_back(
            fmt::format("{}={}: sluice cannot look passwords up on the server; "
                        "list every user under users",
                        p.key, shown));
      } else if (p.key == "load_balance_hosts") {
        notes.push_back(fmt::format("load_balance_hosts={}: sluice connects to one host", shown));
      } else if (p.key == "max_db_connections" || p.key == "max_db_client_connections") {
        notes.push_back(fmt::format("{}={}: {}", p.key, shown, unsupported_reason(p.key)));
      } else {
        notes.push_back(fmt::format("{}={}: sluice has no such database setting", p.key, shown));
      }
    }
    if (host.empty()) {
      host = default_socket_dir();
      notes.push_back(fmt::format("no host: PgBouncer's Unix socket directory, {}", host));
    }
    url.insert(url.begin(), {"host", host});
    if (!options.empty()) url.emplace_back("options", options);

    std::string url_text;
    for (const auto& [key, value] : url) {
      if (!url_text.empty()) url_text += ' ';
      // The password is our own ${...} reference; any other `${` is the value's own text.
      url_text += key + "=" + (key == "password" ? value : literal_dollars(connstr_value(value)));
    }
    if (name == "sluice") {
      notes.push_back("a database named sluice takes the place of sluice's admin console");
    }
    out_.line(1, fmt::format("{}:  # {}", yaml_string(name), at));
    for (const auto& n : notes) out_.comment(2, "! " + n);
    out_.line(2, "url: " + yaml_string(url_text, /*expand=*/true));
    if (!pool.empty()) {
      out_.line(2, "pool:");
      for (const auto& [key, v] : pool) emit_key(3, key, v);
    }
    return true;
  }

  mapped_value local_count(const connstr_param& p, std::string_view sluice_path,
                           std::string_view at) {
    mapped_value v;
    const auto n = parse_count(p.value);
    const auto* spec = find_key(sluice_path);
    if (!n) {
      v.notes.push_back(fmt::format("{}={} is not a whole number; left out", p.key, p.value));
      return v;
    }
    auto value = *n;
    if (spec && (value < spec->min || value > spec->max)) {
      value = std::clamp(value, spec->min, spec->max);
      v.notes.push_back(
          fmt::format("{}={} is outside sluice's range; {} is used", p.key, *n, value));
    }
    v.yaml = std::to_string(value);
    v.origin = p.key;
    return v;
  }

  mapped_value local_duration(const connstr_param& p, std::string_view at, bool zero_is_off) {
    mapped_value v;
    const auto d = parse_seconds(p.value);
    if (!d) {
      v.notes.push_back(fmt::format("{}={} is not a number of seconds; left out", p.key, p.value));
    } else if (d->count() == 0) {
      v.notes.push_back(fmt::format("{}=0 has no equivalent in sluice; left out", p.key));
    } else {
      v.yaml = format_duration(*d);
      v.origin = p.key;
    }
    return v;
  }

  // --- Users --------------------------------------------------------------------------------

  struct user_out {
    std::string name;
    std::string password_yaml;  // as written
    std::string password_text;  // what sluice will read (a variable counts as plain)
    std::vector<std::string> notes;
    std::string origin;
  };

  void add_variable(const std::string& name, std::string purpose) {
    for (const auto& v : variables_) {
      if (v.name == name) return;
    }
    variables_.push_back({name, std::move(purpose)});
  }

  void add_env_user(const std::string& name, std::string why, std::vector<std::string> notes,
                    std::string origin) {
    // Two names may differ only where the variable has `_` ("a-b", "a_b"): number the later.
    std::string variable = password_variable(name);
    const auto taken = [&](const std::string& v) {
      return std::any_of(variables_.begin(), variables_.end(),
                         [&](const auto& e) { return e.name == v; });
    };
    for (int n = 2; taken(variable); ++n)
      variable = password_variable(name) + "_" + std::to_string(n);
    add_variable(variable, fmt::format("password of user \"{}\" ({})", name, why));
    users_out_.push_back({name, yaml_string("${" + variable + "}", true), "plain-from-env",
                          std::move(notes), std::move(origin)});
  }

  bool has_user(std::string_view name) const {
    return std::any_of(users_out_.begin(), users_out_.end(),
                       [&](const auto& u) { return u.name == name; });
  }

  void prepare_users() {
    if (users_prepared_) return;
    users_prepared_ = true;
    const auto* auth_file = global("auth_file");
    if (users_) {
      std::map<std::string, std::size_t> index;
      for (const auto& u : users_->users) {
        const std::string at = where_text(u.where);
        std::vector<std::string> notes;
        if (const auto it = index.find(u.name); it != index.end()) {
          users_out_.erase(users_out_.begin() + static_cast<std::ptrdiff_t>(it->second));
          for (auto& [n, i] : index) {
            if (i > it->second) --i;
          }
          index.erase(it);
          notes.push_back("listed again; the last line counts");
        }
        const auto format = classify_password(u.secret);
        if (u.secret.empty()) {
          notes.push_back("an empty password in the auth file; sluice needs one");
          add_env_user(u.name, at, std::move(notes), at);
        } else if (format == password_format::plain) {
          add_env_user(u.name, at, std::move(notes), at);
        } else {
          // Hashes are not passwords: sluice checks clients against them as PostgreSQL does.
          if (format == password_format::md5 || format == password_format::scram_sha_256) {
            notes.push_back(
                "a hash checks clients, but sluice needs the password itself to log in to a "
                "server as this user: give the database a user= and password= in its url, or "
                "the plain password here");
          }
          users_out_.push_back({u.name, yaml_string(u.secret), u.secret, std::move(notes), at});
        }
        index[u.name] = users_out_.size() - 1;
      }
      return;
    }
    // No auth file: every user the ini names gets a password from the environment.
    const std::string why =
        auth_file
            ? fmt::format("auth_file {} was not read: pass it with --userlist", auth_file->value)
            : std::string("no auth_file");
    for (const auto* key : {"admin_users", "stats_users"}) {
      if (const auto* g = global(key)) {
        for (const auto& name : split_list(g->value)) {
          if (!has_user(name))
            add_env_user(name, why, {}, fmt::format("{} ({})", key, where_text(g->where)));
        }
      }
    }
    for (const auto* e : user_settings_) {
      if (!has_user(e->key)) add_env_user(e->key, why, {}, "[users] " + where_text(e->where));
    }
  }

  void emit_users() {
    prepare_users();
    out_.blank();
    if (users_out_.empty()) {
      out_.comment(0,
                   "! No users: sluice needs at least one. Pass PgBouncer's auth_file with "
                   "--userlist, or list them here.");
      out_.line(0, "users: []");
      return;
    }
    out_.line(0, "users:");
    // [users] settings, by user name: PgBouncer's per-user pool settings.
    std::map<std::string, std::vector<const ini_entry*>> per_user;
    for (const auto* e : user_settings_) per_user[e->key].push_back(e);
    for (const auto& u : users_out_) {
      out_.line(1, fmt::format("- name: {}  # {}", yaml_string(u.name), u.origin));
      for (const auto& n : u.notes) out_.comment(2, "! " + n);
      if (const auto it = per_user.find(u.name); it != per_user.end()) {
        for (const auto* e : it->second) user_settings_note(*e, 2);
        per_user.erase(it);
      }
      out_.line(2, "password: " + u.password_yaml);
    }
    for (const auto& [name, entries] : per_user) {
      out_.comment(1, fmt::format("! [users] {} is not in the auth file, so sluice has no such "
                                  "user:",
                                  name));
      for (const auto* e : entries) user_settings_note(*e, 1);
    }
  }

  void user_settings_note(const ini_entry& e, int indent) {
    out_.comment(indent, fmt::format("! [users] {} = {} ({}): sluice has no per-user settings; "
                                     "set pool keys per database instead",
                                     e.key, e.value, where_text(e.where)));
  }

  void emit_console_lists() {
    for (const auto* key : {"admin_users", "stats_users"}) {
      const auto* g = global(key);
      if (!g) continue;
      std::vector<std::string> kept;
      out_.blank();
      for (const auto& name : split_list(g->value)) {
        if (has_user(name)) {
          kept.push_back(yaml_string(name));
        } else {
          out_.comment(0, fmt::format("! {}: {} is not in the auth file, so it could not log "
                                      "in; left out",
                                      key, name));
        }
      }
      if (std::string_view(key) == "admin_users") {
        out_.comment(0,
                     "The admin console is the database \"sluice\" (PgBouncer's is "
                     "\"pgbouncer\").");
      }
      out_.line(0, fmt::format("{}: [{}]  # {}", key, fmt::join(kept, ", "), where_text(g->where)));
    }
  }

  void emit_sections_not_converted() {
    for (const auto* section : other_sections_) {
      out_.blank();
      out_.comment(0, fmt::format("! [{}]: {}", section->name,
                                  section->name == "peers"
                                      ? "sluice has no peering (cancels across processes) yet"
                                      : "not a PgBouncer section sluice knows of"));
      for (const auto& e : section->entries) {
        out_.comment(0, fmt::format("!   {} = {} ({})", e.key,
                                    is_secret_key(lower(e.key)) ? "(hidden)" : e.value,
                                    where_text(e.where)));
      }
    }
  }

  void emit_globals_not_converted() {
    std::vector<std::string> lines;
    for (const auto& [key, g] : globals_) {
      if (used_.contains(key)) continue;
      const std::string value = is_secret_key(key) ? "(hidden)" : g.value;
      std::string_view why = unsupported_reason(key);
      if (key == "auth_file") why = "read with --userlist (this run had none)";
      if (key == "unix_socket_dir") why = "sluice does not listen on a Unix-domain socket";
      if (why.empty()) why = "not a PgBouncer setting sluice knows of";
      // TLS set to "disable" is what sluice does anyway.
      if ((key == "client_tls_sslmode" || key == "server_tls_sslmode") && value == "disable") {
        why = "sluice speaks plain text, as this asks";
      }
      lines.push_back(fmt::format("! {} = {} ({}): {}", key, value, where_text(g.where), why));
    }
    if (lines.empty()) {
      finish_variables();
      return;
    }
    out_.blank();
    out_.comment(0, "[pgbouncer] settings sluice does not have:");
    for (const auto& l : lines) out_.comment(0, l);
    finish_variables();
  }

  // The variables go at the top, where a reader sees them first.
  void finish_variables() {
    if (variables_.empty()) return;
    std::string block =
        "#\n# Passwords are not copied. Set these environment variables "
        "(for the package's unit, in\n# /etc/sluice/sluice.env, mode 0600):\n";
    for (const auto& v : variables_) block += fmt::format("#   {}  {}\n", v.name, v.purpose);
    out_.text.insert(variables_at_, block);
  }

  const ini_file& ini_;
  std::string_view ini_name_;
  const userlist* users_;
  yaml_out out_;
  std::vector<env_variable> variables_;
  std::size_t variables_at_ = 0;

  std::map<std::string, global_setting> globals_;
  std::set<std::string> used_;
  std::vector<std::string> overridden_;
  std::vector<const ini_entry*> databases_;
  std::vector<const ini_entry*> user_settings_;
  std::vector<const ini_section*> other_sections_;
  std::vector<user_out> users_out_;
  bool users_prepared_ = false;
};

}  // namespace

std::string password_variable(std::string_view user) {
  return "SLUICE_PASSWORD_" + env_name_part(user);
}

import_result import_pgbouncer(const ini_file& ini, std::string_view ini_name,
                               const userlist* users) {
  return converter(ini, ini_name, users).run();
}

}  // namespace sluice::config::pgbouncer
