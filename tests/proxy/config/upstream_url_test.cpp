#include "proxy/config/upstream_url.hpp"

#include <catch2/catch.hpp>

#include "config_test_support.hpp"

using namespace sluice::config;

using sluice::config::testing::upstream;

TEST_CASE("url: libpq URIs and keyword/value strings", "[config][url]") {
  const auto [url, expected] = GENERATE(table<std::string, upstream_settings>({
      {"postgresql://app:secret@10.0.0.5:5433/appdb",
       upstream("10.0.0.5", 5433, "appdb", "app", "secret")},
      {"postgres://app@db.internal/appdb", upstream("db.internal", 5432, "appdb", "app")},
      // percent-encoded password: '@', ':', '/', '%' and a space
      {"postgresql://app:p%40ss%3Aw%2Fo%25rd%20x@h/d",
       upstream("h", 5432, "d", "app", "p@ss:w/o%rd x")},
      // no dbname: the database's own name
      {"postgresql://h", upstream("h", 5432, "mydb")},
      {"postgresql://h:6000", upstream("h", 6000, "mydb")},
      // no host at all keeps the default
      {"postgresql:///other", upstream("127.0.0.1", 5432, "other")},
      // a unix socket directory, in both spellings
      {"postgresql:///d?host=/var/run/postgresql", upstream("/var/run/postgresql", 5432, "d")},
      {"postgresql://%2Ftmp%2Fpg/d", upstream("/tmp/pg", 5432, "d")},
      {"postgresql://[::1]:5444/d", upstream("::1", 5444, "d")},
      {"postgresql://u:pw@h/d?sslmode=verify-full&options=-c%20search_path%3Dapp",
       upstream("h", 5432, "d", "u", "pw", "verify-full", "-c search_path=app")},
      {"host=h port=5999 dbname=d user=u password='it\\'s secret' sslmode=require",
       upstream("h", 5999, "d", "u", "it's secret", "require")},
      {"host=/run/pg", upstream("/run/pg", 5432, "mydb")},
      {"dbname=x options='-c statement_timeout=5s'",
       upstream("127.0.0.1", 5432, "x", {}, {}, {}, "-c statement_timeout=5s")},
  }));
  CAPTURE(url);
  const auto parsed = parse_upstream_url(url, "mydb");
  INFO(parsed.problem);
  REQUIRE(parsed.value);
  CHECK(*parsed.value == expected);
}

TEST_CASE("url: problems are reported without any part of the url", "[config][url]") {
  // Every url carries the password "hunter2"; no message may contain it.
  const auto [url, problem] = GENERATE(table<std::string, std::string>({
      {"", "must not be empty"},
      {"host=h password=hunter2 bogus=1",
       "invalid connection string: invalid connection option \"bogus\""},
      {"postgresql://u:hunter2@h/d?bogus=1",
       "invalid connection string: invalid URI query parameter: \"bogus\""},
      {"postgresql://u:hunter2%zz@h/d",
       "invalid connection string: invalid percent-encoded token: \"...\""},
      {"postgresql://u:hunter2%00@h/d",
       "invalid connection string: forbidden value %00 in percent-encoded value: \"...\""},
      {"postgresql://u:hunter2@[::1/d",
       "invalid connection string: end of string reached when looking for matching \"...\" in "
       "IPv6 host address in URI: \"...\""},
      {"host=h password hunter2",
       "invalid connection string: missing \"...\" after \"...\" in connection info string"},
      {"host=h password='hunter2",
       "invalid connection string: unterminated quoted string in connection info string"},
      {"postgresql://u:hunter2@h/d?hunter2",
       "invalid connection string: missing key/value separator \"...\" in URI query parameter: "
       "\"...\""},
      {"postgresql://u:hunter2@h/d?sslcert=/x",
       "connection option \"sslcert\" is not supported here (use host, port, dbname, user, "
       "password, sslmode, options)"},
      {"host=h password=hunter2 application_name=x",
       "connection option \"application_name\" is not supported here (use host, port, dbname, "
       "user, password, sslmode, options)"},
      {"postgresql://u:hunter2@h1,h2/d", "lists several hosts; sluice connects to exactly one"},
      {"postgresql://u:hunter2@h:hunter2/d", "port must be a number from 1 to 65535"},
      {"postgresql://u:hunter2@h:0/d", "port must be a number from 1 to 65535"},
      {"postgresql://u:hunter2@h:65536/d", "port must be a number from 1 to 65535"},
      {"postgresql://u:hunter2@h/d?sslmode=hunter2",
       "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"},
  }));
  CAPTURE(url);
  const auto parsed = parse_upstream_url(url, "mydb");
  CHECK_FALSE(parsed.value);
  CHECK(parsed.problem == problem);
  CHECK(parsed.problem.find("hunter2") == std::string::npos);
}
