#pragma once
// A database's `url`: a libpq connection URI ("postgresql://user:pw@host:5432/db?sslmode=...")
// or keyword/value string ("host=... dbname=..."), parsed by libpq's own PQconninfoParse so
// that sluice reads it exactly as psql would.

#include <string_view>

#include "proxy/config/scalars.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::config {

// Parses `url` into where the database lives. An empty dbname becomes `database_name`; an
// empty host or port keeps upstream_settings' defaults. No libpq setting is accepted and then
// ignored: sluice reads host, port, dbname, user, password, options, application_name and
// fallback_application_name; accepts sslmode, gssencmode, channel_binding and
// target_session_attrs only with values it honours as libpq would (sslmode disable, allow or
// prefer: plain text, as a libpq without TLS connects); and refuses every other setting,
// saying why and what to use instead. Until sluice speaks TLS to servers, anything that asks
// for TLS (sslmode require/verify-ca/verify-full, sslcert, sslrootcert, channel_binding=require,
// ...) is an error, never a silent downgrade to plain text. Problems never contain the url or
// any part of it other than option names and libpq's own words, because the url usually holds
// a password.
scalar_result<upstream_settings> parse_upstream_url(std::string_view url,
                                                    std::string_view database_name);

}  // namespace sluice::config
