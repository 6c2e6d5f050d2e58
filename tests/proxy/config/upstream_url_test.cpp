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
      {"postgresql:///other", upstream("/var/run/postgresql", 5432, "other")},
      // a unix socket directory, in both spellings
      {"postgresql:///d?host=/var/run/postgresql", upstream("/var/run/postgresql", 5432, "d")},
      {"postgresql://%2Ftmp%2Fpg/d", upstream("/tmp/pg", 5432, "d")},
      {"postgresql://[::1]:5444/d", upstream("::1", 5444, "d")},
      {"postgresql://u:pw@h/d?sslmode=disable&options=-c%20search_path%3Dapp",
       upstream("h", 5432, "d", "u", "pw", "disable", "-c search_path=app")},
      {"host=h port=5999 dbname=d user=u password='it\\'s secret' sslmode=prefer",
       upstream("h", 5999, "d", "u", "it's secret", "prefer")},
      // allow and prefer fall back to plain text when TLS is unavailable, as libpq does
      {"postgresql://h/d?sslmode=allow", upstream("h", 5432, "d", {}, {}, "allow")},
      {"host=/run/pg", upstream("/run/pg", 5432, "mydb")},
      {"dbname=x options='-c statement_timeout=5s'",
       upstream("/var/run/postgresql", 5432, "x", {}, {}, {}, "-c statement_timeout=5s")},
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
      {"postgresql://u:hunter2@h/d?krbsrvname=x",
       "connection option \"krbsrvname\" is not supported here: it is for GSSAPI "
       "authentication, which sluice does not support"},
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

TEST_CASE("url: settings that ask for TLS are errors until sluice speaks TLS to servers",
          "[config][url]") {
  // Connecting in plain text instead would be a silent downgrade.
  const auto [url, problem] = GENERATE(table<std::string, std::string>({
      {"postgresql://u:hunter2@h/d?sslmode=require",
       "sslmode=require asks for TLS, which sluice does not support on server connections yet; "
       "use sslmode=disable (allow and prefer are accepted too: they connect in plain text, as "
       "libpq does when TLS is unavailable)"},
      {"host=h password=hunter2 sslmode=verify-ca",
       "sslmode=verify-ca asks for TLS, which sluice does not support on server connections "
       "yet; use sslmode=disable (allow and prefer are accepted too: they connect in plain "
       "text, as libpq does when TLS is unavailable)"},
      {"postgresql://u:hunter2@h/d?sslmode=verify-full",
       "sslmode=verify-full asks for TLS, which sluice does not support on server connections "
       "yet; use sslmode=disable (allow and prefer are accepted too: they connect in plain "
       "text, as libpq does when TLS is unavailable)"},
      {"postgresql://u:hunter2@h/d?sslmode=disable&sslcert=/x",
       "connection option \"sslcert\" configures TLS, which sluice does not support on server "
       "connections yet"},
      {"postgresql://u:hunter2@h/d?sslkey=/x",
       "connection option \"sslkey\" configures TLS, which sluice does not support on server "
       "connections yet"},
      {"host=h password=hunter2 sslrootcert=/x",
       "connection option \"sslrootcert\" configures TLS, which sluice does not support on "
       "server connections yet"},
      {"host=h password=hunter2 sslcrl=/x",
       "connection option \"sslcrl\" configures TLS, which sluice does not support on server "
       "connections yet"},
      {"host=h password=hunter2 sslcrldir=/x",
       "connection option \"sslcrldir\" configures TLS, which sluice does not support on server "
       "connections yet"},
      {"host=h password=hunter2 sslpassword=hunter2",
       "connection option \"sslpassword\" configures TLS, which sluice does not support on "
       "server connections yet"},
      {"host=h password=hunter2 ssl_min_protocol_version=TLSv1.3",
       "connection option \"ssl_min_protocol_version\" configures TLS, which sluice does not "
       "support on server connections yet"},
      {"postgresql://u:hunter2@h/d?channel_binding=require",
       "channel_binding=require needs TLS, which sluice does not support on server connections "
       "yet; use channel_binding=disable or prefer"},
      {"postgresql://u:hunter2@h/d?gssencmode=require",
       "gssencmode=require asks for GSSAPI encryption, which sluice does not support; use "
       "gssencmode=disable (prefer is accepted too: it connects in plain text, as libpq does "
       "when GSSAPI is unavailable)"},
      // libpq reads the old requiressl=1 as sslmode=require
      {"host=h password=hunter2 requiressl=1",
       "sslmode=require asks for TLS, which sluice does not support on server connections yet; "
       "use sslmode=disable (allow and prefer are accepted too: they connect in plain text, as "
       "libpq does when TLS is unavailable)"},
      {"postgresql://u:hunter2@h/d?channel_binding=hunter2",
       "channel_binding must be one of disable, prefer, require"},
      {"postgresql://u:hunter2@h/d?gssencmode=hunter2",
       "gssencmode must be one of disable, prefer, require"},
  }));
  CAPTURE(url);
  const auto parsed = parse_upstream_url(url, "mydb");
  CHECK_FALSE(parsed.value);
  CHECK(parsed.problem == problem);
  CHECK(parsed.problem.find("hunter2") == std::string::npos);
}

TEST_CASE("url: libpq settings sluice cannot honour are errors that say what to do instead",
          "[config][url]") {
  const auto [url, problem] = GENERATE(table<std::string, std::string>({
      {"postgresql://u:hunter2@h/d?connect_timeout=3",
       "connection option \"connect_timeout\" is not supported here: set pool.connect_timeout "
       "(for one database: databases.<name>.pool.connect_timeout)"},
      {"host=h password=hunter2 hostaddr=10.0.0.1",
       "connection option \"hostaddr\" is not supported here: put the address in host (sluice "
       "resolves host itself)"},
      {"host=h passfile=/x",
       "connection option \"passfile\" is not supported here: sluice reads no password file; "
       "give the password in the url, or leave it out to log in with the client's own plain "
       "password from users"},
      {"service=hunter2",
       "connection option \"service\" is not supported here: sluice reads no service file; "
       "write the service's settings in the url"},
      {"host=h keepalives=0",
       "connection option \"keepalives\" is not supported here: sluice does not configure TCP "
       "keepalives on server connections (pool.pre_ping checks idle servers)"},
      {"host=h keepalives_idle=5",
       "connection option \"keepalives_idle\" is not supported here: sluice does not configure "
       "TCP keepalives on server connections (pool.pre_ping checks idle servers)"},
      {"host=h tcp_user_timeout=5",
       "connection option \"tcp_user_timeout\" is not supported here: sluice does not configure "
       "TCP keepalives on server connections (pool.pre_ping checks idle servers)"},
      {"host=h client_encoding=LATIN1",
       "connection option \"client_encoding\" is not supported here: each client chooses its "
       "own client_encoding, and sluice sets it on the server for that client"},
      {"host=h replication=database",
       "connection option \"replication\" is not supported here: sluice does not proxy "
       "replication connections"},
      {"host=h gsslib=gssapi",
       "connection option \"gsslib\" is not supported here: it is for GSSAPI authentication, "
       "which sluice does not support"},
      {"host=h requirepeer=postgres",
       "connection option \"requirepeer\" is not supported here: sluice does not check a unix "
       "socket's peer"},
      {"host=h target_session_attrs=read-write",
       "target_session_attrs=read-write is not supported: sluice connects to exactly one host "
       "and does not check whether it is a primary or a standby"},
      {"host=h target_session_attrs=hunter2",
       "target_session_attrs must be one of any, read-write, read-only, primary, standby, "
       "prefer-standby"},
      {"host=h load_balance_hosts=random",
       "invalid connection string: invalid connection option \"load_balance_hosts\" "
       "(sluice connects to exactly one host)"},
      {"postgresql://h/d?load_balance_hosts=random",
       "invalid connection string: invalid URI query parameter: \"load_balance_hosts\" "
       "(sluice connects to exactly one host)"},
  }));
  CAPTURE(url);
  const auto parsed = parse_upstream_url(url, "mydb");
  CHECK_FALSE(parsed.value);
  CHECK(parsed.problem == problem);
  CHECK(parsed.problem.find("hunter2") == std::string::npos);
}

TEST_CASE("url: libpq settings that are honoured", "[config][url]") {
  SECTION("application_name is sent at startup; fallback_application_name when it is absent") {
    const auto named = parse_upstream_url(
        "postgresql://h/d?application_name=pool&"
        "fallback_application_name=other",
        "mydb");
    REQUIRE(named.value);
    CHECK(named.value->application_name == "pool");
    const auto fallback = parse_upstream_url("host=h fallback_application_name=other", "mydb");
    REQUIRE(fallback.value);
    CHECK(fallback.value->application_name == "other");
    const auto none = parse_upstream_url("host=h", "mydb");
    REQUIRE(none.value);
    CHECK(none.value->application_name.empty());
  }
  SECTION("settings that ask for nothing sluice lacks") {
    for (const auto* url :
         {"host=h gssencmode=disable", "host=h gssencmode=prefer", "host=h channel_binding=disable",
          "host=h channel_binding=prefer", "host=h target_session_attrs=any",
          "host=h sslmode=disable", "host=h requiressl=0"}) {
      CAPTURE(url);
      const auto parsed = parse_upstream_url(url, "mydb");
      INFO(parsed.problem);
      CHECK(parsed.value);
    }
  }
}
