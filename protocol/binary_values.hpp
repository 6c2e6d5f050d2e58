#pragma once
// Values in PostgreSQL's binary format, for a result column a client asked for in binary (a Bind's
// result format code 1), as pgx does for integers: text stays its bytes, int4 and int8 are
// big-endian, numeric is base-10000 digits with a weight, sign and scale.
// https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-FORMAT-CODES and
// PostgreSQL's numeric_send() (src/backend/utils/adt/numeric.c).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::protocol {

namespace type_oid {
inline constexpr std::uint32_t int8 = 20;
inline constexpr std::uint32_t int4 = 23;
inline constexpr std::uint32_t text = 25;
inline constexpr std::uint32_t numeric = 1700;
}  // namespace type_oid

// The binary form of `text` (a value as the text format writes it) for the type; nullopt when the
// type has no binary form here or the text is not a value of it (numeric: only whole numbers).
std::optional<std::string> binary_value(std::uint32_t type, std::string_view text);

}  // namespace sluice::protocol
