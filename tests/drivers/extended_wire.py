"""Extended-query-protocol messages for pgwire.Connection, and a transcript of the replies
that two servers (PostgreSQL itself and sluice) can be compared by.

Message formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
Flow (errors skip to Sync): https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
"""

from __future__ import annotations

import struct

import pgwire


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def _message(kind: str, body: bytes = b"") -> bytes:
    return kind.encode() + struct.pack("!I", len(body) + 4) + body


def parse(name: str, sql: str, types: tuple[int, ...] = ()) -> bytes:
    body = _cstr(name) + _cstr(sql) + struct.pack("!H", len(types))
    body += b"".join(struct.pack("!I", oid) for oid in types)
    return _message("P", body)


def bind(statement: str, params: list[str | None] = (), portal: str = "") -> bytes:
    """All parameters and results in text format."""
    body = _cstr(portal) + _cstr(statement) + struct.pack("!H", 0)
    body += struct.pack("!H", len(params))
    for value in params:
        if value is None:
            body += struct.pack("!i", -1)
        else:
            data = value.encode()
            body += struct.pack("!i", len(data)) + data
    body += struct.pack("!H", 0)
    return _message("B", body)


def describe(kind: str, name: str) -> bytes:
    return _message("D", kind.encode() + _cstr(name))


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return _message("E", _cstr(portal) + struct.pack("!I", max_rows))


def close(kind: str, name: str) -> bytes:
    return _message("C", kind.encode() + _cstr(name))


def sync() -> bytes:
    return _message("S")


def flush() -> bytes:
    return _message("H")


def query(sql: str) -> bytes:
    return _message("Q", _cstr(sql))


# -- replies -----------------------------------------------------------------------------


def _row(body: bytes) -> tuple:
    (count,) = struct.unpack("!H", body[:2])
    pos, values = 2, []
    for _ in range(count):
        (n,) = struct.unpack("!i", body[pos:pos + 4])
        pos += 4
        if n < 0:
            values.append(None)
        else:
            values.append(body[pos:pos + n].decode())
            pos += n
    return tuple(values)


def _row_description(body: bytes) -> tuple:
    """(name, type oid) per column: what a driver decodes results by."""
    (count,) = struct.unpack("!H", body[:2])
    pos, columns = 2, []
    for _ in range(count):
        end = body.index(b"\0", pos)
        name = body[pos:end].decode()
        pos = end + 1
        _table, _attnum, type_oid, _size, _mod, _fmt = struct.unpack("!IhIhih", body[pos:pos + 18])
        pos += 18
        columns.append((name, type_oid))
    return tuple(columns)


def normalize(kind: str, body: bytes) -> tuple | None:
    """One reply as a comparable tuple; None for replies a pooler may legitimately add or
    drop (ParameterStatus, notices)."""
    if kind in "123nsI":  # ParseComplete, BindComplete, CloseComplete, NoData, Suspended, Empty
        return (kind,)
    if kind == "t":
        (count,) = struct.unpack("!H", body[:2])
        return ("t", struct.unpack(f"!{count}I", body[2:2 + 4 * count]))
    if kind == "T":
        return ("T", _row_description(body))
    if kind == "D":
        return ("D", _row(body))
    if kind == "C":
        return ("C", body.rstrip(b"\0").decode())
    if kind == "E":
        fields = pgwire.parse_error_fields(body)
        return ("E", fields.get("C"), fields.get("M"))
    if kind == "Z":
        return ("Z", body.decode())
    if kind in "SN":
        return None
    return (kind, body)


def send(conn: pgwire.Connection, *messages: bytes) -> None:
    conn._arm()
    conn.send_raw(b"".join(messages))


def read_replies(conn: pgwire.Connection, *, ready: int = 1, count: int | None = None) -> list:
    """Reads normalized replies until `ready` ReadyForQuery messages arrived, or, when
    `count` is given, until that many (normalized) replies arrived (for a batch that ends
    in Flush, which gets no ReadyForQuery)."""
    conn._arm()
    replies: list = []
    seen_ready = 0
    while True:
        kind, body = conn.read_message()
        item = normalize(kind, body)
        if item is None:
            continue
        replies.append(item)
        if kind == "Z":
            conn.transaction_status = body.decode()
            seen_ready += 1
            if count is None and seen_ready >= ready:
                return replies
        if count is not None and len(replies) >= count:
            return replies


def exchange(conn: pgwire.Connection, *messages: bytes) -> list:
    """Sends the messages and reads the replies up to the ReadyForQuery of every Sync and
    simple Query among them."""
    readies = sum(1 for m in messages if m[:1] in (b"S", b"Q"))
    send(conn, *messages)
    return read_replies(conn, ready=readies)


def kinds(replies: list) -> str:
    """The reply types as one string, e.g. '12DC12DCZ'."""
    return "".join(r[0] for r in replies)


def errors(replies: list) -> list[str]:
    return [r[1] for r in replies if r[0] == "E"]


def rows(replies: list) -> list[tuple]:
    return [r[1] for r in replies if r[0] == "D"]
