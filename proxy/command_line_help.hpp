#pragma once
// What `sluice --help` prints, and the short usage that goes with a command-line error. The key
// list comes from the key table (proxy/config/key_table.hpp), so it cannot drift from what the
// loader accepts.
#include <string>
#include <string_view>

namespace sluice::proxy {

// Usage, options and signals: printed with a command-line error.
std::string_view usage_text();

// usage_text() followed by every config key: its path, type, default, whether a reload may
// change it, and its one-line documentation.
std::string help_text();

}  // namespace sluice::proxy
