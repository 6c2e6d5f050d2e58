#include "proxy/config/tls_protocols.hpp"

#include <array>
#include <utility>

namespace sluice::config {
namespace {

constexpr std::array<std::pair<std::string_view, int>, 4> versions{{
    {"TLSv1", 0x0301},
    {"TLSv1.1", 0x0302},
    {"TLSv1.2", 0x0303},
    {"TLSv1.3", 0x0304},
}};

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<tls_version_range> parse_tls_protocols(std::string_view list) {
  std::array<bool, versions.size()> named{};
  bool any = false;
  while (true) {
    const auto comma = list.find(',');
    const auto name = trimmed(list.substr(0, comma));
    bool known = false;
    for (std::size_t i = 0; i < versions.size(); ++i) {
      if (versions[i].first == name) {
        named[i] = true;
        known = true;
      }
    }
    if (!known) return std::nullopt;
    any = true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (!any) return std::nullopt;
  std::size_t first = 0;
  while (!named[first]) ++first;
  std::size_t last = versions.size() - 1;
  while (!named[last]) --last;
  for (std::size_t i = first; i <= last; ++i)
    if (!named[i]) return std::nullopt;
  return tls_version_range{versions[first].second, versions[last].second};
}

}  // namespace sluice::config
