#include "proxy/config/settings.hpp"

#include <algorithm>
#include <cctype>

namespace sluice::config {
namespace {

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

bool is_base64_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/';
}

// Length in bytes of what `text` decodes to, or nullopt when it is not padded base64.
std::optional<std::size_t> base64_decoded_size(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && text[text.size() - 1 - padding] == '=') ++padding;
  const auto body = text.substr(0, text.size() - padding);
  if (!std::all_of(body.begin(), body.end(), is_base64_char)) return std::nullopt;
  return text.size() / 4 * 3 - padding;
}

// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", as PostgreSQL's
// parse_scram_secret() accepts it: both keys are SHA-256 sized.
bool is_scram_verifier(std::string_view text) {
  constexpr std::string_view prefix = "SCRAM-SHA-256$";
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  const auto dollar = text.find('$');
  if (dollar == std::string_view::npos) return false;
  const auto params = text.substr(0, dollar);
  const auto keys = text.substr(dollar + 1);

  const auto colon = params.find(':');
  if (colon == std::string_view::npos) return false;
  const auto iterations = params.substr(0, colon);
  if (iterations.empty() || iterations.size() > 9 ||
      !std::all_of(iterations.begin(), iterations.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(std::string(iterations)) == 0) {
    return false;
  }
  if (!base64_decoded_size(params.substr(colon + 1))) return false;

  const auto key_colon = keys.find(':');
  if (key_colon == std::string_view::npos) return false;
  return base64_decoded_size(keys.substr(0, key_colon)) == 32 &&
         base64_decoded_size(keys.substr(key_colon + 1)) == 32;
}

template <class T>
const T* find_named(const std::vector<T>& items, std::string_view name) {
  const auto it =
      std::find_if(items.begin(), items.end(), [&](const T& item) { return item.name == name; });
  return it == items.end() ? nullptr : &*it;
}

}  // namespace

const database_settings* settings::find_database(std::string_view name) const {
  return find_named(databases, name);
}

const user_settings* settings::find_user(std::string_view name) const {
  return find_named(users, name);
}

password_format classify_password(std::string_view stored) {
  if (stored.size() == 35 && stored.starts_with("md5") &&
      std::all_of(stored.begin() + 3, stored.end(), is_hex)) {
    return password_format::md5;
  }
  if (is_scram_verifier(stored)) return password_format::scram_sha_256;
  return password_format::plain;
}

bool can_authenticate(auth_method method, password_format format) {
  switch (method) {
    case auth_method::scram_sha_256:
      return format != password_format::md5;
    case auth_method::md5:
      return format != password_format::scram_sha_256;
    case auth_method::plain:
      return true;
  }
  return false;
}

}  // namespace sluice::config
