#pragma once
// listen.tls.protocols: which TLS versions sluice accepts, as a list of names.
#include <optional>
#include <string_view>

namespace sluice::config {

// TLS versions by their wire numbers (RFC 8446 section 4.1.2: 0x0303 is TLS 1.2), which are
// also OpenSSL's TLS1_2_VERSION and friends. A closed range: OpenSSL sets a minimum and a
// maximum, nothing in between can be left out.
struct tls_version_range {
  int min = 0;
  int max = 0;
  bool operator==(const tls_version_range&) const = default;
};

// "TLSv1.2,TLSv1.3" (any order, spaces around names allowed) -> {0x0303, 0x0304}. nullopt for
// an empty list, an unknown name (TLSv1 and TLSv1.1 are known), or a hole in the range.
std::optional<tls_version_range> parse_tls_protocols(std::string_view list);

}  // namespace sluice::config
