#include "protocol/tls_negotiation.hpp"

#include <algorithm>

namespace sluice::protocol {

alpn_selection choose_alpn(std::span<const unsigned char> client_list) {
  alpn_selection out;
  if (client_list.empty()) return out;  // an empty list is malformed (RFC 7301 section 3.1)
  bool found = false;
  while (!client_list.empty()) {
    const std::size_t length = client_list[0];
    // Empty names are not allowed either.
    if (length == 0 || length + 1 > client_list.size()) return {};
    const auto name = client_list.subspan(1, length);
    if (!found &&
        std::equal(name.begin(), name.end(), postgresql_alpn.begin(), postgresql_alpn.end())) {
      out.protocol = name;
      found = true;
    }
    client_list = client_list.subspan(length + 1);
  }
  out.choice = found ? alpn_choice::selected : alpn_choice::no_overlap;
  return out;
}

bool alpn_acceptable(tls_entry entry, std::optional<std::string_view> negotiated) {
  if (negotiated) return *negotiated == postgresql_alpn;
  return entry == tls_entry::ssl_request;
}

}  // namespace sluice::protocol
