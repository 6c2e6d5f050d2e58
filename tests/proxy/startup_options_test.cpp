#include "proxy/startup_options.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

namespace sluice::proxy {
namespace {

using settings = std::vector<std::pair<std::string, std::string>>;

struct row {
  const char* options;
  settings expected;
};

TEST_CASE("startup_options: settings libpq and drivers send", "[proxy][startup_options]") {
  const auto r = GENERATE(values<row>({
      {"", {}},
      {"   ", {}},
      {"-c a=b", {{"a", "b"}}},
      {"-ca=b", {{"a", "b"}}},
      {"--a=b", {{"a", "b"}}},
      {"--a-b=c", {{"a_b", "c"}}},  // PostgreSQL reads dashes in a name as underscores
      {"-c statement-timeout=5s", {{"statement_timeout", "5s"}}},
      {"-cstatement-timeout=5s", {{"statement_timeout", "5s"}}},
      {"-c a=b-c", {{"a", "b-c"}}},  // only the name is rewritten
      {"-c a=", {{"a", ""}}},
      {"-c a=b=c", {{"a", "b=c"}}},
      {"-c search_path=a\\ b", {{"search_path", "a b"}}},
      {"-c search_path=a\\,\\ b", {{"search_path", "a, b"}}},
      {"-c x=a\\\\b", {{"x", "a\\b"}}},
      {"-c x=tail\\", {{"x", "tail\\"}}},  // a final backslash has nothing to escape
      {"-c application_name=my\\ app", {{"application_name", "my app"}}},
      {"  -c a=1\t-c  b=2\n--c=3  ", {{"a", "1"}, {"b", "2"}, {"c", "3"}}},
      {"-c geqo=off -c statement_timeout=5min --lock-timeout=1s",
       {{"geqo", "off"}, {"statement_timeout", "5min"}, {"lock_timeout", "1s"}}},
      {"-c a=1 -c a=2", {{"a", "1"}, {"a", "2"}}},  // in order: the last one wins when applied
  }));
  CAPTURE(r.options);
  const auto parsed = parse_startup_options(r.options);
  CHECK(parsed.unsupported.empty());
  CHECK(parsed.settings == r.expected);
}

TEST_CASE("startup_options: switches that are not settings are refused",
          "[proxy][startup_options]") {
  struct refused {
    const char* options;
    const char* unsupported;
    settings before;  // settings read before the refused switch
  };
  const auto r = GENERATE(values<refused>({
      {"-e", "-e", {}},
      {"-B 100", "-B", {}},
      {"-c", "-c", {}},  // no setting follows
      {"-c a=b -c", "-c", {{"a", "b"}}},
      {"-c noequals", "-c", {}},  // no value
      {"-cnoequals", "-cnoequals", {}},
      {"--noequals", "--noequals", {}},
      {"--=x", "--=x", {}},  // no name
      {"-c =x", "-c", {}},
      {"a=b", "a=b", {}},  // not a switch at all
      {"-c a=b stray", "stray", {{"a", "b"}}},
      {"-c a=1 -F -c b=2", "-F", {{"a", "1"}}},
  }));
  CAPTURE(r.options);
  const auto parsed = parse_startup_options(r.options);
  CHECK(parsed.unsupported == r.unsupported);
  CHECK(parsed.settings == r.before);
}

}  // namespace
}  // namespace sluice::proxy
