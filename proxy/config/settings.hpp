#pragma once
// The configuration as plain structs. Every field has its default in-class, so a
// default-constructed `settings` is exactly what an empty config would give (apart from
// `databases` and `users`, which a config must list). Nothing here parses or validates:
// proxy/config/loader.hpp turns YAML into these, and proxy/config/key_table.cpp holds the
// one table of keys, types, defaults and docs.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

using duration = std::chrono::milliseconds;

// How long a client keeps the server connection it was given.
enum class pool_mode {
  session,      // from login until the client disconnects
  transaction,  // until the end of each transaction (ReadyForQuery with status 'I')
};

// One pool's sizing and timing. The top-level `pool` holds the defaults; each database's
// copy is those defaults with the database's own `pool:` overrides applied.
struct pool_settings {
  pool_mode mode = pool_mode::transaction;
  std::uint32_t size = 20;     // server connections kept for clients
  std::uint32_t min_size = 0;  // connections opened ahead of demand
  std::uint32_t overflow = 0;  // extra connections allowed past `size` under pressure
  duration overflow_after = std::chrono::seconds{5};  // client wait before overflow opens
  duration timeout = std::chrono::seconds{30};        // client wait for a server, then error
  // Close servers older than this once released; nullopt = never ("off" or 0).
  std::optional<duration> recycle = std::chrono::hours{1};
  // Close servers idle this long, down to min_size; nullopt = never ("off" or 0).
  std::optional<duration> idle_timeout = std::chrono::minutes{10};
  // Ping a server idle longer than this before handing it out; 0 = always, nullopt = never.
  std::optional<duration> pre_ping = std::chrono::seconds{30};
  std::uint32_t prepared_statements = 500;  // per-server prepared statement cache; 0 = off
  // Client-side limits; nullopt (the default, "off" or 0) = none.
  std::optional<duration> client_idle_timeout;       // idle outside a transaction
  std::optional<duration> idle_transaction_timeout;  // idle inside a transaction
  std::optional<duration> query_timeout;             // one query running (then cancelled)
  // Transaction mode: how long a client keeps its server for a lastval() after an autocommit
  // statement that may have advanced a sequence; nullopt = never.
  std::optional<duration> lastval_window = std::chrono::milliseconds{100};
  duration connect_timeout = std::chrono::seconds{5};  // TCP/unix connect to a server
  duration login_timeout = std::chrono::seconds{10};   // server startup and authentication

  bool operator==(const pool_settings&) const = default;
};

// Where a database lives, from its `url` (a libpq URI or keyword/value string). `host` may
// be a unix socket directory (it starts with '/'). Empty strings mean "not given": an empty
// `user` means the daemon logs in as the client's user name.
struct upstream_settings {
  // libpq's default without a host: the Unix-domain socket directory Debian's libpq uses.
  std::string host = "/var/run/postgresql";
  std::uint16_t port = 5432;
  std::string dbname;  // defaults to the database's name in the config
  std::string user;
  std::string password;
  // disable | allow | prefer, or empty: all connect in plain text (sluice has no TLS to
  // servers yet, and the url parser refuses the modes that need it).
  std::string sslmode;
  std::string options;           // libpq `options`: command-line options sent at startup
  std::string application_name;  // sent at startup when set (or fallback_application_name)

  bool operator==(const upstream_settings&) const = default;
};

struct database_settings {
  std::string name;  // the database name clients ask for
  upstream_settings server;
  pool_settings pool;  // the global pool with this database's overrides applied

  bool operator==(const database_settings&) const = default;
};

// How a user's stored `password` is written; see classify_password().
enum class password_format {
  plain,          // the password itself
  md5,            // "md5" + 32 hex digits: md5(password + user name), as in pg_authid
  scram_sha_256,  // "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
};

struct user_settings {
  std::string name;
  std::string password;  // plain, a SCRAM-SHA-256 verifier or an md5 hash

  bool operator==(const user_settings&) const = default;
};

// The authentication sluice asks clients for.
enum class auth_method {
  scram_sha_256,  // SASL SCRAM-SHA-256; needs a plain password or a SCRAM verifier
  md5,            // MD5 challenge; needs a plain password or an md5 hash
  plain,          // cleartext password; works with any stored format
};

// What a client's connection must be (listen.tls.mode), as PgBouncer's client_tls_sslmode.
enum class client_tls_mode {
  disable,  // SSLRequest is answered 'N'; direct TLS is refused
  allow,    // TLS when the client asks for it, plain text otherwise
  require,  // a client that does not ask for TLS gets 28000 and is closed
};

// Which client certificates a TLS client must show (listen.tls.verify), as PostgreSQL's
// clientcert option.
enum class client_cert_verify {
  none,         // no certificate asked for
  verify_ca,    // a certificate signed by ca_file
  verify_full,  // that, and its CN is the user name the client logs in as
};

// TLS towards clients (listen.tls). Files are read at startup.
struct client_tls_settings {
  // Unset: allow when cert_file is given, else disable (see effective_mode()).
  std::optional<client_tls_mode> mode;
  std::string cert_file;  // PEM, the server certificate (chain) clients see
  std::string key_file;   // PEM, its private key
  std::string ca_file;    // PEM, CAs that sign client certificates
  client_cert_verify verify = client_cert_verify::none;
  std::string protocols = "TLSv1.2,TLSv1.3";         // comma-separated (config/tls_protocols.hpp)
  std::string ciphers = "HIGH:MEDIUM:+3DES:!aNULL";  // TLS 1.2 and below: PostgreSQL's default
  std::string tls13_ciphers;                         // TLS 1.3 suites; empty = OpenSSL's default
  duration handshake_timeout = std::chrono::seconds{10};

  client_tls_mode effective_mode() const {
    if (mode) return *mode;
    return cert_file.empty() ? client_tls_mode::disable : client_tls_mode::allow;
  }
  bool operator==(const client_tls_settings&) const = default;
};

struct listen_settings {
  std::string host = "127.0.0.1";  // address to bind; "0.0.0.0" or "::" for all
  std::uint16_t port = 6432;
  std::uint16_t metrics_port = 0;  // Prometheus metrics over HTTP on `host`; 0 = off
  client_tls_settings tls;

  bool operator==(const listen_settings&) const = default;
};

struct settings {
  listen_settings listen;
  std::uint32_t workers = 0;  // worker threads; 0 = half the cores, at least 1 (worker_count)
  std::uint32_t max_clients = 10000;
  auth_method auth = auth_method::scram_sha_256;
  std::uint32_t max_message_size = 64 * 1024 * 1024;  // cap on one buffered message, in bytes
  duration client_login_timeout = std::chrono::seconds{15};
  std::string log_level = "info";  // trace | debug | info | warn | error
  // Who may use the admin console (database "sluice"), as PgBouncer's keys of the same names:
  // admin_users every command, stats_users read-only SHOW. Anyone else is refused (42501)
  // after authenticating. Each name must be one of `users`.
  std::vector<std::string> admin_users;
  std::vector<std::string> stats_users;
  pool_settings pool;
  std::vector<database_settings> databases;
  std::vector<user_settings> users;

  // nullptr when absent. Names are compared exactly, as PostgreSQL does.
  const database_settings* find_database(std::string_view name) const;
  const user_settings* find_user(std::string_view name) const;

  bool operator==(const settings&) const = default;
};

// Tells how a stored password is written, the way PostgreSQL reads pg_authid: "md5" plus 32
// hex digits is an md5 hash, a well-formed "SCRAM-SHA-256$..." is a verifier, and anything
// else is the password itself.
password_format classify_password(std::string_view stored);

// Whether clients asked for `method` can be checked against a password stored as `format`.
bool can_authenticate(auth_method method, password_format format);

}  // namespace sluice::config
