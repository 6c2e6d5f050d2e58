"""Signals a sysadmin sends: SIGHUP must not stop the daemon (live reload is not
implemented, so it says so in the log), and SIGTERM stops it cleanly."""

import os
import signal
import time

import harness
from harness import ProxyTestCase, wait_until


class SignalTest(ProxyTestCase):
    def test_sighup_keeps_serving_and_says_why(self):
        sluice = self.launch_sluice(pool_mode="transaction")
        try:
            self.assertEqual(self.client_psql(sluice, "SELECT 1").stdout.strip(), "1")
            os.kill(sluice.proc.pid, signal.SIGHUP)
            wait_until(lambda: "SIGHUP received" in sluice.log_text(), timeout=5,
                       what="the SIGHUP log line")
            time.sleep(0.2)
            self.assertIsNone(sluice.proc.poll(), "SIGHUP stopped the daemon")
            self.assertEqual(self.client_psql(sluice, "SELECT 2").stdout.strip(), "2")
        finally:
            sluice.stop()

    def test_sigterm_stops_cleanly(self):
        sluice = self.launch_sluice(pool_mode="transaction")
        self.assertEqual(self.client_psql(sluice, "SELECT 1").stdout.strip(), "1")
        os.kill(sluice.proc.pid, signal.SIGTERM)
        wait_until(lambda: sluice.proc.poll() is not None, timeout=10, what="sluice to exit")
        self.assertEqual(sluice.proc.returncode, 0)
        self.assertIn("sluice stopped", sluice.log_text())


if __name__ == "__main__":
    harness.main()
