"""Fuzz the traffic importers (and data detection, the live recorder, the formatters) with mutated captures.

Usage:
    .venv/bin/python benchmarks/fuzz_import.py [--cases 2500] [--seed 1] [--jobs 2] [--seconds 0]
                                               [--timeout 10] [--mem 2048] [--only har,pcap,flows,pii,live]

Starts from small captures built with ``tests/fixtures/captures/build_captures.py`` (and the
committed fixtures), and writes inputs of every kind the importers meet in the wild from apps under
suspicion: byte flips, truncations, inserted garbage, huge length fields, HAR entries with wrong
types and deep nesting, non-UTF-8, pcapng blocks with bad lengths, IP fragments, overlapping and
out-of-order TCP segments, DNS compression-pointer loops, TLS records and QUIC frames with bad
lengths/varints, PCAPdroid trailers with garbage names, request bodies that are gzip/brotli/zstd
bombs, deeply nested base64, and strings shaped to make regular expressions backtrack.

Each input runs in a worker process (``RLIMIT_AS`` = ``--mem`` MiB) through
``audit.traffic.importers.import_file`` with a ``PiiDetector`` built from the sample device
profile, into a case file that already holds an earlier import. Flagged, with the input kept in
``benchmarks/.cache/fuzz/``: any exception that is not an ``AuditError``, a run over ``--timeout``
seconds, a worker that dies (memory), and an earlier import's rows gone missing afterwards.
Exit status 1 if anything was flagged.

A quarter of each format's inputs aim at the fault classes of issue 15 (``TARGETS``): HAR entries
with 1e300/0 times, megabytes of ``serverIPAddress`` or an IP field that is no address, ``request.url``
and other fields of the wrong JSON type; flow files with 1e300/0/negative timestamps; captures with
link types the importer does not read, a swapped pcapng byte-order magic, interfaces of mixed link
types, unknown and inconsistent blocks; and ``live``: flows with lone surrogates (path, query,
headers, host, body, error) and odd times through the real recorder (``Recorder`` in mitmproxy's
test context, writer thread), where every good flow must be stored. The targeted inputs and 3 % of
the others are also imported alone into a new case and rendered (report HTML, destinations as
JSON, CSV and table): formatters must not crash on what the import stored. The shared entry point
is ``run(cases, seed)`` (``benchmarks/fuzz_common.py``).
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import json
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # for tests.fixtures; appended, so that PYTHONPATH can pick another audit
    sys.path.append(str(ROOT))

import dpkt  # noqa: E402

from benchmarks.fuzz_common import FuzzResult, add_arguments, finish  # noqa: E402
from tests.fixtures.captures import build_captures as bc  # noqa: E402

CAPTURES = ROOT / "tests" / "fixtures" / "captures"
OUT = ROOT / "benchmarks" / ".cache" / "fuzz_import"
PHONE, SERVER, RESOLVER = "192.168.1.23", "43.156.32.17", "8.8.8.8"
T0 = 1_718_703_000.0
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


# ---------------------------------------------------------------------------------------------
# Byte-level mutations
# ---------------------------------------------------------------------------------------------


def mutate_bytes(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        if not b:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
            continue
        op = rng.randrange(9)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            del b[rng.randrange(len(b)) :]
        elif op == 3:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 256)))
        elif op == 4:
            j = min(len(b), i + rng.randint(1, 512))
            del b[i:j]
        elif op == 5:
            j = min(len(b), i + rng.randint(1, 512))
            b[i:i] = b[i:j] * rng.randint(1, 8)
        elif op == 6:
            size = rng.choice((1, 2, 4))
            v = rng.choice(INTERESTING) & ((1 << (8 * size)) - 1)
            b[i : i + size] = v.to_bytes(size, rng.choice(("big", "little")))
        elif op == 7 and others:
            o = rng.choice(others)
            j = rng.randrange(len(o)) if o else 0
            b[i:] = o[j:]
        else:
            b[i:i] = rng.choice(
                [b"\x00" * 64, b"\xff" * 64, b"\xc0\x0c" * 8, "\u202e<script>".encode(), b"\xed\xa0\x80"]
            )
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# Hostile bodies (shared by HAR, pcap HTTP and the flow file)
# ---------------------------------------------------------------------------------------------


@functools.cache
def gzip_bomb(n: int = 60 * 1024 * 1024) -> bytes:
    return gzip.compress(b"\0" * n, 9)


@functools.cache
def brotli_bomb() -> bytes:
    return bytes(brotli.compress(b"a" * (64 * 1024 * 1024), quality=5))


@functools.cache
def zstd_bomb() -> bytes:
    import zstandard

    return bytes(zstandard.ZstdCompressor(level=3).compress(b"x" * (200 * 1024 * 1024)))


@functools.cache
def nested_bomb(n: int) -> bytes:
    inner = b"imei=354678112345612 a@b.example " * (8 * 1024 * 1024 // 34)
    tok1 = base64.b64encode(gzip.compress(inner, 9)).decode()
    tok2 = base64.b64encode(gzip.compress(" ".join([tok1] * 64).encode(), 9)).decode()
    return json.dumps({"d": [tok2] * n}).encode()


def hostile_body(rng: random.Random) -> tuple[bytes, list[tuple[str, str]]]:
    """(body, extra headers) of a request body meant to hurt the data detector."""
    kind = rng.randrange(14)
    if kind == 12:  # base64(gzip(text of 64 tokens, each base64(gzip(8 MiB of text))))
        return nested_bomb(rng.randint(1, 20)), [("Content-Type", "application/json")]
    if kind == 13:  # megabyte strings dense with e-mails, IMEIs, MACs, coordinates, profile values
        unit = rng.choice(
            [
                "imei=354678112345612 ",
                "a@b.example ",
                "a4:5e:60:c2:11:9f ",
                "52.520008,13.404954 ",
                "imei=490154203237518 ",
                "3f9a2c7d81e4b605 ",
            ]
        )
        doc = {f"k{i}": unit * ((1 << 20) // len(unit)) for i in range(8)}
        return gzip.compress(json.dumps(doc).encode(), 9)[: 64 * 1024], [
            ("Content-Encoding", "gzip"),
            ("Content-Type", "application/json"),
        ]
    if kind == 0:
        return gzip_bomb(rng.choice((8, 60)) * 1024 * 1024)[: 64 * 1024], [("Content-Encoding", "gzip")]
    if kind == 1:
        return brotli_bomb()[: 64 * 1024], [("Content-Encoding", "br")]
    if kind == 2:
        return zstd_bomb(), [("Content-Encoding", "zstd")]
    if kind == 3:  # stacked codings
        inner = gzip.compress(gzip_bomb(32 * 1024 * 1024))
        return inner[: 64 * 1024], [("Content-Encoding", "gzip, gzip")]
    if kind == 4:  # nested base64 (of gzip) inside JSON
        text = json.dumps({"imei": "354678112345612", "email": "a@b.example"})
        for _ in range(rng.randint(1, 12)):
            text = json.dumps({"d": base64.b64encode(gzip.compress(text.encode())).decode()})
        return text.encode(), [("Content-Type", "application/json")]
    if kind == 5:  # many base64 tokens, each a gzip bomb
        tok = base64.b64encode(gzip_bomb(16 * 1024 * 1024)).decode()
        return (json.dumps({"a@b.example": [tok] * 2}) if len(tok) < 30000 else tok).encode(), []
    if kind == 6:  # form body shaped to make regexes backtrack
        n = rng.randint(4, 40)
        return (
            "a@b.example=1" + "&" + "&".join("a" * rng.randint(4, 30) for _ in range(n)) + "&="
        ).encode(), []
    if kind == 7:  # deeply nested JSON
        d = rng.randint(1000, 200000)
        return ("[" * d + "]" * d).encode(), [("Content-Type", "application/json")]
    if kind == 8:  # XML: deep nesting, entities
        d = rng.randint(1000, 100000)
        if rng.random() < 0.5:
            return ("<a>" * d + "imei" + "</a>" * d).encode(), [("Content-Type", "text/xml")]
        return b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">]><l>&a;&a;</l>', [
            ("Content-Type", "text/xml")
        ]
    if kind == 9:  # multipart with many parts and weird boundary
        bd = rng.choice(["x", "", "--", "\u00ff", "a" * 200])
        parts = "".join(
            f'--{bd}\r\nContent-Disposition: form-data; name="imei{i}"\r\n\r\n354678112345612\r\n'
            for i in range(rng.randint(1, 2000))
        )
        return parts.encode("utf-8", "replace"), [("Content-Type", f"multipart/form-data; boundary={bd}")]
    if kind == 10:  # long runs for the pattern regexes
        chunk = rng.choice(["1", "a", "-1.", "@", "a.", ":aa", "1 ", "\\u00", "+1-(", "89"])
        return (chunk * rng.randint(1000, 200000)).encode(), []
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 70000))), [
        ("Content-Type", "application/octet-stream")
    ]


# ---------------------------------------------------------------------------------------------
# HAR
# ---------------------------------------------------------------------------------------------


def odd_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            -1,
            0,
            -(2**63),
            2**64,
            10**400,
            1e308,
            -1e308,
            float("nan"),
            float("inf"),
            True,
            [],
            {},
            [1, 2],
            {"a": None},
            "",
            "x" * 100000,
            "\ud800",
            "\udfff\ud800",
            "\x00\x1b[31m<script>",
            "1e999",
            "9999-99-99T99:99:99Z",
            "-1",
            "[::1]",
            "http://[::1",
            "http://a:99999/",
            "http://a:-1/",
            "https://\u202eexample/",
            "::::",
            "[",
            "http://" + "a." * 5000 + "com/",
        ]
    )


def mutate_json(rng: random.Random, node: Any, depth: int = 0) -> Any:
    """Replace one random value somewhere in ``node`` by an odd one (or delete it)."""
    if isinstance(node, dict) and node and depth < 30:
        k = rng.choice(list(node))
        r = rng.random()
        if r < 0.15:
            del node[k]
        elif r < 0.45:
            node[k] = odd_value(rng)
        else:
            node[k] = mutate_json(rng, node[k], depth + 1)
        return node
    if isinstance(node, list) and node and depth < 30:
        i = rng.randrange(len(node))
        node[i] = mutate_json(rng, node[i], depth + 1) if rng.random() < 0.8 else odd_value(rng)
        return node
    return odd_value(rng)


def har_seed(rng: random.Random) -> dict[str, Any]:
    exchanges = bc.session(rng.randrange(10**6))
    xs = rng.sample(exchanges, min(len(exchanges), rng.randint(1, 6)))
    return bc.har_document([bc.har_entry(x, "43.156.32.17", 1000 + i) for i, x in enumerate(xs)], "fuzz")


def gen_har(rng: random.Random, corpus: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.25:
        return mutate_bytes(rng, rng.choice(corpus), corpus)
    doc = har_seed(rng)
    entries = doc["log"]["entries"]
    if r < 0.65:
        for _ in range(rng.randint(1, 5)):
            mutate_json(rng, entries)
    elif r < 0.85:  # hostile request body
        body, extra = hostile_body(rng)
        e = rng.choice(entries)
        req = e["request"]
        req["headers"] += [{"name": k, "value": v} for k, v in extra]
        ct = dict(extra).get("Content-Type", "application/json")
        try:
            text = body.decode("utf-8")
            req["postData"] = {"mimeType": ct, "text": text}
        except UnicodeDecodeError:
            req["postData"] = {"mimeType": ct, "text": base64.b64encode(body).decode(), "encoding": "base64"}
        if rng.random() < 0.3:
            req["url"] += "?" + body[:4000].decode("latin-1")
    elif r < 0.93:  # deep nesting of the document itself
        d = rng.choice((100, 1000, 5000, 100000))
        inner = "[" * d + "]" * d
        return f'{{"log": {{"entries": [{{"request": {inner}}}]}}}}'.encode()
    else:  # non-UTF-8 / BOMs / encodings
        raw = json.dumps(doc).encode()
        return rng.choice(
            [
                b"\xef\xbb\xbf" + raw,
                raw.replace(b"GET", b"G\xffT"),
                raw.decode().encode("utf-16"),
                raw + b"\x00" * 10,
            ]
        )
    try:
        out = json.dumps(doc, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    except (ValueError, OverflowError):
        out = json.dumps(har_seed(rng))
    return out.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------
# pcap / pcapng
# ---------------------------------------------------------------------------------------------


def dns_loop(qid: int, rng: random.Random) -> bytes:
    hdr = struct.pack("!HHHHHH", qid, 0x8180, rng.choice((1, 2, 0xFFFF)), rng.choice((1, 0xFFFF)), 0, 0)
    kind = rng.randrange(4)
    if kind == 0:  # question name is a pointer to itself
        return hdr + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    if kind == 1:  # two pointers to each other
        return hdr + b"\x01a\xc0\x10" + b"\x01b\xc0\x0c" + b"\x00\x01\x00\x01"
    if kind == 2:  # answer name points forward into garbage, rdlength huge
        return (
            hdr + b"\x01a\x00\x00\x01\x00\x01" + b"\xc0\x30\x00\x01\x00\x01\x00\x00\x00\x3c\xff\xff\x01\x02"
        )
    # many labels / long chains of pointers
    body = b"".join(b"\x3f" + b"a" * 63 for _ in range(rng.randint(1, 300))) + b"\x00\x00\x01\x00\x01"
    return hdr + body


def tls_bad(rng: random.Random) -> bytes:
    hello = bytearray(
        bc.client_hello(rng.choice(["api.example.cn", "x" * 300, "\u00e9.example", ""]) or None, rng=rng)
    )
    for _ in range(rng.randint(0, 4)):
        i = rng.randrange(len(hello))
        hello[i : i + 2] = rng.choice(INTERESTING[:8]).to_bytes(2, "big")
    rec = bc.tls_record(bytes(hello))
    kind = rng.randrange(5)
    if kind == 0:
        rec = rec[:3] + b"\xff\xff" + rec[5:]
    elif kind == 1:  # split over many tiny records
        hs, rec = bytes(hello), b""
        n = rng.randint(1, 50)
        for i in range(0, len(hs), n):
            rec += b"\x16\x03\x01" + struct.pack("!H", len(hs[i : i + n])) + hs[i : i + n]
    elif kind == 2:
        rec = b"\x16\x03\x01\x00\x00" * rng.randint(1, 20000) + rec
    elif kind == 3:
        rec = rec[: rng.randrange(len(rec))]
    return rec


def quic_frames(rng: random.Random) -> bytes:
    out = b""
    for _ in range(rng.randint(1, 6)):
        k = rng.randrange(5)
        if k == 0:
            out += b"\x02" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
        elif k == 1:
            out += b"\x03\xff\xff\xff\xff\xff\xff\xff\xff" * rng.randint(1, 4)
        elif k == 2:
            off = rng.choice((0, 1, 63, 2**14, 2**30, 2**62 - 1))
            data = bc.client_hello("q.example.com", alpn=("h3",))[: rng.randint(0, 600)]
            out += b"\x06" + _varint(off) + _varint(rng.choice((len(data), 2**62 - 1, 0))) + data
        elif k == 3:
            out += b"\x06" + bytes([rng.choice((0x40, 0x80, 0xC0))])
        else:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    return out


def _varint(v: int) -> bytes:
    if v < 64:
        return bytes([v])
    if v < 16384:
        return struct.pack("!H", v | 0x4000)
    if v < 2**30:
        return struct.pack("!I", v | 0x80000000)
    return struct.pack("!Q", v | 0xC000000000000000)


def quic_custom(rng: random.Random, dcid: bytes) -> bytes:
    """A correctly encrypted Initial whose frames (not its header) are hostile."""
    hello = bc.client_hello("q.example.com", alpn=("h3",))
    pkt = bc.quic_initial(
        "q.example.com",
        dcid,
        crypto=hello[: rng.randint(0, len(hello))] if rng.random() < 0.3 else hello,
        crypto_offset=rng.choice((0, 0, 100, 65535, 2**30)),
    )
    if rng.random() < 0.5:
        return pkt
    # re-seal with arbitrary frames: reuse the builder by passing frames as "crypto" of offset 0 is not
    # enough, so build from scratch here
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    h = hmac.HMAC(salt, hashes.SHA256())
    h.update(dcid)
    secret = bc._hkdf_label(h.finalize(), b"client in", 32)
    key, iv, hp = (
        bc._hkdf_label(secret, lbl, n) for lbl, n in ((b"quic key", 16), (b"quic iv", 12), (b"quic hp", 16))
    )
    frames = quic_frames(rng)
    frames += b"\x00" * max(0, 40 - len(frames))
    pn_len = 2
    length = pn_len + len(frames) + 16
    header = bytes([0xC0 | (pn_len - 1)]) + struct.pack("!I", 1) + bytes([len(dcid)]) + dcid
    header += b"\x00" + _varint(0) + struct.pack("!H", length | 0x4000)
    pn_bytes = b"\x00\x00"
    nonce = (int.from_bytes(iv, "big") ^ 0).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, frames, header + pn_bytes)
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sealed[2:18]) + enc.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    return first + header[1:] + bytes(b ^ m for b, m in zip(pn_bytes, mask[1:3], strict=True)) + sealed


def quic_bad_header(rng: random.Random) -> bytes:
    dcid = bytes(rng.randrange(256) for _ in range(rng.choice((0, 8, 20))))
    b = bytearray(bc.quic_initial("q.example.com", dcid or b"\x01"))
    i = rng.choice((5, 6 + len(dcid), 7 + len(dcid) + 4, rng.randrange(len(b))))
    b[i : i + 1] = bytes([rng.choice((0xFF, 0xC0, 0x80, 0x40, 0x00))])
    return bytes(b)


def http_request(rng: random.Random) -> bytes:
    body, extra = hostile_body(rng) if rng.random() < 0.5 else (b'{"imei": "354678112345612"}', [])
    cl = rng.choice([str(len(body)), "-5", "99999999999999999999", "abc", "", str(len(body) * 2), "0x10"])
    head = f"POST /p?{rng.choice(['a=1', '%', '&&&=', 'x' * 5000])} HTTP/1.1\r\nHost: {rng.choice(['h.example', '', '[::1', 'a:b:c', 'h.example:99999'])}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in extra)
    head += f"Content-Length: {cl}\r\n\r\n"
    return head.encode("latin-1", "replace") + body[:200000]


def tcp_chaos(rng: random.Random, client_stream: bytes, cport: int) -> list[tuple[float, dpkt.Packet]]:
    """Client segments out of order, overlapping, duplicated, with wrapping sequence numbers."""
    isn = rng.choice((1000, 0xFFFFFFF0, 0xFFFFFFFF, 0, rng.getrandbits(32)))
    out = [
        (
            T0,
            bc.ip_packet(
                PHONE,
                SERVER,
                dpkt.tcp.TCP(sport=cport, dport=rng.choice((443, 80, 8080)), seq=isn, flags=dpkt.tcp.TH_SYN),
            ),
        )
    ]
    segs = []
    pos = 0
    while pos < len(client_stream):
        n = rng.randint(1, 1500)
        start = max(0, pos - rng.choice((0, 0, 10, 500)))
        segs.append((start, client_stream[start : pos + n]))
        pos += n
    if rng.random() < 0.3:
        segs += [(rng.randrange(0, 2**32), bytes(rng.randrange(256) for _ in range(100))) for _ in range(20)]
    if rng.random() < 0.5:
        rng.shuffle(segs)
    dport = out[0][1].data.dport
    for i, (off, data) in enumerate(segs[:3000]):
        tcp = dpkt.tcp.TCP(
            sport=cport, dport=dport, seq=(isn + 1 + off) & 0xFFFFFFFF, flags=dpkt.tcp.TH_ACK, data=data
        )
        out.append((T0 + 0.001 * (i + 1), bc.ip_packet(PHONE, SERVER, tcp)))
    return out


def fragment(rng: random.Random, pkt: dpkt.Packet) -> list[dpkt.Packet]:
    raw = bytes(pkt.data) if isinstance(pkt, dpkt.ip.IP) else b""
    if not raw:
        return [pkt]
    out = []
    step = 8 * rng.randint(1, 20)
    for off in range(0, len(raw), step):
        ip = dpkt.ip.IP(src=pkt.src, dst=pkt.dst, p=pkt.p, ttl=64, id=7, data=raw[off : off + step])
        ip.offset = off // 8
        ip.mf = int(off + step < len(raw))
        out.append(ip)
    if rng.random() < 0.5:
        rng.shuffle(out)
    return out


def chunks(data: bytes, n: int = 1400) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)] or [b""]


def pcap_packets(rng: random.Random) -> list[tuple[float, dpkt.Packet]]:
    pk: list[tuple[float, dpkt.Packet]] = []
    for n in range(rng.randint(1, 6)):
        t = T0 + n
        kind = rng.randrange(8)
        port = 40000 + n
        if kind == 0:
            pk.append((t, bc.udp_packet(RESOLVER, 53, PHONE, port, dns_loop(n, rng))))
        elif kind == 1:
            resp = bytearray(bc.dns_response("api.example.cn", ["43.156.32.17", "2001:db8::1"], n))
            if rng.random() < 0.7:
                resp = bytearray(mutate_bytes(rng, bytes(resp), []))
            pk.append((t, bc.udp_packet(RESOLVER, 53, PHONE, port, bytes(resp))))
        elif kind == 2:
            pk += bc.tcp_session(
                PHONE, port, SERVER, 443, t, chunks(tls_bad(rng)), [b"\x16\x03\x03" + b"s" * 20]
            )
        elif kind == 3:
            pk += tcp_chaos(
                rng,
                rng.choice(
                    [bc.tls_record(bc.client_hello("c.example")) * 3, http_request(rng), tls_bad(rng)]
                ),
                port,
            )
        elif kind == 4:
            dcid = bytes(rng.randrange(256) for _ in range(8))
            for i in range(rng.randint(1, 10)):
                d = quic_custom(rng, dcid) if rng.random() < 0.7 else quic_bad_header(rng)
                pk.append((t + i * 0.01, bc.udp_packet(PHONE, port, SERVER, 443, d)))
        elif kind == 5:
            pk += bc.tcp_session(
                PHONE,
                port,
                "119.29.29.29",
                80,
                t,
                chunks(http_request(rng)),
                [b"HTTP/1.1 204 No Content\r\n\r\n"],
            )
        elif kind == 6:
            big = bc.udp_packet(
                PHONE, port, SERVER, 443, bc.quic_initial("frag.example", b"\x01\x02\x03\x04\x05\x06\x07\x08")
            )
            pk += [(t, f) for f in fragment(rng, big)]
        else:
            pk.append(
                (
                    t,
                    bc.udp_packet(
                        PHONE,
                        port,
                        SERVER,
                        rng.choice((443, 53, 0, 65535)),
                        bytes(rng.randrange(256) for _ in range(rng.randint(0, 1500))),
                    ),
                )
            )
    return pk


def pcapdroid(ip: dpkt.Packet, rng: random.Random) -> bytes:
    frame = bc.ethernet(ip)
    name = rng.choice(
        [
            b"com.example.messenge",
            b"\xff\xfe\x00bad",
            bytes(rng.randrange(256) for _ in range(20)),
            b"<script>alert(1)</sc",
        ]
    )
    trailer = (
        struct.pack(rng.choice(("!I", "<I")), 0x01072021)
        + struct.pack("!i", rng.choice((-1, 10123, 2**31 - 1)))
        + name[:20].ljust(20, b"\0")
        + b"\0" * 4
    )
    return frame + trailer


def encode_frames(
    rng: random.Random, packets: list[tuple[float, dpkt.Packet]], linktype: int
) -> list[tuple[float, bytes]]:
    out = []
    for ts, ip in packets:
        if linktype == dpkt.pcap.DLT_EN10MB:
            out.append((ts, pcapdroid(ip, rng) if rng.random() < 0.3 else bc.ethernet(ip)))
        elif linktype == 113:
            out.append(
                (ts, bytes(dpkt.sll.SLL(type=0x0800 if isinstance(ip, dpkt.ip.IP) else 0x86DD, data=ip)))
            )
        elif linktype == 0:
            out.append((ts, struct.pack("=I", 2 if isinstance(ip, dpkt.ip.IP) else 30) + bytes(ip)))
        else:
            out.append((ts, bytes(ip)))
    return out


def write_capture(rng: random.Random, frames: list[tuple[float, bytes]], linktype: int) -> bytes:
    import io

    buf = io.BytesIO()
    if rng.random() < 0.3:
        w: Any = dpkt.pcapng.Writer(buf, linktype=linktype, snaplen=65535)
    else:
        w = dpkt.pcap.Writer(buf, linktype=linktype, snaplen=65535, nano=rng.random() < 0.2)
    for ts, f in frames:
        w.writepkt(f, ts=ts)
    return buf.getvalue()


def gen_pcap(rng: random.Random, corpus: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.35:
        return mutate_bytes(rng, rng.choice(corpus), corpus)
    linktype = rng.choice((1, 1, 1, 101, 113, 0, 228))
    data = write_capture(rng, encode_frames(rng, pcap_packets(rng), linktype), linktype)
    if r < 0.55:  # damage the structure, e.g. pcapng block lengths and pcap record lengths
        data = mutate_bytes(rng, data, [])
    elif r < 0.6:
        b = bytearray(data)
        # record header caplen huge (pcap) / block length huge (pcapng) at a random record start
        pos = rng.choice((24, 28, 32, 8, 4, 0)) if len(b) > 40 else 0
        b[pos : pos + 4] = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0, 3, 0x10000000)).to_bytes(
            4, rng.choice(("big", "little"))
        )
        data = bytes(b)
    return data


# ---------------------------------------------------------------------------------------------
# mitmproxy flow files
# ---------------------------------------------------------------------------------------------


def gen_flows(rng: random.Random, corpus: list[bytes]) -> bytes:
    from mitmproxy.io import tnetstring

    r = rng.random()
    if r < 0.4:
        return mutate_bytes(rng, rng.choice(corpus), corpus)
    src = rng.choice(corpus)
    records = []
    pos = 0
    while pos < len(src) and len(records) < 6:
        try:
            obj, rest = tnetstring.pop(memoryview(src[pos:]))
        except Exception:
            break
        records.append(obj)
        pos = len(src) - len(rest)
    if not records:
        return src
    out = b""
    for obj in records:
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 4)):
                mutate_tnet(rng, obj)
        try:
            out += tnetstring.dumps(obj)
        except Exception:
            out += tnetstring.dumps(records[0])
    if r > 0.9:  # huge declared length / deep nesting
        out = rng.choice(
            [
                b"99999999999:" + out,
                b"999999999999:",
                deep_tnetstring(rng.choice((100, 2000, 100000))),
                b"4294967295:" + out,
            ]
        )
    return out


@functools.cache
def deep_tnetstring(d: int) -> bytes:
    """A list nested ``d`` deep (each level a valid tnetstring), built in linear time."""
    lengths = [3]  # b"0:]"
    for _ in range(d):
        lengths.append(len(str(lengths[-1])) + 1 + lengths[-1] + 1)
    prefixes = [str(n).encode() + b":" for n in reversed(lengths[:-1])]
    return b"".join(prefixes) + b"0:]" + b"]" * d


def mutate_tnet(rng: random.Random, node: Any, depth: int = 0) -> Any:
    odd = [
        None,
        -1,
        2**70,
        1.5,
        float("nan"),
        True,
        b"\xff\xfe",
        b"",
        "\u202e<x>",
        [],
        {},
        [b"a"],
        {b"k": b"v"},
        "x" * 10000,
        b"/\xff\xfe?a=\xc3",
        b"h\xffst.example",
        -(2**63),
        2**63,
    ]
    if isinstance(node, dict) and node and depth < 20:
        k = rng.choice(list(node))
        r = rng.random()
        if r < 0.1:
            del node[k]
        elif r < 0.4:
            node[k] = rng.choice(odd)
        else:
            node[k] = mutate_tnet(rng, node[k], depth + 1)
        return node
    if isinstance(node, list) and node and depth < 20:
        i = rng.randrange(len(node))
        node[i] = mutate_tnet(rng, node[i], depth + 1)
        return node
    return rng.choice(odd)


# ---------------------------------------------------------------------------------------------
# PII detector directly (bodies through a minimal HAR would be slower; same code path)
# ---------------------------------------------------------------------------------------------


def gen_pii(rng: random.Random, corpus: list[bytes]) -> bytes:
    doc = har_seed(rng)
    doc["log"]["entries"] = doc["log"]["entries"][:1]
    req = doc["log"]["entries"][0]["request"]
    body, extra = hostile_body(rng)
    req["headers"] = [{"name": k, "value": v} for k, v in extra]
    req["postData"] = {
        "mimeType": dict(extra).get("Content-Type", ""),
        "text": base64.b64encode(body).decode(),
        "encoding": "base64",
    }
    if rng.random() < 0.3:
        req["headers"].append({"name": "Cookie", "value": body[:8000].decode("latin-1")})
    return json.dumps(doc).encode()


# ---------------------------------------------------------------------------------------------
# The fault classes of issue 15, aimed at directly (an imported case of these is also rendered)
# ---------------------------------------------------------------------------------------------

ODD_TIMES = [1e300, -1e300, 0, 0.0, -1, 2**63, 1e18, 253402300800.0, 32503680000.0, 1e-300, 631152000 - 1]
ODD_ISO_TIMES = ["+275760-09-13T00:00:00Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                 "2024-13-45T99:99:99Z", "1e300", "", "2024-06-18T09:00:00+99:00", "1989-12-31T23:59:59Z"]  # fmt: skip
ODD_URLS: list[Any] = [
    {"name": 5},
    5,
    [],
    None,
    ["https://a.example/"],
    True,
    1e300,
    {"url": "https://x.example/"},
]
ODD_IPS: list[Any] = ["not an ip", "999.1.1.1", "1.2.3.4\u0000", "[::1", "::ffff:", 5, {"ip": 1}, [], "1.2.3.4, 5.6.7.8",
                      "fe80::1%" + "x" * 300]  # fmt: skip


def har_issue15(rng: random.Random, corpus: list[bytes]) -> bytes:
    """A HAR whose entries hold 1e300/0 times, huge or odd serverIPAddress, wrong JSON types."""
    doc = har_seed(rng)
    for e in doc["log"]["entries"]:
        k = rng.randrange(6)
        if k == 0:
            e["startedDateTime"] = rng.choice(ODD_ISO_TIMES + ODD_TIMES)
        elif k == 1:
            e["time"] = rng.choice(ODD_TIMES + [float("inf"), float("nan")])
            e["timings"] = {"send": rng.choice(ODD_TIMES), "wait": 1e300, "receive": -1}
        elif k == 2:  # 1-8 MiB of serverIPAddress (the fuzz of the issue found 40 MiB stored as the IP)
            big = (
                e is doc["log"]["entries"][0]
            )  # one entry of megabytes (40 MiB rarely), the others kilobytes
            e["serverIPAddress"] = rng.choice(["1", "a", "2001:db8::", "9"]) * (
                (rng.choice([1, 1, 2, 40]) << 20) if big else 1000
            )
        elif k == 3:
            e["serverIPAddress"] = rng.choice(ODD_IPS)
        elif k == 4:
            e["request"]["url"] = rng.choice(ODD_URLS)
        else:  # other fields of the wrong JSON type
            target = rng.choice([e, e["request"], e.get("response", {})])
            if target:
                target[rng.choice(list(target))] = odd_value(rng)
    return json.dumps(doc, allow_nan=True).encode()


def flows_issue15(rng: random.Random, corpus: list[bytes]) -> bytes:
    """A flow file whose records hold 1e300/0/negative timestamps (the report's time.gmtime crash)."""
    from mitmproxy.io import tnetstring

    src = rng.choice(corpus)
    out, pos = b"", 0
    while pos < len(src):
        try:
            obj, rest = tnetstring.pop(memoryview(src[pos:]))
        except Exception:
            break
        pos = len(src) - len(rest)
        _odd_times(rng, obj)
        out += tnetstring.dumps(obj)
    return out or src


def _odd_times(rng: random.Random, node: Any, depth: int = 0) -> None:
    if isinstance(node, dict) and depth < 8:
        for k in list(node):
            name = k.decode("latin-1") if isinstance(k, bytes) else str(k)
            if name.startswith("timestamp") and rng.random() < 0.5:
                node[k] = rng.choice(ODD_TIMES)
            else:
                _odd_times(rng, node[k], depth + 1)
    elif isinstance(node, list) and depth < 8:
        for v in node:
            _odd_times(rng, v, depth + 1)


def pcap_issue15(rng: random.Random, corpus: list[bytes]) -> bytes:
    """Link types the importer does not read, a pcapng whose byte-order magic is swapped, pcapng
    interfaces of mixed link types, and unreadable blocks: each must be a warning, not silence."""
    k = rng.randrange(4)
    if k == 0:  # an unknown link type in the file header (pcap) or the interface block (pcapng)
        linktype = rng.choice([147, 148, 162, 276, 9999, 0xFFFF, 0x7FFFFFFF & 0xFFFF])
        frames = encode_frames(rng, pcap_packets(rng), 101)
        return write_capture(rng, frames, linktype)
    frames = encode_frames(rng, pcap_packets(rng), 1)
    import io

    buf = io.BytesIO()
    w = dpkt.pcapng.Writer(buf, linktype=1, snaplen=65535)
    for ts, f in frames:
        w.writepkt(f, ts=ts)
    data = bytearray(buf.getvalue())
    if k == 1:  # the section header's byte-order magic swapped, nothing else
        data[8:12] = data[8:12][::-1]
    elif k == 2:  # a second interface of another link type, and packets on an interface that is not there
        idb = struct.pack("<IIHHI", 1, 20, rng.choice([147, 9999, 105]), 0, 65535) + struct.pack("<I", 20)
        at = struct.unpack_from("<I", data, 4)[0]
        data[at:at] = idb
        epb_at = data.find(b"\x06\x00\x00\x00", at + len(idb))
        if epb_at > 0:
            data[epb_at + 8 : epb_at + 12] = struct.pack("<I", rng.choice([1, 2, 0xFFFF]))
    else:  # an unknown block type, and a block whose two lengths disagree
        blk = (
            struct.pack("<II", rng.choice([0x0BAD, 0x80000001, 0x0A0D0D0A ^ 1]), 16)
            + b"\x00" * 4
            + struct.pack("<I", 16)
        )
        at = struct.unpack_from("<I", data, 4)[0]
        data[at:at] = blk
        if rng.random() < 0.5 and len(data) > at + 40:
            struct.pack_into("<I", data, len(data) - 4, 0xFFFF)
    return bytes(data)


def live_issue15(rng: random.Random, corpus: list[bytes]) -> bytes:
    """Flows for the live recorder (JSON; lone surrogates as mitmproxy's surrogateescape makes them)
    in path, query, headers, host, body, error and odd timestamps, among good flows."""
    flows = []
    for i in range(rng.randint(5, 30)):
        poisoned = rng.random() < 0.4
        f: dict[str, Any] = {"i": i, "host": "good.example", "path": f"/ok/{i}", "headers": [["accept", "*/*"]],
                             "method": "GET", "body": "", "poisoned": poisoned}  # fmt: skip
        if poisoned:
            for _ in range(rng.randint(1, 3)):
                where = rng.choice(["path", "query", "header", "host", "body", "error", "time", "ctype"])
                # surrogateescape makes U+DC80..U+DCFF only: what mitmproxy's str fields can hold
                junk = rng.choice(
                    ["\udcff", "\udcfe\udcff", "\udc80", "\udcc3\udca9", "\x00", "\u202e", "\udc80" * 1000]
                )
                if where == "path":
                    f["path"] = f"/p{junk}/{i}"
                elif where == "query":
                    f["path"] = f"/q/{i}?k{junk}=1&{junk}=2&ok=3"
                elif where == "header":
                    f["headers"].append([f"x-{junk}", junk])
                elif where == "host":
                    f["host"] = f"h{junk}.example"
                elif where == "body":
                    f["method"], f["body"] = "POST", f'{{"a": "{junk}"}}'
                    f["headers"].append(["content-encoding", rng.choice(["gzip", "br", "zstd", "deflate"])])
                elif where == "error":
                    f["error"] = f"upstream said {junk}"
                elif where == "time":
                    f["time"] = rng.choice(ODD_TIMES)
                else:
                    f["headers"].append(["content-type", f"text/{junk}; charset={junk}"])
        flows.append(f)
    return json.dumps(flows).encode()


#: Share of the inputs of each format that get its issue-15 target instead of a random mutation.
TARGETED = 0.25
TARGETS: dict[str, Callable[[random.Random, list[bytes]], bytes]] = {
    "har": har_issue15, "flows": flows_issue15, "pcap": pcap_issue15, "live": live_issue15,
}  # fmt: skip


GENERATORS: dict[str, tuple[str, Callable[[random.Random, list[bytes]], bytes]]] = {
    "har": (".har", gen_har),
    "pcap": (".pcap", gen_pcap),
    "flows": (".flows", gen_flows),
    "pii": (".har", gen_pii),
    "live": (".live.json", live_issue15),
}


def corpus_for(fmt: str, rng: random.Random) -> list[bytes]:
    if fmt in ("har", "pii"):
        seeds = [json.dumps(har_seed(rng)).encode() for _ in range(6)]
        return seeds + [(CAPTURES / "hostile.har").read_bytes()]
    if fmt == "live":
        return []
    if fmt == "pcap":
        seeds = []
        for lt in (1, 101, 113, 0):
            frames = encode_frames(rng, pcap_packets(rng), lt)
            seeds.append(write_capture(rng, frames, lt))
        full = (CAPTURES / "messenger.pcap").read_bytes()
        return seeds + [full[:40000]]
    data = (CAPTURES / "messenger.flows").read_bytes()
    from mitmproxy.io import tnetstring

    # small seeds: the first few records
    out, pos = [], 0
    chunks = []
    while pos < len(data) and len(chunks) < 40:
        _, rest = tnetstring.pop(memoryview(data[pos:]))
        end = len(data) - len(rest)
        chunks.append(data[pos:end])
        pos = end
    for i in range(0, len(chunks), 4):
        out.append(b"".join(chunks[i : i + 4]))
    return out


# ---------------------------------------------------------------------------------------------
# Worker: one import per request line, a verdict per response line
# ---------------------------------------------------------------------------------------------


def worker(mem_mib: int, workdir: Path) -> None:
    import logging
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (mem_mib << 20, mem_mib << 20))
    logging.disable(logging.CRITICAL)
    from audit.errors import AuditError
    from audit.store import Store
    from audit.traffic.importers import import_file
    from audit.traffic.pii import PiiDetector
    from audit.traffic.profile import load_profile

    detector = PiiDetector(load_profile(CAPTURES / "device.toml"))
    case = workdir / f"case-{os.getpid()}.sqlite"

    def fresh_store() -> tuple[Store, int]:
        """A case file holding an earlier import, whose rows every later import must leave alone."""
        for p in workdir.glob(case.name + "*"):
            p.unlink()
        store = Store(case)
        import_file(CAPTURES / "hostile.har", store, detector=detector)
        return store, int(store.conn.execute("SELECT count(*) FROM connections").fetchone()[0])

    store, seed_rows = fresh_store()
    render_check(CAPTURES / "hostile.har")  # the report's imports (matplotlib, jinja2) before the clock runs
    print(json.dumps({"ready": True}), flush=True)
    for n, line in enumerate(sys.stdin, 1):
        request = json.loads(line)
        path = Path(request["path"])
        t = time.monotonic()
        verdict: dict[str, Any]
        try:
            if path.name.endswith(".live.json"):
                verdict = live_check(path, workdir)
            else:
                import_file(path, store, detector=detector)
                verdict = {"status": "ok"}
                if request.get("render"):
                    verdict = render_check(path) or verdict
        except AuditError as e:
            msg = str(e)
            verdict = {"status": "error", "msg": msg}
            shown = msg.replace(str(path), "FILE")
            if len(shown) > 400 or not shown.isprintable():
                verdict = {"status": "crash", "msg": f"unprintable or huge AuditError message: {shown[:300]!r}",
                           "sig": f"huge message: {shown[:60]}"}  # fmt: skip
            elif request.get("render"):  # a partly read file: what was read is still rendered
                verdict = render_check(path) or verdict
        except BaseException as e:  # noqa: BLE001 - everything else is a finding
            verdict = crash_verdict(e)
        verdict["secs"] = round(time.monotonic() - t, 3)
        try:
            rows = store.conn.execute(
                "SELECT count(*) FROM connections WHERE id <= ?", (seed_rows,)
            ).fetchone()[0]
            if rows != seed_rows:
                verdict.update(
                    status="lost", msg=f"earlier import had {seed_rows} rows, now {rows}", sig="lost"
                )
        except Exception as e:  # noqa: BLE001
            verdict.update(status="lost", msg=f"case file unusable after the import: {e!r}", sig="lost")
        if verdict["status"] == "lost" or n % 200 == 0:  # keep the case file small; before answering,
            store.close()  # so that this does not count against the next input's time
            store, seed_rows = fresh_store()
        print(json.dumps(verdict), flush=True)


def crash_verdict(e: BaseException, stage: str = "") -> dict[str, Any]:
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if "/audit/" in f.filename]
    where = [f"{Path(f.filename).name}:{f.lineno}" for f in (ours[-1:] + frames[-1:])]
    return {"status": "crash", "msg": f"{stage}{type(e).__name__}: {str(e)[:300]}", "tb": traceback.format_exc()[-4000:],
            "sig": f"{stage}{type(e).__name__} at {' / '.join(where)}"}  # fmt: skip


def render_check(path: Path) -> dict[str, Any] | None:
    """The input imported alone into a new case, then every formatter on it as the commands use
    them: the report (HTML with charts and times) and the destinations as JSON, CSV and table.
    None if all of them work."""
    from audit.destinations import CSV_COLUMNS, TABLE_COLUMNS, enricher_for
    from audit.errors import AuditError
    from audit.output import render_rows
    from audit.report.data import collect_report
    from audit.report.html import render_html
    from audit.store import Store
    from audit.traffic.importers import import_file

    with Store(":memory:") as mem:
        try:
            import_file(path, mem)
        except AuditError:
            pass  # said by the import above; what was read is rendered
        try:
            mem.verify()
            if not _ENRICHER:
                _ENRICHER.append(enricher_for(mem))
            r = collect_report(mem, enricher=_ENRICHER[0])
            render_html(r).encode("utf-8")
            rows = [d.to_dict() for d in r.destinations]
            for kind in ("json", "csv", "table"):
                render_rows(rows, kind, CSV_COLUMNS, TABLE_COLUMNS, "none").encode("utf-8")
        except AuditError:
            return None
        except BaseException as e:  # noqa: BLE001 - a formatter crashing on what the store holds
            return crash_verdict(e, "render: ")
    return None


_ENRICHER: list[Any] = []


def live_check(path: Path, workdir: Path) -> dict[str, Any]:
    """The flows of ``path`` through the real recorder (mitmproxy's test context, the writer thread):
    no exception, every good flow stored, the writer still running after the poisoned ones."""
    from mitmproxy.flow import Error
    from mitmproxy.test import taddons, tflow

    from audit.store import Store
    from audit.traffic.addon import Recorder

    spec = json.loads(path.read_text())
    db = workdir / f"live-{os.getpid()}.sqlite"
    for old in workdir.glob(db.name + "*"):
        old.unlink()
    r = Recorder(writer="thread")
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_app="fuzz", audit_flush_interval=20)
        for f in spec:
            fl = tflow.tflow(resp=True)
            fl.request.host, fl.request.path, fl.request.method = f["host"], f["path"], f["method"]
            fl.server_conn.peername = ("10.0.0.1", 443)
            for k, v in f["headers"]:
                fl.request.headers[k] = v
            if f["body"]:
                fl.request.raw_content = f["body"].encode("utf-8", "surrogateescape")
            if "error" in f:
                fl.error = Error(f["error"])
            if "time" in f:
                fl.request.timestamp_start = f["time"]
            r.response(fl)
        writer = r.writer
        r.done()
    with Store(db) as st:
        paths = {c.path for _, c in st.connections()}
    good = {f["path"] for f in spec if not f["poisoned"]}
    if not good <= paths:
        return {
            "status": "lost",
            "msg": f"good flows not stored: {sorted(good - paths)[:5]}",
            "sig": "live: good flow lost",
        }
    stats = getattr(writer, "stats", None)
    return {"status": "ok", "msg": f"skipped {getattr(stats, 'skipped', '?')}"}


class Runner:
    """One worker process; restarted after a hang or a death."""

    def __init__(self, mem: int, timeout: float, workdir: Path) -> None:
        self.mem, self.timeout, self.workdir = mem, timeout, workdir
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--mem", str(self.mem), "--workdir", str(self.workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        if not ready or not self.proc.stdout.readline():
            raise RuntimeError("fuzz worker did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, path: Path, render: bool = False) -> dict[str, Any]:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        t = time.monotonic()
        self.proc.stdin.write(json.dumps({"path": str(path), "render": render}) + "\n")
        self.proc.stdin.flush()
        # a rendered input also builds a report (charts): three times the limit
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout * (3 if render else 1))
        line = self.proc.stdout.readline() if ready else ""
        if line:
            v: dict[str, Any] = json.loads(line)
            return v
        rc = self.proc.poll()
        self.stop()
        secs = time.monotonic() - t
        if rc is None:
            return {"status": "hang", "msg": f"no answer in {self.timeout:.0f} s", "secs": secs}
        return {"status": "crash", "msg": f"worker died with exit status {rc} (memory cap {self.mem} MiB?)",
                "secs": secs, "sig": f"worker died ({rc})"}  # fmt: skip


FORMATS = "har,pcap,flows,pii,live"


def run(
    cases: int,
    seed: int = 1,
    *,
    only: str = FORMATS,
    jobs: int = 2,
    timeout: float = 10,
    mem: int = 2048,
    seconds: float = 0.0,
    render: float = 0.03,
    quiet: bool = False,
) -> FuzzResult:
    """``cases`` inputs split between the formats of ``only`` (``random.Random(f"{seed}-{fmt}")`` each:
    the same seed gives the same inputs), ``jobs`` worker processes. A share :data:`TARGETED` of each
    format's inputs is its issue-15 target (:data:`TARGETS`); those, and a share ``render`` of the
    others, are also rendered (report, destinations) from a case of their own. ``seconds`` > 0 also
    stops each format after its share of that time."""
    import concurrent.futures as cf
    import threading

    formats = [f for f in only.split(",") if f]
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fuzz"))
    local = threading.local()
    runners: list[Runner] = []
    lock = threading.Lock()
    result = FuzzResult("fuzz_import", seed)
    start = time.monotonic()

    def runner() -> Runner:
        if not hasattr(local, "r"):
            local.r = Runner(mem, timeout, work)
            with lock:
                runners.append(local.r)
        r: Runner = local.r
        return r

    flagged: list[tuple[str, dict[str, Any], Path]] = []
    try:
        for fi, fmt in enumerate(formats):
            ext, gen = GENERATORS[fmt]
            rng = random.Random(f"{seed}-{fmt}")
            corpus = corpus_for(fmt, rng)
            quota = cases // len(formats) + (1 if fi < cases % len(formats) else 0)
            deadline = time.monotonic() + seconds / len(formats) if seconds else float("inf")
            counts: Counter[str] = Counter()
            n = 0

            def one(
                i: int, data: bytes, rendered: bool, fmt: str = fmt, ext: str = ext
            ) -> tuple[int, dict[str, Any], Path]:
                p = work / f"{fmt}-{i}{ext}"
                p.write_bytes(data)
                v = runner().run(p, rendered)
                return i, v, p

            with cf.ThreadPoolExecutor(jobs) as pool:
                pending: set[cf.Future[tuple[int, dict[str, Any], Path]]] = set()
                while (n < quota and time.monotonic() < deadline) or pending:
                    while n < quota and time.monotonic() < deadline and len(pending) < jobs * 2:
                        targeted = fmt in TARGETS and (fmt == "live" or rng.random() < TARGETED)
                        try:
                            data = (TARGETS[fmt] if targeted else gen)(rng, corpus)
                        except Exception as e:  # noqa: BLE001 - a generator bug must not stop the run
                            print(f"generator error ({fmt}): {e!r}", file=sys.stderr)
                            n += 1
                            continue
                        counts["targeted" if targeted else "random"] += 1
                        rendered = fmt != "live" and (targeted or rng.random() < render)
                        counts["rendered"] += rendered
                        pending.add(pool.submit(one, n, data, rendered))
                        n += 1
                    if not pending:
                        break
                    finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for fut in finished:
                        i, v, p = fut.result()
                        status = {"crash": "exception"}.get(v["status"], v["status"])
                        sig = result.add(status, f"{fmt}: {v.get('sig') or ''}".rstrip(": "), v.get("tb") or v.get("msg", ""),
                                         float(v.get("secs", 0)))  # fmt: skip
                        counts[v["status"]] += 1
                        if v["status"] in ("ok", "error") and float(v.get("secs", 0)) > timeout / 4:
                            shutil.copy(p, OUT / f"slow-{p.name}")
                        if sig is not None and result.findings[sig] <= 3:
                            keep = OUT / p.name
                            shutil.copy(p, keep)
                            flagged.append((sig, v, keep))
                            print(
                                f"[{v['status']}] {keep} ({keep.stat().st_size} bytes): {v.get('msg', '')[:200]}",
                                flush=True,
                            )
                        p.unlink(missing_ok=True)
            result.outcomes.update({f"{fmt} {k}": c for k, c in counts.items()})
            if not quiet:
                print(f"{fmt}: {n} inputs {dict(counts)}", flush=True)
    finally:
        for r in runners:
            r.stop()
        shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.monotonic() - start
    return result


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap, cases=2500)
    ap.add_argument(
        "--seconds", type=float, default=0.0, help="also stop after this long, split between the formats"
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--mem", type=int, default=2048, help="address-space cap per worker, MiB")
    ap.add_argument("--only", default=FORMATS)
    ap.add_argument(
        "--render", type=float, default=0.03, help="share of the untargeted inputs also rendered (0.03)"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.mem, args.workdir)
        return 0
    result = run(args.cases, args.seed, only=args.only, jobs=args.jobs, timeout=args.timeout, mem=args.mem,
                 seconds=args.seconds, render=args.render)  # fmt: skip
    return finish(result, args.json_out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
