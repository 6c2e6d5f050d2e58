#pragma once
// A database's `url`: a libpq connection URI ("postgresql://user:pw@host:5432/db?sslmode=...")
// or keyword/value string ("host=... dbname=..."), parsed by libpq's own PQconninfoParse so
// that sluice reads it exactly as psql would.

#include <string_view>

#include "proxy/config/scalars.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::config {

// Parses `url` into where the database lives. An empty dbname becomes `database_name`; an
// empty host or port keeps upstream_settings' defaults. Only host, port, dbname, user,
// password, sslmode and options are accepted: any other libpq option is an error rather than
// silently ignored. Problems never contain the url or any part of it other than option
// names, because the url usually holds a password.
scalar_result<upstream_settings> parse_upstream_url(std::string_view url,
                                                    std::string_view database_name);

}  // namespace sluice::config
