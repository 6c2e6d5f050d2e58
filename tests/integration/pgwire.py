"""A minimal PostgreSQL v3 wire-protocol client, standard library only.

The integration tests use it where a real driver hides what they need to see:
which authentication request the proxy sent, every field of an ErrorResponse
(libpq reports no SQLSTATE for a failed connection), and closing a socket
abruptly in the middle of a transaction. Everything else goes through real
clients (psql, pgbench, drivers).

Protocol reference: https://www.postgresql.org/docs/15/protocol-flow.html and
https://www.postgresql.org/docs/15/protocol-message-formats.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTOCOL_V3 = 196608  # 3.0
SSL_REQUEST_CODE = 80877103
CANCEL_REQUEST_CODE = 80877102

# Authentication request codes ('R' messages).
AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12

AUTH_NAMES = {
    AUTH_OK: "ok",
    AUTH_CLEARTEXT: "cleartext",
    AUTH_MD5: "md5",
    AUTH_SASL: "sasl",
    AUTH_SASL_CONTINUE: "sasl-continue",
    AUTH_SASL_FINAL: "sasl-final",
}


class ProtocolError(Exception):
    """The peer sent something this client cannot make sense of, or closed."""


class ServerError(Exception):
    """An ErrorResponse. `fields` maps the one-letter field codes to values."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        self.severity = fields.get("V") or fields.get("S")
        self.sqlstate = fields.get("C")
        self.message = fields.get("M")
        super().__init__(f"{self.severity} {self.sqlstate}: {self.message}")


def parse_error_fields(body: bytes) -> dict[str, str]:
    """Decodes the body of an ErrorResponse or NoticeResponse."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        code = chr(body[pos])
        end = body.index(b"\0", pos + 1)
        fields[code] = body[pos + 1 : end].decode("utf-8", "replace")
        pos = end + 1
    return fields


def startup_packet(params: dict[str, str], version: int = PROTOCOL_V3) -> bytes:
    body = struct.pack("!I", version)
    for key, value in params.items():
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def md5_password_hash(user: str, password: str) -> str:
    """The form PostgreSQL stores for password_encryption=md5: 'md5' + md5(password || user)."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def md5_response(user: str, password: str, salt: bytes) -> str:
    """The PasswordMessage answer to AuthenticationMD5Password."""
    inner = md5_password_hash(user, password)[3:]
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    # SASLprep is the identity for the ASCII passwords the tests use.
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The verifier PostgreSQL stores for password_encryption=scram-sha-256:
    SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (RFC 5803 form)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = scram_salted_password(password, salt, iterations)
    stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    server_key = _hmac(salted, b"Server Key")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class Connection:
    """One frontend connection. Every blocking step is bounded by `timeout` seconds.

    After connect(): `auth_requests` lists the authentication request codes the
    server sent, in order (e.g. [AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL,
    AUTH_OK]), `parameters` holds the ParameterStatus values and `backend_key`
    the BackendKeyData (pid, secret) if one was sent. `md5_salt` is the salt of an
    AuthenticationMD5Password and `scram_server_first` the attributes of the SCRAM
    server-first-message ({"r": nonce, "s": base64 salt, "i": iterations}), when sent;
    they stay set when the login fails, for tests that compare exchanges.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str | None = None,
        database: str | None = None,
        *,
        timeout: float = 10.0,
        params: dict[str, str] | None = None,
        ssl_request: bool = False,
    ):
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.database = database or user
        self.timeout = timeout
        self.extra_params = dict(params or {})
        self.ssl_request = ssl_request
        self.sock: socket.socket | None = None
        self.auth_requests: list[int] = []
        self.sasl_mechanisms: list[str] = []
        self.md5_salt: bytes | None = None
        self.scram_server_first: dict[str, str] | None = None
        self.parameters: dict[str, str] = {}
        self.backend_key: tuple[int, int] | None = None
        self.notices: list[dict[str, str]] = []
        self.transaction_status: str | None = None
        self._buf = b""
        self._deadline = 0.0

    # -- framing -------------------------------------------------------------

    def _arm(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    def _recv_some(self) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete reply within {self.timeout}s")
        assert self.sock is not None
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no complete reply within {self.timeout}s") from None
        if not chunk:
            raise ProtocolError("connection closed by peer")
        return chunk

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._recv_some()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def read_message(self) -> tuple[str, bytes]:
        header = self._recv_exact(5)
        kind = chr(header[0])
        (length,) = struct.unpack("!I", header[1:])
        if length < 4 or length > 64 * 1024 * 1024:
            raise ProtocolError(f"bad message length {length} for {kind!r}")
        return kind, self._recv_exact(length - 4)

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send(self, kind: str, body: bytes = b"") -> None:
        self.send_raw(kind.encode() + struct.pack("!I", len(body) + 4) + body)

    # -- connection setup ----------------------------------------------------

    def connect(self) -> "Connection":
        self._arm()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.ssl_request:
                self.send_raw(struct.pack("!II", 8, SSL_REQUEST_CODE))
                answer = self._recv_exact(1)
                if answer != b"N":
                    raise ProtocolError(f"SSLRequest answered {answer!r}; this client speaks no TLS")
            params = {"user": self.user, "database": self.database, **self.extra_params}
            self.send_raw(startup_packet(params))
            self._authenticate()
            self._read_until_ready()
        except BaseException:
            self.close_without_terminate()
            raise
        return self

    def _authenticate(self) -> None:
        scram = None
        while True:
            kind, body = self.read_message()
            if kind == "E":
                raise ServerError(parse_error_fields(body))
            if kind == "N":
                self.notices.append(parse_error_fields(body))
                continue
            if kind != "R":
                raise ProtocolError(f"expected an authentication request, got {kind!r}")
            (code,) = struct.unpack("!I", body[:4])
            self.auth_requests.append(code)
            if code == AUTH_OK:
                return
            if code == AUTH_CLEARTEXT:
                self._send_password(self._need_password())
            elif code == AUTH_MD5:
                self.md5_salt = body[4:8]
                self._send_password(md5_response(self.user, self._need_password(), body[4:8]))
            elif code == AUTH_SASL:
                self.sasl_mechanisms = [m.decode() for m in body[4:].split(b"\0") if m]
                if "SCRAM-SHA-256" not in self.sasl_mechanisms:
                    raise ProtocolError(f"no supported SASL mechanism in {self.sasl_mechanisms}")
                scram = _ScramClient(self._need_password())
                first = scram.client_first()
                self.send(
                    "p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
                )
            elif code == AUTH_SASL_CONTINUE:
                if scram is None:
                    raise ProtocolError("SASLContinue before SASL")
                self.scram_server_first = scram_attributes(body[4:])
                self.send("p", scram.client_final(body[4:]))
            elif code == AUTH_SASL_FINAL:
                if scram is None:
                    raise ProtocolError("SASLFinal before SASL")
                scram.verify_server_final(body[4:])
            else:
                raise ProtocolError(f"unsupported authentication request {code}")

    def _need_password(self) -> str:
        if self.password is None:
            raise ProtocolError("server asked for a password and none was given")
        return self.password

    def _send_password(self, password: str) -> None:
        self.send("p", password.encode() + b"\0")

    def _read_until_ready(self) -> None:
        while True:
            kind, body = self.read_message()
            if kind == "S":
                key, value, _ = body.split(b"\0", 2)
                self.parameters[key.decode()] = value.decode()
            elif kind == "K":
                self.backend_key = struct.unpack("!ii", body[:8])
            elif kind == "N":
                self.notices.append(parse_error_fields(body))
            elif kind == "E":
                raise ServerError(parse_error_fields(body))
            elif kind == "Z":
                self.transaction_status = body.decode()
                return
            else:
                raise ProtocolError(f"unexpected {kind!r} during startup")

    # -- queries -------------------------------------------------------------

    def query(self, sql: str) -> list[list[str | None]]:
        """Runs `sql` with the simple query protocol and returns the rows of the
        last result as text. Raises ServerError (after ReadyForQuery, so the
        connection stays usable) if the server reported one."""
        self._arm()
        self.send("Q", sql.encode() + b"\0")
        rows: list[list[str | None]] = []
        error: ServerError | None = None
        while True:
            kind, body = self.read_message()
            if kind == "T":
                rows = []
            elif kind == "D":
                rows.append(_decode_data_row(body))
            elif kind == "E":
                error = ServerError(parse_error_fields(body))
            elif kind == "N":
                self.notices.append(parse_error_fields(body))
            elif kind == "Z":
                self.transaction_status = body.decode()
                if error is not None:
                    raise error
                return rows
            # 'C' CommandComplete, 'I' EmptyQueryResponse, 'S', 'A': nothing to keep.

    def close(self) -> None:
        """Polite close: Terminate, then FIN."""
        if self.sock is None:
            return
        try:
            self.send("X")
        except OSError:
            pass
        self.sock.close()
        self.sock = None

    def close_without_terminate(self) -> None:
        """FIN without a Terminate message, as a crashed client's kernel would."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def abort(self) -> None:
        """Abrupt close: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        if self.sock is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
            self.sock = None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _decode_data_row(body: bytes) -> list[str | None]:
    (count,) = struct.unpack("!H", body[:2])
    pos = 2
    row: list[str | None] = []
    for _ in range(count):
        (n,) = struct.unpack("!i", body[pos : pos + 4])
        pos += 4
        if n < 0:
            row.append(None)
        else:
            row.append(body[pos : pos + n].decode("utf-8", "replace"))
            pos += n
    return row


def scram_attributes(message: bytes) -> dict[str, str]:
    """A SCRAM message's attributes: b"r=abc,s=c2FsdA==,i=4096" -> {"r": "abc", ...}."""
    return dict(part.split("=", 1) for part in message.decode().split(","))


class _ScramClient:
    """SCRAM-SHA-256 without channel binding, as libpq does it (RFC 5802, RFC 7677)."""

    def __init__(self, password: str):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        # PostgreSQL ignores the SCRAM user name (it uses the startup packet's), and
        # libpq sends it empty.
        self.client_first_bare = f"n=,r={self.nonce}"
        self.auth_message = b""
        self.server_key = b""

    def client_first(self) -> bytes:
        return ("n,," + self.client_first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        attrs = scram_attributes(server_first)
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(self.nonce):
            raise ProtocolError("server nonce does not extend the client nonce")
        salted = scram_salted_password(self.password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        self.server_key = _hmac(salted, b"Server Key")
        without_proof = f"c=biws,r={nonce}"
        self.auth_message = ",".join(
            [self.client_first_bare, server_first.decode(), without_proof]
        ).encode()
        signature = _hmac(stored_key, self.auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        text = server_final.decode()
        if not text.startswith("v="):
            raise ProtocolError(f"SCRAM server-final is an error: {text}")
        expected = _hmac(self.server_key, self.auth_message)
        if not hmac.compare_digest(base64.b64decode(text[2:]), expected):
            raise ProtocolError("SCRAM server signature does not verify")


def connect(host: str, port: int, user: str, password: str | None = None,
            database: str | None = None, **kwargs) -> Connection:
    return Connection(host, port, user, password, database, **kwargs).connect()


# ---------------------------------------------------------------------------
# Extended query protocol and cancel requests, as raw bytes, for tests that
# need to control exactly what goes into one write (pipelining, Flush).
# ---------------------------------------------------------------------------


def frontend_message(kind: str, body: bytes = b"") -> bytes:
    return kind.encode() + struct.pack("!I", len(body) + 4) + body


def parse_message(name: str, sql: str, param_types: tuple[int, ...] = ()) -> bytes:
    body = name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", len(param_types))
    body += b"".join(struct.pack("!I", oid) for oid in param_types)
    return frontend_message("P", body)


def bind_message(portal: str, statement: str, params: tuple[str | None, ...] = ()) -> bytes:
    """All parameters and all results in text format."""
    body = portal.encode() + b"\0" + statement.encode() + b"\0"
    body += struct.pack("!H", 0) + struct.pack("!H", len(params))
    for value in params:
        if value is None:
            body += struct.pack("!i", -1)
        else:
            raw = value.encode()
            body += struct.pack("!i", len(raw)) + raw
    body += struct.pack("!H", 0)
    return frontend_message("B", body)


def describe_message(kind: str, name: str) -> bytes:
    """kind: 'S' for a prepared statement, 'P' for a portal."""
    return frontend_message("D", kind.encode() + name.encode() + b"\0")


def execute_message(portal: str = "", max_rows: int = 0) -> bytes:
    return frontend_message("E", portal.encode() + b"\0" + struct.pack("!I", max_rows))


SYNC_MESSAGE = frontend_message("S")
FLUSH_MESSAGE = frontend_message("H")


def read_until_ready(conn: Connection) -> list[tuple[str, bytes]]:
    """Reads backend messages up to and including the next ReadyForQuery
    (bounded by conn.timeout) and returns them all, errors included."""
    conn._arm()
    messages = []
    while True:
        kind, body = conn.read_message()
        messages.append((kind, body))
        if kind == "Z":
            conn.transaction_status = body.decode()
            return messages


def data_rows(messages: list[tuple[str, bytes]]) -> list[list[str | None]]:
    return [_decode_data_row(body) for kind, body in messages if kind == "D"]


def errors_in(messages: list[tuple[str, bytes]]) -> list[ServerError]:
    return [ServerError(parse_error_fields(body)) for kind, body in messages if kind == "E"]


def query_outcome(conn: Connection, sql: str) -> tuple[list, ServerError | None, bool]:
    """Like Connection.query, but for a query that may end the connection:
    returns (rows, the ErrorResponse if any, whether the peer closed) instead
    of raising, so an error sent just before a close is not lost."""
    conn._arm()
    rows: list = []
    error: ServerError | None = None
    try:
        conn.send("Q", sql.encode() + b"\0")
        while True:
            kind, body = conn.read_message()
            if kind == "D":
                rows.append(_decode_data_row(body))
            elif kind == "E":
                error = ServerError(parse_error_fields(body))
            elif kind == "Z":
                conn.transaction_status = body.decode()
                return rows, error, False
    except (ProtocolError, ConnectionError, BrokenPipeError):
        return rows, error, True


def cancel_request(process_id: int, secret_key: int) -> bytes:
    return struct.pack("!IIii", 16, CANCEL_REQUEST_CODE, process_id, secret_key)


def send_cancel(host: str, port: int, process_id: int, secret_key: int,
                timeout: float = 5.0) -> None:
    """Sends a CancelRequest on a fresh connection and waits (bounded) for the
    peer to close it, as libpq's PQcancel does."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cancel_request(process_id, secret_key))
        try:
            while s.recv(4096):
                pass
        except (socket.timeout, ConnectionError):
            pass
