#include "proxy/config/validate.hpp"

#include <fmt/format.h>

#include "proxy/config/tls_protocols.hpp"

namespace sluice::config {
namespace {

// Whether the file set `path` but its value could not be read.
bool unreadable(const source_map& where, std::string_view path) {
  const auto it = where.find(path);
  return it != where.end() && !it->second.valid;
}

class error_sink {
 public:
  error_sink(const source_map& where, std::string_view file) : where_(where), file_(file) {}

  // Reports at the first of `paths` the file sets (falling back to the start of the file).
  void add(std::string key, std::initializer_list<std::string_view> paths, std::string problem) {
    source_position at;
    for (const auto path : paths) {
      if (const auto it = where_.find(path); it != where_.end()) {
        at = it->second;
        break;
      }
    }
    errors_.push_back({std::string(file_), at.line, at.column, std::move(key), std::move(problem)});
  }

  std::vector<config_error> take() { return std::move(errors_); }

 private:
  const source_map& where_;
  std::string_view file_;
  std::vector<config_error> errors_;
};

void check_pool_sizes(const settings& config, const source_map& where, error_sink& errors) {
  const auto& pool = config.pool;
  const bool global_unreadable =
      unreadable(where, "pool.min_size") || unreadable(where, "pool.size");
  if (pool.min_size > pool.size && !global_unreadable) {
    errors.add("pool.min_size", {"pool.min_size"},
               fmt::format("min_size ({}) is larger than size ({})", pool.min_size, pool.size));
  }
  for (const auto& db : config.databases) {
    // Inherited values that are wrong were reported once at `pool`; report here only what
    // this database's own overrides make wrong.
    const std::string prefix = "databases." + db.name + ".pool.";
    const std::string min_path = prefix + "min_size";
    const std::string size_path = prefix + "size";
    const bool overridden = where.contains(min_path) || where.contains(size_path);
    if (db.pool.min_size > db.pool.size && overridden && !global_unreadable &&
        !unreadable(where, min_path) && !unreadable(where, size_path)) {
      errors.add(
          min_path, {min_path, size_path},
          fmt::format("min_size ({}) is larger than size ({})", db.pool.min_size, db.pool.size));
    }
  }
}

std::string_view format_name(password_format format) {
  switch (format) {
    case password_format::plain:
      return "a plain password";
    case password_format::md5:
      return "an md5 hash";
    case password_format::scram_sha_256:
      return "a SCRAM-SHA-256 verifier";
  }
  return "a password";
}

std::string_view auth_name(auth_method method) {
  switch (method) {
    case auth_method::scram_sha_256:
      return "scram-sha-256";
    case auth_method::md5:
      return "md5";
    case auth_method::plain:
      return "plain";
  }
  return "?";
}

void check_users(const settings& config, const source_map& where, error_sink& errors) {
  for (std::size_t i = 0; i < config.users.size(); ++i) {
    const auto& user = config.users[i];
    const std::string item = fmt::format("users[{}]", i);
    for (std::size_t j = 0; j < i; ++j) {
      if (config.users[j].name == user.name && !user.name.empty()) {
        const auto first = where.find(fmt::format("users[{}].name", j));
        errors.add(item + ".name", {item + ".name", item},
                   first == where.end()
                       ? fmt::format("duplicate user name \"{}\" (also users[{}])", user.name, j)
                       : fmt::format("duplicate user name \"{}\" (also users[{}], line {})",
                                     user.name, j, first->second.line));
        break;
      }
    }
    if (user.password.empty()) continue;  // reported when it was read
    const auto format = classify_password(user.password);
    const std::string password_path = item + ".password";
    if (format == password_format::plain && user.password.starts_with("SCRAM-SHA-256$")) {
      errors.add(password_path, {password_path, item},
                 "starts with \"SCRAM-SHA-256$\" but is not a valid verifier "
                 "(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)");
    } else if (!can_authenticate(config.auth, format) && !unreadable(where, "auth")) {
      errors.add(password_path, {password_path, item},
                 fmt::format("is {}, which cannot check `auth: {}` logins; store the plain "
                             "password or change auth",
                             format_name(format), auth_name(config.auth)));
    }
  }
}

// A listed name must be a configured user: only those can log in, so any other name could
// never use the console and is most likely a typo. (PgBouncer does not check, because its
// users may also come from auth_query or a unix-socket peer; sluice has only `users`.)
void check_console_users(const settings& config, const source_map& where, error_sink& errors) {
  for (std::size_t i = 0; i < config.users.size(); ++i) {
    // A user whose name could not be read might be the one listed: judge nothing.
    if (unreadable(where, fmt::format("users[{}].name", i))) return;
  }
  for (const auto& [key, names] : {std::pair<std::string_view, const std::vector<std::string>&>{
                                       "admin_users", config.admin_users},
                                   {"stats_users", config.stats_users}}) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (config.find_user(names[i]) != nullptr) continue;
      const std::string path = fmt::format("{}[{}]", key, i);
      errors.add(path, {path, key},
                 fmt::format("\"{}\" is not one of users, so it could never log in to the "
                             "admin console",
                             names[i]));
    }
  }
}

// What OpenSSL would refuse at startup anyway, said with the key's position: a mode that
// needs a certificate without one, verify without CAs, an unknown protocol list.
void check_client_tls(const settings& config, const source_map& where, error_sink& errors) {
  const auto& tls = config.listen.tls;
  if (unreadable(where, "listen.tls.mode")) return;
  const bool enabled = tls.effective_mode() != client_tls_mode::disable;
  if (enabled && tls.cert_file.empty() && !unreadable(where, "listen.tls.cert_file")) {
    errors.add("listen.tls.cert_file", {"listen.tls.mode", "listen.tls"},
               "missing: mode allow and require need a certificate");
  }
  if (!tls.cert_file.empty() && tls.key_file.empty() && !unreadable(where, "listen.tls.key_file")) {
    errors.add("listen.tls.key_file", {"listen.tls.cert_file", "listen.tls"},
               "missing: cert_file needs its private key");
  }
  if (tls.verify != client_cert_verify::none && tls.ca_file.empty() &&
      !unreadable(where, "listen.tls.ca_file")) {
    errors.add("listen.tls.ca_file", {"listen.tls.verify", "listen.tls"},
               "missing: verify needs the CAs that sign client certificates");
  }
  if (!unreadable(where, "listen.tls.protocols") && !parse_tls_protocols(tls.protocols)) {
    errors.add("listen.tls.protocols", {"listen.tls.protocols"},
               fmt::format("\"{}\" is not a list of TLS versions without holes (TLSv1, "
                           "TLSv1.1, TLSv1.2, TLSv1.3, comma-separated)",
                           tls.protocols));
  }
}

}  // namespace

std::vector<config_error> validate_settings(const settings& config, const source_map& where,
                                            std::string_view file_name) {
  error_sink errors(where, file_name);
  check_pool_sizes(config, where, errors);
  check_users(config, where, errors);
  check_console_users(config, where, errors);
  check_client_tls(config, where, errors);
  return errors.take();
}

}  // namespace sluice::config
