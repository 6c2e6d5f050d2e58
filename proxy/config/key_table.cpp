#include "proxy/config/key_table.hpp"

#include <array>
#include <type_traits>

#include <fmt/format.h>

#include "proxy/config/upstream_url.hpp"

namespace sluice::config {
namespace {

// --- Storing a parsed value into its field -------------------------------------------------

void assign(std::string& field, const parsed_value& value) {
  if (const auto* word = std::get_if<choice>(&value)) {
    field = word->word;
  } else {
    field = std::get<std::string>(value);
  }
}

template <class Int>
requires std::is_integral_v<Int>
void assign(Int& field, const parsed_value& value) {
  // parse_value() has already checked the row's [min, max], which fits the field.
  field = static_cast<Int>(std::get<std::uint64_t>(value));
}

template <class Enum>
requires std::is_enum_v<Enum>
void assign(Enum& field, const parsed_value& value) {
  field = static_cast<Enum>(std::get<choice>(value).value);
}

template <class Enum>
requires std::is_enum_v<Enum>
void assign(std::optional<Enum>& field, const parsed_value& value) {
  field = static_cast<Enum>(std::get<choice>(value).value);
}

void assign(duration& field, const parsed_value& value) {
  field = std::get<duration>(value);
}

void assign(std::optional<duration>& field, const parsed_value& value) {
  field = std::get<std::optional<duration>>(value);
}

void assign(upstream_settings& field, const parsed_value& value) {
  field = std::get<upstream_settings>(value);
}

void assign(std::vector<std::string>& field, const parsed_value& value) {
  field = std::get<std::vector<std::string>>(value);
}

template <auto Member>
struct member_of;
template <class Section, class Field, Field Section::*Member>
struct member_of<Member> {
  using section = Section;
};

// `put<&pool_settings::size>` is a store_fn<pool_settings> that writes `size`.
template <auto Member>
void put(typename member_of<Member>::section& section, const parsed_value& value) {
  assign(section.*Member, value);
}

// --- The table -----------------------------------------------------------------------------

constexpr std::array pool_modes{
    choice{"session", static_cast<int>(pool_mode::session)},
    choice{"transaction", static_cast<int>(pool_mode::transaction)},
};

constexpr std::array auth_methods{
    choice{"scram-sha-256", static_cast<int>(auth_method::scram_sha_256)},
    choice{"md5", static_cast<int>(auth_method::md5)},
    choice{"plain", static_cast<int>(auth_method::plain)},
};

constexpr std::array log_levels{
    choice{"trace", 0}, choice{"debug", 1}, choice{"info", 2},
    choice{"warn", 3},  choice{"error", 4},
};

constexpr std::array client_tls_modes{
    choice{"disable", static_cast<int>(client_tls_mode::disable)},
    choice{"allow", static_cast<int>(client_tls_mode::allow)},
    choice{"require", static_cast<int>(client_tls_mode::require)},
};

constexpr std::array client_cert_verifies{
    choice{"none", static_cast<int>(client_cert_verify::none)},
    choice{"verify-ca", static_cast<int>(client_cert_verify::verify_ca)},
    choice{"verify-full", static_cast<int>(client_cert_verify::verify_full)},
};

constexpr std::uint64_t max_pool_connections = 100'000;

// clang-format off
constexpr std::array keys{
  key_spec{.path = "listen", .type = value_type::section, .default_value = {}, .reloadable = false,
           .doc = "Where clients connect."},
  key_spec{.path = "listen.host", .type = value_type::string, .default_value = "127.0.0.1",
           .reloadable = false,
           .doc = "Address to bind: an IP address or host name; \"0.0.0.0\" or \"::\" for all.",
           .store = &put<&listen_settings::host>},
  key_spec{.path = "listen.port", .type = value_type::integer, .default_value = "6432",
           .reloadable = false, .doc = "TCP port to listen on.", .min = 1, .max = 65535,
           .store = &put<&listen_settings::port>},
  key_spec{.path = "listen.metrics_port", .type = value_type::integer, .default_value = "0",
           .reloadable = false,
           .doc = "TCP port for Prometheus metrics (GET /metrics) on listen.host; 0 = off.",
           .max = 65535, .store = &put<&listen_settings::metrics_port>},
  key_spec{.path = "listen.tls", .type = value_type::section, .default_value = {},
           .reloadable = false,
           .doc = "TLS towards clients (OpenSSL). Clients ask with sslmode=prefer/require/"
                  "verify-ca/verify-full, or connect with TLS at once (PostgreSQL 17's "
                  "sslnegotiation=direct, ALPN \"postgresql\" required as PostgreSQL does). Over "
                  "TLS, scram-sha-256 logins also offer SCRAM-SHA-256-PLUS "
                  "(tls-server-end-point channel binding), so channel_binding=require works."},
  key_spec{.path = "listen.tls.mode", .type = value_type::choice, .default_value = {},
           .reloadable = false,
           .doc = "disable: SSLRequest is answered 'N'. allow: TLS when the client asks. "
                  "require: a client that does not ask gets an error (28000) and is closed. "
                  "Default: allow when cert_file is set, else disable.",
           .optional = true, .choices = client_tls_modes, .store = &put<&client_tls_settings::mode>},
  key_spec{.path = "listen.tls.cert_file", .type = value_type::string, .default_value = {},
           .reloadable = false,
           .doc = "PEM file with the certificate (and chain) sluice shows clients; needed "
                  "unless mode is disable.",
           .optional = true, .store = &put<&client_tls_settings::cert_file>},
  key_spec{.path = "listen.tls.key_file", .type = value_type::string, .default_value = {},
           .reloadable = false, .doc = "PEM file with cert_file's private key.",
           .optional = true, .store = &put<&client_tls_settings::key_file>},
  key_spec{.path = "listen.tls.ca_file", .type = value_type::string, .default_value = {},
           .reloadable = false,
           .doc = "PEM file with the CAs that sign client certificates; needed by verify.",
           .optional = true, .store = &put<&client_tls_settings::ca_file>},
  key_spec{.path = "listen.tls.verify", .type = value_type::choice, .default_value = "none",
           .reloadable = false,
           .doc = "Client certificates, as PostgreSQL's clientcert: none; verify-ca: a TLS "
                  "client must show one signed by ca_file; verify-full: and its CN must be the "
                  "user it logs in as (else 28000). The password is still checked.",
           .choices = client_cert_verifies, .store = &put<&client_tls_settings::verify>},
  key_spec{.path = "listen.tls.protocols", .type = value_type::string,
           .default_value = "TLSv1.2,TLSv1.3", .reloadable = false,
           .doc = "TLS versions accepted, comma-separated, without holes: TLSv1, TLSv1.1, "
                  "TLSv1.2, TLSv1.3.",
           .store = &put<&client_tls_settings::protocols>},
  key_spec{.path = "listen.tls.ciphers", .type = value_type::string,
           .default_value = "HIGH:MEDIUM:+3DES:!aNULL", .reloadable = false,
           .doc = "OpenSSL cipher list for TLS 1.2 and older (PostgreSQL's ssl_ciphers default).",
           .store = &put<&client_tls_settings::ciphers>},
  key_spec{.path = "listen.tls.tls13_ciphers", .type = value_type::string,
           .default_value = {}, .reloadable = false,
           .doc = "OpenSSL TLS 1.3 cipher suites, colon-separated; unset = OpenSSL's default.",
           .optional = true, .store = &put<&client_tls_settings::tls13_ciphers>},
  key_spec{.path = "listen.tls.handshake_timeout", .type = value_type::duration,
           .default_value = "10s", .reloadable = false,
           .doc = "Time a client has to finish the TLS handshake (within client_login_timeout).",
           .zero = zero_rule::invalid, .store = &put<&client_tls_settings::handshake_timeout>},
  key_spec{.path = "workers", .type = value_type::integer, .default_value = "0",
           .reloadable = false, .doc = "Worker threads; 0 = half the CPU cores, at least 1.", .max = 1024,
           .store = &put<&settings::workers>},
  key_spec{.path = "max_clients", .type = value_type::integer, .default_value = "10000",
           .reloadable = true,
           .doc = "Client connections served at once; further clients are refused.",
           .min = 1, .max = 1'000'000, .store = &put<&settings::max_clients>},
  key_spec{.path = "auth", .type = value_type::choice, .default_value = "scram-sha-256",
           .reloadable = true,
           .doc = "How sluice authenticates clients. scram-sha-256 needs each password stored "
                  "plain or as a SCRAM verifier; md5 needs it plain or as an md5 hash.",
           .choices = auth_methods, .store = &put<&settings::auth>},
  key_spec{.path = "max_message_size", .type = value_type::byte_size, .default_value = "64MB",
           .reloadable = true,
           .doc = "Largest single client or server message sluice will buffer; a bigger one "
                  "ends the connection.",
           .min = 1024, .max = std::uint64_t{1} << 30, .store = &put<&settings::max_message_size>},
  key_spec{.path = "client_login_timeout", .type = value_type::duration, .default_value = "15s",
           .reloadable = true,
           .doc = "Time a client has to finish startup and authentication.",
           .zero = zero_rule::invalid, .store = &put<&settings::client_login_timeout>},
  key_spec{.path = "log_level", .type = value_type::choice, .default_value = "info",
           .reloadable = true, .doc = "Least severe log level written.", .choices = log_levels,
           .store = &put<&settings::log_level>},

  key_spec{.path = "admin_users", .type = value_type::name_list, .default_value = "[]",
           .reloadable = true,
           .doc = "Users who may use the admin console (database \"sluice\") for every command, "
                  "as PgBouncer's admin_users; each must be in users. Anyone not here or in "
                  "stats_users is refused (42501) after authenticating.",
           .store = &put<&settings::admin_users>},
  key_spec{.path = "stats_users", .type = value_type::name_list, .default_value = "[]",
           .reloadable = true,
           .doc = "Users who may use the admin console for read-only SHOW commands, as "
                  "PgBouncer's stats_users; each must be in users.",
           .store = &put<&settings::stats_users>},

  key_spec{.path = "pool", .type = value_type::section, .default_value = {}, .reloadable = true,
           .doc = "Defaults for every database's pool; a database may override any of them."},
  key_spec{.path = "pool.mode", .type = value_type::choice, .default_value = "transaction",
           .reloadable = false,
           .doc = "session: a client keeps its server until it disconnects. transaction: only "
                  "until its transaction ends.",
           .choices = pool_modes, .store = &put<&pool_settings::mode>},
  key_spec{.path = "pool.size", .type = value_type::integer, .default_value = "20",
           .reloadable = true, .doc = "Server connections the pool keeps for clients.",
           .min = 1, .max = max_pool_connections, .store = &put<&pool_settings::size>},
  key_spec{.path = "pool.min_size", .type = value_type::integer, .default_value = "0",
           .reloadable = true,
           .doc = "Server connections opened ahead of demand; at most `size`.",
           .max = max_pool_connections, .store = &put<&pool_settings::min_size>},
  key_spec{.path = "pool.overflow", .type = value_type::integer, .default_value = "0",
           .reloadable = true,
           .doc = "Extra server connections allowed past `size` while clients wait.",
           .max = max_pool_connections, .store = &put<&pool_settings::overflow>},
  key_spec{.path = "pool.overflow_after", .type = value_type::duration, .default_value = "5s",
           .reloadable = true,
           .doc = "How long a client waits for a server before overflow connections open.",
           .store = &put<&pool_settings::overflow_after>},
  key_spec{.path = "pool.timeout", .type = value_type::duration, .default_value = "30s",
           .reloadable = true,
           .doc = "How long a client waits for a server before it gets an error.",
           .zero = zero_rule::invalid, .store = &put<&pool_settings::timeout>},
  key_spec{.path = "pool.recycle", .type = value_type::optional_duration,
           .default_value = "1h", .reloadable = true,
           .doc = "Close server connections older than this once released; off or 0 = never.",
           .zero = zero_rule::off, .store = &put<&pool_settings::recycle>},
  key_spec{.path = "pool.idle_timeout", .type = value_type::optional_duration,
           .default_value = "10m", .reloadable = true,
           .doc = "Close server connections idle this long (down to min_size); off or 0 = never.",
           .zero = zero_rule::off, .store = &put<&pool_settings::idle_timeout>},
  key_spec{.path = "pool.pre_ping", .type = value_type::optional_duration,
           .default_value = "30s", .reloadable = true,
           .doc = "Check a server idle longer than this before handing it out; 0 = always, "
                  "off = never.",
           .zero = zero_rule::allowed, .store = &put<&pool_settings::pre_ping>},
  key_spec{.path = "pool.prepared_statements", .type = value_type::integer,
           .default_value = "500", .reloadable = true,
           .doc = "Prepared statements kept per server connection in transaction mode; 0 = off.",
           .max = 1'000'000, .store = &put<&pool_settings::prepared_statements>},
  key_spec{.path = "pool.client_idle_timeout", .type = value_type::optional_duration,
           .default_value = "off", .reloadable = true,
           .doc = "Disconnect a client idle this long outside a transaction; off or 0 = never.",
           .zero = zero_rule::off, .store = &put<&pool_settings::client_idle_timeout>},
  key_spec{.path = "pool.idle_transaction_timeout", .type = value_type::optional_duration,
           .default_value = "off", .reloadable = true,
           .doc = "Disconnect a client idle this long inside a transaction; off or 0 = never.",
           .zero = zero_rule::off, .store = &put<&pool_settings::idle_transaction_timeout>},
  key_spec{.path = "pool.query_timeout", .type = value_type::optional_duration,
           .default_value = "off", .reloadable = true,
           .doc = "Cancel a query running longer than this; off or 0 = never.",
           .zero = zero_rule::off, .store = &put<&pool_settings::query_timeout>},
  key_spec{.path = "pool.lastval_window", .type = value_type::optional_duration,
           .default_value = "100ms", .reloadable = true,
           .doc = "Transaction mode: after an autocommit statement that may advance a sequence "
                  "(INSERT without RETURNING, nextval()), the client keeps its server this long "
                  "for a lastval() or currval() that follows, unless clients are waiting for a "
                  "server; elsewhere those get 55000, never another client's value. off or 0 = "
                  "never keep it.",
           .zero = zero_rule::off, .store = &put<&pool_settings::lastval_window>},
  key_spec{.path = "pool.connect_timeout", .type = value_type::duration, .default_value = "5s",
           .reloadable = true, .doc = "Time allowed to connect to a server.",
           .zero = zero_rule::invalid, .store = &put<&pool_settings::connect_timeout>},
  key_spec{.path = "pool.login_timeout", .type = value_type::duration, .default_value = "10s",
           .reloadable = true,
           .doc = "Time allowed for a server's startup and authentication.",
           .zero = zero_rule::invalid, .store = &put<&pool_settings::login_timeout>},

  key_spec{.path = "databases", .type = value_type::database_map, .default_value = {},
           .reloadable = true,
           .doc = "The databases clients may ask for, by name; at least one.", .required = true},
  key_spec{.path = "databases.<name>", .type = value_type::section, .default_value = {},
           .reloadable = true, .doc = "One database; <name> is what clients ask for."},
  key_spec{.path = "databases.<name>.url", .type = value_type::url, .default_value = {},
           .reloadable = true,
           .doc = "Server to connect to: a libpq URI (postgresql://user:password@host:port/dbname"
                  "?application_name=...) or keyword/value string, with host, port, dbname, "
                  "user, password, options and application_name. dbname defaults to <name>; "
                  "without a user, sluice logs in as the client's user; without a host, it uses "
                  "the Unix-domain socket in /var/run/postgresql, as Debian's libpq does (a host "
                  "starting with / is such a directory). Plain text only for "
                  "now: sslmode may be disable, allow or prefer (which fall back to plain text "
                  "as libpq does without TLS); a setting that asks for TLS, or any other libpq "
                  "setting, is an error.",
           .required = true, .secret = true, .store = &put<&database_settings::server>},
  key_spec{.path = "databases.<name>.pool", .type = value_type::section, .default_value = {},
           .reloadable = true,
           .doc = "Any pool.* keys, overriding the top-level pool for this database."},

  key_spec{.path = "users", .type = value_type::user_list, .default_value = {},
           .reloadable = true, .doc = "The users clients log in as; at least one.",
           .required = true},
  key_spec{.path = "users[]", .type = value_type::section, .default_value = {},
           .reloadable = true, .doc = "One user."},
  key_spec{.path = "users[].name", .type = value_type::string, .default_value = {},
           .reloadable = true, .doc = "User name clients log in with; unique.", .required = true,
           .store = &put<&user_settings::name>},
  key_spec{.path = "users[].password", .type = value_type::string, .default_value = {},
           .reloadable = true,
           .doc = "The password itself, a SCRAM-SHA-256 verifier (\"SCRAM-SHA-256$...\") or an "
                  "md5 hash (\"md5\" + md5(password + name)), as in pg_authid.",
           .required = true, .secret = true, .store = &put<&user_settings::password>},
};
// clang-format on

std::string join_choices(std::span<const choice> choices, std::string_view separator) {
  std::string out;
  for (const auto& c : choices) {
    if (!out.empty()) out += separator;
    out += c.word;
  }
  return out;
}

std::string range_problem(const key_spec& spec, bool bytes) {
  const auto show = [&](std::uint64_t n) {
    return bytes ? format_byte_size(n) : std::to_string(n);
  };
  if (spec.max == std::numeric_limits<std::uint32_t>::max()) {
    return "must be at least " + show(spec.min);
  }
  return "must be from " + show(spec.min) + " to " + show(spec.max);
}

scalar_result<parsed_value> failure(std::string problem) {
  return scalar_result<parsed_value>::failure(std::move(problem));
}

scalar_result<parsed_value> parse_duration_value(const key_spec& spec, std::string_view text) {
  const bool optional = spec.type == value_type::optional_duration;
  if (text == "off") {
    if (optional) return {parsed_value{std::optional<duration>{}}, {}};
    return failure("cannot be off; expected a duration like 250ms, 30s, 5m, 1h");
  }
  auto parsed = parse_duration(text);
  if (!parsed.value) return failure(std::move(parsed.problem));
  if (parsed.value->count() == 0) {
    if (spec.zero == zero_rule::invalid) return failure("must be greater than 0");
    if (spec.zero == zero_rule::off) return {parsed_value{std::optional<duration>{}}, {}};
  }
  if (optional) return {parsed_value{std::optional<duration>{*parsed.value}}, {}};
  return {parsed_value{*parsed.value}, {}};
}

}  // namespace

std::span<const key_spec> key_table() {
  return keys;
}

const key_spec* find_key(std::string_view path) {
  for (const auto& spec : keys) {
    if (spec.path == path) return &spec;
  }
  return nullptr;
}

std::string_view key_name(const key_spec& spec) {
  const auto dot = spec.path.rfind('.');
  return dot == std::string_view::npos ? spec.path : spec.path.substr(dot + 1);
}

std::string_view key_parent(const key_spec& spec) {
  if (spec.path.ends_with("[]")) return spec.path.substr(0, spec.path.size() - 2);
  const auto dot = spec.path.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : spec.path.substr(0, dot);
}

bool is_element(const key_spec& spec) {
  return spec.path.ends_with("[]") || spec.path.ends_with(">");
}

std::string describe_type(const key_spec& spec) {
  switch (spec.type) {
    case value_type::section:
      return "mapping";
    case value_type::database_map:
      return "mapping of name -> database";
    case value_type::user_list:
      return "list of users";
    case value_type::string:
      return "string";
    case value_type::choice:
      return join_choices(spec.choices, " | ");
    case value_type::integer:
      return fmt::format("integer, {}..{}", spec.min, spec.max);
    case value_type::duration:
      return "duration";
    case value_type::optional_duration:
      return "duration | off";
    case value_type::byte_size:
      return fmt::format("size, {}..{}", format_byte_size(spec.min), format_byte_size(spec.max));
    case value_type::url:
      return "connection url";
    case value_type::name_list:
      return "list of user names";
  }
  return {};
}

scalar_result<parsed_value> parse_value(const key_spec& spec, std::string_view text,
                                        std::string_view database_name) {
  switch (spec.type) {
    case value_type::section:
    case value_type::database_map:
    case value_type::user_list:
      return failure("expected a mapping, not a single value");
    case value_type::string:
      if (text.empty()) return failure("must not be empty");
      return {parsed_value{std::string(text)}, {}};
    case value_type::name_list:  // one item
      if (text.empty()) return failure("a user name must not be empty");
      return {parsed_value{std::string(text)}, {}};
    case value_type::choice:
      for (const auto& c : spec.choices) {
        if (c.word == text) return {parsed_value{c}, {}};
      }
      return failure("expected one of " + join_choices(spec.choices, ", "));
    case value_type::integer: {
      auto parsed = parse_unsigned(text);
      if (!parsed.value) {
        return failure(parsed.problem == "is too large" ? range_problem(spec, false)
                                                        : std::move(parsed.problem));
      }
      if (*parsed.value < spec.min || *parsed.value > spec.max) {
        return failure(range_problem(spec, false));
      }
      return {parsed_value{*parsed.value}, {}};
    }
    case value_type::duration:
    case value_type::optional_duration:
      return parse_duration_value(spec, text);
    case value_type::byte_size: {
      auto parsed = parse_byte_size(text);
      if (!parsed.value) {
        return failure(parsed.problem == "is too large" ? range_problem(spec, true)
                                                        : std::move(parsed.problem));
      }
      if (*parsed.value < spec.min || *parsed.value > spec.max) {
        return failure(range_problem(spec, true));
      }
      return {parsed_value{*parsed.value}, {}};
    }
    case value_type::url: {
      auto parsed = parse_upstream_url(text, database_name);
      if (!parsed.value) return failure(std::move(parsed.problem));
      return {parsed_value{std::move(*parsed.value)}, {}};
    }
  }
  return failure("unsupported key type");
}

std::string describe_keys() {
  std::string out;
  for (const auto& spec : keys) {
    std::string facts = describe_type(spec);
    if (spec.required) {
      facts += ", required";
    } else if (!spec.default_value.empty()) {
      facts += fmt::format(", default {}", spec.default_value);
    }
    facts += spec.reloadable ? ", reloadable" : ", needs restart";
    out += fmt::format("{}  ({})\n    {}\n", spec.path, facts, spec.doc);
  }
  return out;
}

}  // namespace sluice::config
