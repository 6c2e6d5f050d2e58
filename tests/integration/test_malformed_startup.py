"""Hostile or broken startup packets: sluice answers with an ErrorResponse or
closes the connection, promptly, and keeps serving everyone else."""

import os
import random
import socket
import struct
import unittest

import harness
import pgwire
from harness import HOST, ProxyTestCase, startup_exchange

ANSWER_DEADLINE = 5.0  # seconds sluice gets to answer or close


def check_rejection(test: unittest.TestCase, reply: bytes) -> dict:
    """The reply is nothing (closed) or a single FATAL ErrorResponse; never an
    authentication request or anything else. Returns the error fields."""
    if not reply:
        return {}
    test.assertEqual(reply[:1], b"E", f"unexpected reply {reply[:64]!r}")
    test.assertTrue(harness.complete_message(reply), f"truncated ErrorResponse {reply!r}")
    length = struct.unpack("!I", reply[1:5])[0]
    fields = pgwire.parse_error_fields(reply[5:1 + length])
    test.assertIn("C", fields, fields)
    test.assertEqual(fields.get("V") or fields.get("S"), "FATAL", fields)
    return fields


def random_payloads(seed: int, count: int = 25):
    rng = random.Random(seed)
    for _ in range(count):
        yield bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 512)))


def random_seed() -> int:
    seed = int(os.environ.get("SLUICE_TEST_SEED", "0")) or random.randrange(1, 2**31)
    harness.log(f"random startup packets with SLUICE_TEST_SEED={seed}")
    return seed


class MalformedStartupTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.launch_sluice()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def assert_rejected(self, payload: bytes, *, half_close: bool = False) -> dict:
        """The reply is nothing (closed) or a single ErrorResponse; never an
        authentication request or anything else. Returns the error fields."""
        try:
            reply = startup_exchange(self.sluice.port, payload, half_close=half_close,
                                     deadline=ANSWER_DEADLINE)
        except TimeoutError as exc:
            self.fail(f"sluice neither answered nor closed: {exc}")
        return check_rejection(self, reply)

    def test_random_bytes(self):
        seed = random_seed()
        for i, payload in enumerate(random_payloads(seed)):
            # No subTest: stop at the first bad answer (reproduce it with the seed).
            try:
                self.assert_rejected(payload, half_close=True)
            except AssertionError as exc:
                raise AssertionError(f"payload #{i} of SLUICE_TEST_SEED={seed}: {exc}") from None
        self.assert_serving(self.sluice)

    def test_oversized_length(self):
        # Announces a 100000-byte startup packet (PostgreSQL caps them at 10000)
        # and sends only the start: sluice must judge the header, not wait.
        payload = struct.pack("!II", 100000, pgwire.PROTOCOL_V3) + b"user\0app\0"
        self.assert_rejected(payload)
        self.assert_serving(self.sluice)

    def test_oversized_length_with_body(self):
        body = struct.pack("!I", pgwire.PROTOCOL_V3) + b"user\0app\0" + b"x" * 99981 + b"\0\0"
        self.assertEqual(len(body) + 4, 100000)
        self.assert_rejected(struct.pack("!I", 100000) + body)
        self.assert_serving(self.sluice)

    def test_length_too_short(self):
        for length in (0, 3, 4, 7):
            with self.subTest(length=length):
                self.assert_rejected(struct.pack("!I", length) + b"\0" * 8)
        self.assert_serving(self.sluice)

    def test_unsupported_protocol_version(self):
        packet = pgwire.startup_packet({"user": "app", "database": "postgres"},
                                       version=(9 << 16) | 9)
        fields = self.assert_rejected(packet)
        if fields:
            self.assertEqual(fields["C"], "0A000", fields)  # PostgreSQL's answer too
        self.assert_serving(self.sluice)

    def test_no_user_name(self):
        fields = self.assert_rejected(pgwire.startup_packet({"database": "postgres"}))
        if fields:
            self.assertEqual(fields["C"], "28000", fields)  # PostgreSQL's answer too
        self.assert_serving(self.sluice)

    def test_unterminated_parameters(self):
        body = struct.pack("!I", pgwire.PROTOCOL_V3) + b"user\0app"  # no terminators
        self.assert_rejected(struct.pack("!I", len(body) + 4) + body)
        self.assert_serving(self.sluice)

    def test_silent_clients_do_not_block_others(self):
        silent = [socket.create_connection((HOST, self.sluice.port), timeout=5)
                  for _ in range(8)]
        try:
            self.assert_serving(self.sluice)
        finally:
            for s in silent:
                s.close()


if __name__ == "__main__":
    harness.main()
