"""What sluice logs: one line for each client accepted, logged in and gone, and
for each server connection opened and closed; never a password, whatever the
auth method or log level.

EVENTS below is the log vocabulary the tests hold the daemon to: one line per
event, case-insensitive, e.g.
  client#7 127.0.0.1:51234 accepted       client#7 login ok user=app db=postgres
  client#7 gone (eof)                     (also: disconnected, closed)
  server#3 opened to 127.0.0.1:5432       (also: open, connected)
  server#3 closed (shutdown)              (also: close, disconnected)
A login line that says it failed does not count as a login.
"""

import re
import urllib.parse

import harness
from harness import ProxyTestCase

EVENTS = {
    "client accept": re.compile(r"\bclient.*\baccept(ed)?\b", re.I),
    "client login": re.compile(r"\bclient.*\b(login|logged in)\b", re.I),
    "client gone": re.compile(r"\bclient.*\b(gone|disconnected|closed)\b", re.I),
    "server open": re.compile(r"\bserver.*\b(open(ed)?|connected)\b", re.I),
    "server close": re.compile(r"\bserver.*\b(close[ds]?|disconnected)\b", re.I),
}
FAILURE_WORDS = re.compile(r"\b(fail\w*|denied|error|invalid|reject\w*)\b", re.I)


def count_events(log: str) -> dict[str, int]:
    counts = dict.fromkeys(EVENTS, 0)
    for line in log.splitlines():
        for name, pattern in EVENTS.items():
            if pattern.search(line):
                if name == "client login" and FAILURE_WORDS.search(line):
                    continue  # a failed login is not a login
                counts[name] += 1
    return counts


class LoggingTest(ProxyTestCase):
    def secrets_in(self, log: str, secrets: list[str]) -> list[str]:
        found = []
        for secret in secrets:
            for form in {secret, urllib.parse.quote(secret, safe="")}:
                if form in log:
                    found.append(form)
        return found

    def all_secrets(self, *extra: str) -> list[str]:
        return [self.client_password, self.upstream_password,
                self.pg.superuser_password, *extra]

    def test_lifecycle_lines(self):
        sluice = self.launch_sluice(log_level="debug")
        sessions = 3
        for i in range(sessions):
            r = self.client_psql(sluice, f"SELECT {i}")
            self.assertEqual(r.stdout.strip(), str(i))
        conn = sluice.connect(self.client_user, self.client_password)
        conn.query("SELECT 1")
        conn.abort()  # one client that vanishes without a Terminate
        logins = sessions + 1

        # Every accepted client (the harness's readiness probe included) must be
        # logged as gone; wait for that before shutting down, so the counts
        # below do not depend on how fast sluice notices the reset.
        def all_gone():
            counts = count_events(sluice.log_text())
            return counts["client gone"] >= counts["client accept"] >= logins
        try:
            harness.wait_until(all_gone, timeout=5, what="a client-gone line per client")
        except TimeoutError:
            pass  # the assertions below say what is missing
        sluice.stop()  # every server connection closes at shutdown at the latest
        log = sluice.log_text()
        counts = count_events(log)
        harness.log(f"log event counts: {counts}")
        self.assertGreaterEqual(counts["client accept"], logins, log)
        self.assertGreaterEqual(counts["client login"], logins, log)
        self.assertGreaterEqual(counts["client gone"], counts["client accept"], log)
        self.assertGreaterEqual(counts["server open"], 1, log)
        self.assertGreaterEqual(counts["server close"], counts["server open"], log)
        self.assertEqual(self.secrets_in(log, self.all_secrets()), [])

    def test_sigterm_exits_0(self):
        # A daemon stopped by its service manager exits cleanly and on its own
        # (stop() sends SIGTERM and only SIGKILLs after 10 s).
        sluice = self.launch_sluice()
        self.client_psql(sluice, "SELECT 1")
        self.assertEqual(sluice.stop(timeout=10), 0, sluice.log_tail())

    def test_no_passwords_in_log(self):
        # Every auth method, successful and failed logins, debug level: the
        # cleartext method puts the password itself on the wire to sluice.
        wrong = harness.random_password("wrong")
        for method in ("scram-sha-256", "md5", "plain"):
            with self.subTest(auth=method):
                sluice = self.launch_sluice(auth=method, log_level="debug")
                self.client_psql(sluice, "SELECT 1")
                r = self.client_psql(sluice, "SELECT 1", password=wrong, check=False)
                self.assertEqual(r.returncode, 2)
                r = self.client_psql(sluice, "SELECT 1", user="nobody", check=False)
                self.assertEqual(r.returncode, 2)
                sluice.stop()
                log = sluice.log_text()
                self.assertTrue(log.strip(), "sluice logged nothing at debug level")
                self.assertEqual(self.secrets_in(log, self.all_secrets(wrong)), [], log)


if __name__ == "__main__":
    harness.main()
