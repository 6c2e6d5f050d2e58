#pragma once
// The configuration reference, generated from the key table (proxy/config/key_table.hpp), so
// the documents cannot drift from what the loader accepts: `sluice config-reference` prints
// the Markdown (docs/configuration.md is a copy that a test compares), and
// `sluice config-reference --man` the sluice.yaml(5) man page the package installs.
//
// Both renderings come from one list of blocks (the prose around the keys, then one entry per
// key), so they say the same things. Pure functions: no I/O.

#include <string>
#include <string_view>

namespace sluice::config {

// Markdown: a title, how values are written, then every key with its type, default, range,
// whether a reload may change it, and its documentation.
std::string config_reference_markdown();

// The same as a troff man page, sluice.yaml(5), for `man`. `version` goes in its footer.
std::string config_reference_man(std::string_view version);

}  // namespace sluice::config
