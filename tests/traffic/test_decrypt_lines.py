"""The tap's line protocol (audit.traffic.tshark), fed by hand: requests and answers paired, HTTP/2
header blocks and DATA told apart by frame, hostile lines ignored, memory bounded. No tshark needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.traffic.tshark import MAX_WAITING, DecryptedRequest, Decryption, Tshark, keylog_randoms

CLIENT, SERVER = ("10.0.0.2", 40000), ("203.0.113.5", 443)


def where(ts: float, src: tuple[str, int], dst: tuple[str, int]) -> str:
    return f"{ts:.9f}\t{src[0]}\t{src[1]}\t{dst[0]}\t{dst[1]}"


def h1(
    ts: float,
    src: tuple[str, int],
    dst: tuple[str, int],
    head: bytes,
    body: bytes = b"",
    size: int | None = None,
) -> bytes:
    return (
        f"H1\t{where(ts, src, dst)}\t{head.hex()}\t{len(body)}\t{len(body) if size is None else size}\n".encode()
        + body
    )


def h2(ts: float, src: tuple[str, int], dst: tuple[str, int], frames: list[tuple[int, int, int, int]],
       headers: list[list[tuple[str, str]]], data: list[bytes]) -> bytes:  # fmt: skip
    """frames: (type, stream id, flags, length); headers: one block per HEADERS frame; data: per DATA frame."""
    col = lambda xs: ",".join(str(x) for x in xs)  # noqa: E731
    names = ",".join(k.encode().hex() for block in headers for k, _ in block)
    values = ",".join(v.encode().hex() for block in headers for _, v in block)
    return (f"H2\t{where(ts, src, dst)}\t{col(f[0] for f in frames)}\t{col(f[1] for f in frames)}\t"
            f"{col(f[2] for f in frames)}\t{col(f[3] for f in frames)}\t{col(len(b) for b in headers)}\t"
            f"{names}\t{values}\t{col(len(d) for d in data)}\n").encode() + b"".join(data)  # fmt: skip


def feed(records: list[bytes], chunk: int = 0) -> list[DecryptedRequest]:
    """The requests of the tap's output ``records``, given to the reader whole or ``chunk`` bytes at a
    time (as a growing file gives them), with what an unfinished last record gives."""
    d = Decryption(Tshark("tshark", (4, 0)), Path("x"))
    data = b"".join(records)
    out: list[DecryptedRequest] = []
    buf = bytearray()
    for i in range(0, len(data), chunk or max(len(data), 1)):
        buf += data[i : i + (chunk or len(data))]
        found, used = d.records(buf)
        del buf[:used]
        out += found
    if buf:
        line, _, payload = bytes(buf).partition(b"\n")
        out += d._line(line, payload)
    return out + list(d._rest())


def test_http1_request_paired_with_its_answer() -> None:
    req = b"POST /v1/x?a=1 HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\n\r\n"
    (r,) = feed([h1(1.0, CLIENT, SERVER, req + b"body", b"body"),
                 h1(1.5, SERVER, CLIENT, b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n\r\nok", size=2)])  # fmt: skip
    assert (r.method, r.target, r.body, r.status, r.response_content_type) == (
        "POST",
        "/v1/x?a=1",
        b"body",
        201,
        "text/plain",
    )
    assert r.head == req and r.head_size == len(req) and r.body_size == 4 and r.end_ts == 1.5


def test_http2_blocks_and_data_by_frame() -> None:
    a = [
        (":method", "POST"),
        (":path", "/a"),
        (":authority", "x.example"),
        (":scheme", "https"),
        ("content-type", "application/json"),
    ]
    b = [(":method", "GET"), (":path", "/b"), (":authority", "x.example"), (":scheme", "https")]
    lines = [
        # HEADERS a (stream 1), DATA a (END_STREAM), HEADERS b (stream 3, END_STREAM) in one packet
        h2(1.0, CLIENT, SERVER, [(1, 1, 4, 30), (0, 1, 1, 5), (1, 3, 5, 20)], [a, b], [b"hello"]),
        h2(1.2, SERVER, CLIENT, [(1, 3, 4, 10), (0, 3, 1, 7)], [[(":status", "404")]], []),
        h2(1.3, SERVER, CLIENT, [(1, 1, 5, 10)], [[(":status", "200")]], []),
    ]
    got = {r.target: r for r in feed(lines)}
    assert (
        got["/a"].body == b"hello"
        and got["/a"].status == 200
        and got["/a"].headers == (("content-type", "application/json"),)
    )
    assert got["/b"].body == b"" and got["/b"].status == 404 and got["/b"].bytes_in == 17
    assert {r.http_version for r in got.values()} == {"HTTP/2.0"}


@pytest.mark.parametrize("line", [
    b"", b"H1\n", b"H1\tnan\tx\ty\tz\tw\n", b"H1\t1\t10.0.0.2\tport\t1.2.3.4\t443\tzz\t\t0\n",
    b"H2\t1\t10.0.0.2\t1\t1.2.3.4\t443\t1,2\t1\t0\t5\t\t\t\t\n", b"H2\t1\t10.0.0.2\t1\t1.2.3.4\t443\t1\t1\t04x\t5\t1\t00\t00\t\n",
    b"CH\t1\t10.0.0.2\t1\t1.2.3.4\t443\n", b"XX\t1\t10.0.0.2\t1\t1.2.3.4\t443\tfoo\n",
    b"H1\t1\t10.0.0.2\t1\t1.2.3.4\t443\t" + b"GET".hex().encode() + b"\t\t0\n",
    b"H1\t1\t10.0.0.2\t1\t1.2.3.4\t443\t" + b"GET".hex().encode() + b"\t99999999999\t0\nGET",
    b"H2\t1\t10.0.0.2\t1\t1.2.3.4\t443\t0\t1\t1\t5\t\t\t\t-5\nhello",
])  # fmt: skip
def test_hostile_lines_give_nothing(line: bytes) -> None:
    assert feed([line]) == []


def test_bodies_with_tabs_and_newlines_read_in_any_chunks() -> None:
    # bodies follow their line as they are: tabs, newlines and bytes that look like a record inside
    # them change nothing, however the output is cut into reads
    body = b"a\tb\nH1\t1\t10.0.0.2\t1\t1.2.3.4\t443\t00\t5\t5\n\x00\xff" * 50
    req = b"POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: %d\r\n\r\n" % len(body)
    a = [(":method", "POST"), (":path", "/h2"), (":authority", "x.example"), (":scheme", "https")]
    records = [h1(1.0, CLIENT, SERVER, req, body),
               h1(1.1, SERVER, CLIENT, b"HTTP/1.1 200 OK\r\n\r\n", size=0),
               h2(2.0, CLIENT, (SERVER[0], 8443), [(1, 1, 4, 30), (0, 1, 0, 9), (0, 1, 1, 8)], [a], [b"\n\t\n", body[:8]]),
               h2(2.1, (SERVER[0], 8443), CLIENT, [(1, 1, 5, 10)], [[(":status", "204")]], [])]  # fmt: skip
    for chunk in (0, 1, 7, 100):
        got = {r.target: r for r in feed(records, chunk)}
        assert got["/up"].body == body and got["/up"].status == 200, chunk
        assert got["/h2"].body == b"\n\t\n" + body[:8] and got["/h2"].status == 204, chunk


def test_a_record_cut_short_gives_its_line_and_what_came() -> None:
    req = b"POST /cut HTTP/1.1\r\nHost: a.example\r\n\r\n"
    (r,) = feed([h1(1.0, CLIENT, SERVER, req, b"0123456789")[:-4]])
    assert r.target == "/cut" and r.body == b"012345" and r.body_size == 10


def test_answers_that_never_come_do_not_pile_up() -> None:
    req = b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"
    d = Decryption(Tshark("tshark", (4, 0)), Path("x"))
    early = [r for i in range(MAX_WAITING * 3) for r in d.records(h1(float(i), CLIENT, SERVER, req))[0]]
    assert len(early) == MAX_WAITING * 2 and sum(len(q) for q in d._h1.values()) == MAX_WAITING


def test_keylog_randoms() -> None:
    r = "ab" * 32
    text = f"# comment\nCLIENT_RANDOM {r} {'00' * 48}\nCLIENT_TRAFFIC_SECRET_0 {r.upper()} {'11' * 32}\nRSA 0011 2233\njunk\n"
    assert keylog_randoms(text.encode()) == {r}
