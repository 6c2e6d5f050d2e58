#pragma once
// The tables the admin console's SHOW commands answer, as pure functions of one admin_snapshot.
// Column names, order and types are PgBouncer 1.25's (src/admin.c and src/stats.c of the
// snapshot in ../shared/anchors/), so pgbouncer_exporter and dashboards read sluice unchanged;
// tests/integration/test_console_columns.py compares them with a running PgBouncer 1.25.
//
// Columns sluice cannot fill honestly hold what PgBouncer holds for the same case: 0 for the
// cancel-request counts (sluice forwards a cancel at once and never queues it), "" for tls and
// load_balance_hosts, NULL for the per-user pool_size sluice has no key for.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/binary_values.hpp"
#include "proxy/admin_snapshot.hpp"

namespace sluice::proxy {

struct result_column {
  std::string_view name;
  std::uint32_t type = protocol::type_oid::text;  // text, int4, int8 or numeric, as PgBouncer's
};

struct result_table {
  std::vector<result_column> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // nullopt: NULL
};

// The table SHOW <what> answers (`what` upper case: "POOLS", "STATS_TOTALS"), or nullopt when
// there is no such table.
std::optional<result_table> show_table(std::string_view what, const admin_snapshot& snapshot);

// The names show_table knows, for SHOW HELP and the error that lists them.
std::vector<std::string_view> show_table_names();

// A system_clock microsecond count as PgBouncer writes a timestamp: "2026-12-03 16:02:24 UTC".
std::string timestamp_text(std::int64_t us);

}  // namespace sluice::proxy
