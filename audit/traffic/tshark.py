"""tshark as the optional backend that decrypts TLS in captures (issue 17).

We do not write a TLS stack: Wireshark's dissectors decrypt TLS 1.2/1.3 with an NSS key log (a
``--keylog`` file, ``-o tls.keylog_file:``) or the capture's own Decryption Secrets Blocks (read by
tshark itself since Wireshark 3.0), reassemble TCP, and dissect HTTP/1.1 and HTTP/2. A small Lua tap
(:data:`TAP`, run with ``tshark -q -X lua_script:``) prints one tab-separated line per event, every
free-form value hex-encoded except bodies: a line gives their lengths and the bodies follow its
newline as they are (hex-encoding 40 MB of bodies cost tshark a tenth of its time). This module
reads tshark's output as a stream, record by record, and keeps only requests in flight in memory:

* ``CH``: a ClientHello's client random (which connections the key log has keys for);
* ``H1``: an HTTP/1.x message, its head (request line or status line and headers) and body (the
  first :data:`BODY_LIMIT` bytes, still content-encoded: ``http.decompress_body`` is off; requests
  only) with the body's full length;
* ``H2``: the HTTP/2 frames of a packet: types, stream ids, flags, lengths, header-block sizes,
  header names and values, DATA payload lengths, then the payloads (the client's only).

:func:`requests` turns them into :class:`DecryptedRequest` objects (request with the status and
size of its response). tshark is looked up on PATH (:func:`find_tshark`); when it is missing or too
old, :func:`tshark_problem` says what to install. QUIC is decrypted by tshark too where its
dissector supports it, but HTTP/3 content is not read here (Wireshark 4.0 does not decode QPACK
without nghttp3): such connections stay ``inspected: false``.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from audit.errors import ImportFormatError
from audit.names import normalize_ip

log = logging.getLogger(__name__)

#: DSB support (and the Lua API used here) arrived in Wireshark 3.0.
MIN_VERSION = (3, 0)
#: Request bytes kept per request: one more than ``records.MAX_BODY`` so that the builder marks a
#: longer body as cut.
BODY_LIMIT = 64 * 1024 + 1
#: Requests held while waiting for their answer, per HTTP/1 connection (x 32 HTTP/2 streams in all):
#: beyond it the oldest goes out without one, so memory stays bounded whatever the capture.
MAX_WAITING = 32

TAP = r"""
local f_http = Field.new("http")
local f_file = Field.new("http.file_data")
local f_type = Field.new("http2.type")
local f_sid = Field.new("http2.streamid")
local f_flags = Field.new("http2.flags")
local f_len = Field.new("http2.length")
local f_count = Field.new("http2.header.count")
local f_name = Field.new("http2.header.name")
local f_value = Field.new("http2.header.value")
local f_data = Field.new("http2.data.data")
local f_hs = Field.new("tls.handshake.type")
local f_random = Field.new("tls.handshake.random")
local f_stream = Field.new("tcp.stream")
local LIMIT = %(limit)d
-- tcp.stream -> "address:port" of the side that sent a request (:method): DATA the other side
-- sends is only counted, never printed (half the output of a capture)
local clients = {}

local function hex(s)
  return tostring(ByteArray.new(s, true))
end

-- the first bytes of a field (at most limit), nil when it has none
local function first(fi, limit)
  local r = fi.range
  if r == nil then return nil end
  local n = r:len()
  if n > limit then n = limit end
  if n <= 0 then return nil end
  return r:range(0, n)
end

-- ... as they are, hex-encoded, or as a string (NULs cut it short: for finding the end of a head)
local function raw(fi, limit) local r = first(fi, limit) return r and r:raw() or "" end
local function hexof(fi, limit) local r = first(fi, limit) return r and tostring(r:bytes()) or "" end
local function text(fi, limit) local r = first(fi, limit) return r and r:string() or "" end

local function values(f, conv)
  local out = {}
  for i, fi in ipairs({f()}) do out[i] = conv(fi) end
  return table.concat(out, ",")
end

local tap = Listener.new("frame", "http or http2 or tls.handshake.type == 1")

function tap.packet(pinfo, tvb)
  local where = string.format("%%.9f\t%%s\t%%d\t%%s\t%%d", pinfo.abs_ts, tostring(pinfo.src), pinfo.src_port,
    tostring(pinfo.dst), pinfo.dst_port)
  local hs = {f_hs()}
  if #hs > 0 then
    local randoms = {f_random()}
    for i, t in ipairs(hs) do
      if t.value == 1 and randoms[1] ~= nil then
        io.write("CH\t", where, "\t", hexof(randoms[1], 32), "\n")
        break
      end
    end
  end
  local https = {f_http()}
  if #https > 0 then
    local files = {f_file()}
    for i, h in ipairs(https) do
      -- the item may span the body too: print the head only (up to the blank line)
      local head = text(h, 4096)
      local cut = string.find(head, "\r\n\r\n", 1, true)
      if cut == nil and #head == 4096 then -- a long head: look further
        head = text(h, LIMIT)
        cut = string.find(head, "\r\n\r\n", 1, true)
      end
      local n = cut and (cut + 3) or #head
      if n > LIMIT then n = LIMIT end
      local hx = (h.range and n > 0) and tostring(h.range:range(0, n):bytes()) or ""
      local body, size = "", 0
      local fd = nil
      if #files == #https then fd = files[i] elseif #https == 1 then fd = files[1] end
      if fd ~= nil and fd.range ~= nil then
        size = fd.range:len()
        -- a response: its size is enough
        if string.sub(head, 1, 5) ~= "HTTP/" then body = raw(fd, LIMIT) end
      end
      io.write("H1\t", where, "\t", hx, "\t", #body, "\t", size, "\n", body)
    end
  end
  local types = {f_type()}
  if #types > 0 then
    local n = function(fi) return tostring(fi.value) end
    local s = function(fi) return hex(tostring(fi.value)) end
    local st = f_stream()
    local sk = st and tostring(st.value) or ""
    local me = tostring(pinfo.src) .. ":" .. pinfo.src_port
    for _, fi in ipairs({f_name()}) do
      if fi.value == ":method" then clients[sk] = me break end
    end
    local sizes, payloads = {}, {}
    if clients[sk] == nil or clients[sk] == me then
      for i, fi in ipairs({f_data()}) do
        payloads[i] = raw(fi, LIMIT)
        sizes[i] = #payloads[i]
      end
    end
    io.write("H2\t", where, "\t", values(f_type, n), "\t", values(f_sid, n), "\t", values(f_flags, n), "\t",
      values(f_len, n), "\t", values(f_count, n), "\t", values(f_name, s), "\t", values(f_value, s), "\t",
      table.concat(sizes, ","), "\n", table.concat(payloads))
  end
end
"""


@dataclass(frozen=True)
class Tshark:
    """A tshark found on PATH."""

    path: str
    version: tuple[int, ...]


@functools.lru_cache(maxsize=1)
def _probe(path: str) -> tuple[tuple[int, ...], bool] | None:
    try:
        out = subprocess.run([path, "-v"], capture_output=True, timeout=60, check=False).stdout.decode(
            "utf-8", "replace"
        )
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)(?:\.(\d+))?", out)
    if m is None:
        return None
    version = tuple(int(g) for g in m.groups() if g is not None)
    return version, "with Lua" in out


def find_tshark() -> Tshark | None:
    """tshark on PATH if it is recent enough (:data:`MIN_VERSION`) and runs Lua, else None."""
    path = shutil.which("tshark")
    if path is None:
        return None
    probed = _probe(path)
    if probed is None or probed[0] < MIN_VERSION or not probed[1]:
        return None
    return Tshark(path, probed[0])


def tshark_problem() -> str:
    """Why :func:`find_tshark` found nothing, as a user can act on it."""
    path = shutil.which("tshark")
    if path is None:
        return "tshark is not on PATH (install Wireshark's tshark, Debian/Ubuntu package 'tshark')"
    probed = _probe(path)
    if probed is None:
        return f"{path} -v does not say which Wireshark it is"
    version, lua = probed
    if version < MIN_VERSION:
        return f"{path} is Wireshark {'.'.join(map(str, version))}; decryption needs Wireshark 3.0 or later"
    if not lua:
        return f"{path} was built without Lua, which the decryption tap needs"
    return "tshark is usable"


# --------------------------------------------------------------------------------------------
# Key logs
# --------------------------------------------------------------------------------------------

_KEYLOG_LABELS = frozenset({
    "CLIENT_RANDOM", "CLIENT_EARLY_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
})  # fmt: skip


def keylog_randoms(text: bytes) -> set[str]:
    """The client randoms (lowercase hex) an NSS key log has secrets for; other lines are ignored."""
    out: set[str] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].decode("ascii", "replace") in _KEYLOG_LABELS and len(parts[1]) == 64:
            out.add(parts[1].decode("ascii", "replace").lower())
    return out


# --------------------------------------------------------------------------------------------
# Running the tap and assembling requests
# --------------------------------------------------------------------------------------------

Endpoint = tuple[str, int]
#: (client IP, client port, server IP, server port) of a TCP connection.
ConnKey = tuple[str, int, str, int]


@dataclass
class DecryptedRequest:
    """One HTTP request read from decrypted TLS, with what its response said."""

    ts: float
    key: ConnKey
    method: str
    scheme: str
    authority: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    http_version: str
    head_size: int
    body_size: int
    status: int | None = None
    response_content_type: str | None = None
    bytes_in: int = 0
    end_ts: float | None = None
    head: bytes = b""
    """The HTTP/1 request head as sent (HTTP/2: empty)."""


@dataclass
class _Stream:
    ts: float
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    body_size: int = 0
    head_size: int = 0
    request: DecryptedRequest | None = None


class Decryption:
    """One tshark run over a capture; iterate :meth:`requests`, then read :attr:`client_randoms`."""

    def __init__(self, tshark: Tshark, capture: Path, keylog: Path | None = None) -> None:
        self.tshark = tshark
        self.capture = capture
        self.keylog = keylog
        self.client_randoms: dict[ConnKey, str] = {}
        """Client random of each TLS connection's ClientHello (lowercase hex)."""
        self.failed: str | None = None
        """tshark's complaint when it exited with an error."""
        self._h1: dict[ConnKey, deque[DecryptedRequest]] = {}
        self._h2: dict[tuple[ConnKey, int], _Stream] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._out: IO[bytes] | None = None
        self._err: IO[bytes] | None = None

    def command(self, tap: Path) -> list[str]:
        args = [self.tshark.path, "-n", "-q", "-r", str(self.capture), "-X", f"lua_script:{tap}",
                "-o", "http.decompress_body:FALSE", "-o", "tcp.desegment_tcp_streams:TRUE"]  # fmt: skip
        if self.keylog is not None:
            args += ["-o", f"tls.keylog_file:{self.keylog}"]
        return args

    def start(self) -> None:
        """Start tshark, writing the tap's lines to a temporary file, so that it runs while this
        process reads the capture itself; :meth:`requests` follows the file."""
        if self._proc is not None:
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="audit-tshark-")
        tap = Path(self._tmp.name) / "tap.lua"
        tap.write_text(TAP % {"limit": BODY_LIMIT})
        out = Path(self._tmp.name) / "tap.out"
        self._out = out.open("wb")
        self._err = (Path(self._tmp.name) / "tap.err").open("w+b")
        self._proc = subprocess.Popen(
            self.command(tap), stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL
        )

    def close(self) -> None:
        """Stop tshark if it still runs and remove its files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        self._proc = self._out = self._err = self._tmp = None

    def requests(self) -> Iterator[DecryptedRequest]:
        """The decrypted requests, as tshark finds them (started here unless :meth:`start` was called)."""
        self.start()
        assert self._proc is not None and self._tmp is not None and self._err is not None
        try:
            with (Path(self._tmp.name) / "tap.out").open("rb") as out:
                buf = bytearray()
                while True:
                    done = self._proc.poll() is not None  # asked before reading: that read gets the end
                    chunk = out.read(1 << 20)
                    if chunk:
                        buf += chunk
                        finished, used = self.records(buf)
                        del buf[:used]
                        yield from finished
                    elif done:
                        break
                    else:
                        time.sleep(0.02)
                if buf:  # tshark stopped mid-record: its line, with what follows it
                    line, _, payload = bytes(buf).partition(b"\n")
                    yield from self._line(line, payload)
            status = self._proc.wait()
            if status != 0:
                self._err.seek(0)
                text = self._err.read(4000).decode("utf-8", "replace")
                found = [ln for ln in text.splitlines() if ln.strip() and "Running as user" not in ln]
                self.failed = f"tshark exited with status {status}: {found[0] if found else 'no message'}"
            yield from self._rest()
        finally:
            self.close()

    # -- events -----------------------------------------------------------------------------

    def records(self, buf: bytes | bytearray) -> tuple[list[DecryptedRequest], int]:
        """The requests that the complete records at the start of the tap's output ``buf`` finish,
        and how many bytes of ``buf`` those records take (the rest is an unfinished record)."""
        out: list[DecryptedRequest] = []
        pos = 0
        while (nl := buf.find(b"\n", pos)) >= 0:
            line = bytes(buf[pos:nl])
            need = _payload_size(line)
            if nl + 1 + need > len(buf):
                break
            out += self._line(line, bytes(buf[nl + 1 : nl + 1 + need]))
            pos = nl + 1 + need
        return out, pos

    def _line(self, raw: bytes, payload: bytes = b"") -> Iterable[DecryptedRequest]:
        """The requests one record (its line and the bodies after it) finishes."""
        parts = raw.rstrip(b"\n").split(b"\t")
        if len(parts) < 6:
            return ()
        kind = parts[0]
        try:
            ts = float(parts[1])
            src, dst = _ip(parts[2]), _ip(parts[4])
            sport, dport = int(parts[3]), int(parts[5])
        except ValueError:
            return ()
        if kind == b"CH" and len(parts) >= 7:
            self.client_randoms[(src, sport, dst, dport)] = parts[6].decode("ascii", "replace").lower()
            return ()
        if kind == b"H1" and len(parts) >= 9:
            return self._h1_message(ts, (src, sport), (dst, dport), parts[6:9], payload)
        if kind == b"H2" and len(parts) >= 14:
            return self._h2_frames(ts, (src, sport), (dst, dport), parts[6:14], payload)
        return ()

    def _h1_message(
        self, ts: float, src: Endpoint, dst: Endpoint, parts: list[bytes], body: bytes
    ) -> Iterable[DecryptedRequest]:
        try:
            head, size = bytes.fromhex(parts[0].decode()), int(parts[2])
        except ValueError:
            return ()
        end = head.find(b"\r\n\r\n")
        if end >= 0:  # the item may span the body too when both are in one buffer
            head = head[: end + 4]
        if head.startswith(b"HTTP/"):  # a response: to the oldest request waiting on this connection
            waiting = self._h1.get((dst[0], dst[1], src[0], src[1]))
            if not waiting:
                return ()
            req = waiting.popleft()
            req.status = _status(head)
            req.bytes_in, req.end_ts = len(head) + size, ts
            req.response_content_type = _header(head, b"content-type")
            return (req,)
        line_end = head.find(b"\r\n")
        first = head[: line_end if line_end >= 0 else len(head)].decode("latin-1")
        method, _, rest = first.partition(" ")
        target, _, version = rest.rpartition(" ")
        if not method or not target:
            return ()
        req = DecryptedRequest(ts=ts, key=(src[0], src[1], dst[0], dst[1]), method=method, scheme="https",
                               authority="", target=target, headers=(), body=body, http_version=version or "HTTP/1.1",
                               head_size=len(head), body_size=size, head=head)  # fmt: skip
        waiting = self._h1.setdefault(req.key, deque())
        waiting.append(req)
        if len(waiting) > MAX_WAITING:  # a hostile or one-sided capture: answers that never come
            return (waiting.popleft(),)
        return ()

    def _h2_frames(
        self, ts: float, src: Endpoint, dst: Endpoint, parts: list[bytes], payload: bytes
    ) -> Iterable[DecryptedRequest]:
        try:
            types, sids, flags, lengths = (_ints(p) for p in parts[:4])
            counts = _ints(parts[4])
            names = [bytes.fromhex(x.decode()).decode("utf-8", "replace") for x in parts[5].split(b",") if x]
            values = (
                [bytes.fromhex(x.decode()).decode("utf-8", "replace") for x in parts[6].split(b",")]
                if names
                else []
            )
            sizes = _ints(parts[7])
        except ValueError:
            return ()
        data: list[bytes] = []
        at = 0
        for n in sizes:
            data.append(payload[at : at + n])
            at += n
        if not (len(types) == len(sids) == len(flags) == len(lengths)):
            return ()
        if len(values) != len(names):
            values = (values + [""] * len(names))[: len(names)]
        # Header blocks (HEADERS, PUSH_PROMISE) in frame order, each its count of name/value pairs.
        header_frames = [i for i, t in enumerate(types) if t in (1, 5)]
        blocks: dict[int, list[tuple[str, str]]] = {}
        if len(counts) == len(header_frames):
            pos = 0
            for i, n in zip(header_frames, counts, strict=True):
                blocks[i] = list(zip(names[pos : pos + n], values[pos : pos + n], strict=True))
                pos += n
        elif header_frames:
            blocks[header_frames[0]] = list(zip(names, values, strict=True))
        data_frames = [i for i, t in enumerate(types) if t == 0 and lengths[i] > 0]
        payloads = dict(zip(data_frames, data, strict=False)) if len(data) == len(data_frames) else {}
        out: list[DecryptedRequest] = []
        fwd, rev = (src[0], src[1], dst[0], dst[1]), (dst[0], dst[1], src[0], src[1])
        for i, kind in enumerate(types):
            sid, end = sids[i], bool(flags[i] & 1)
            if sid == 0 or kind not in (0, 1):
                continue
            headers = blocks.get(i, [])
            if kind == 1 and any(k == ":method" for k, _ in headers):
                old = self._h2.pop((fwd, sid), None)  # a stream id used again: the old one is done
                if old is not None:
                    out.append(old.request or _h2_request(old, fwd))
                if len(self._h2) >= MAX_WAITING * 32:
                    (oldest_key, oldest) = next(iter(self._h2.items()))
                    del self._h2[oldest_key]
                    out.append(oldest.request or _h2_request(oldest, oldest_key[0]))
                self._h2[(fwd, sid)] = _Stream(ts, headers, head_size=lengths[i])
                stream, client_side, key = self._h2[(fwd, sid)], True, fwd
            elif (fwd, sid) in self._h2:
                stream, client_side, key = self._h2[(fwd, sid)], True, fwd
            elif (rev, sid) in self._h2:
                stream, client_side, key = self._h2[(rev, sid)], False, rev
            else:
                continue
            if client_side:
                if kind == 0:
                    stream.body_size += lengths[i]
                    room = BODY_LIMIT - len(stream.body)
                    if room > 0:
                        stream.body += payloads.get(i, b"")[:room]
                if end and stream.request is None:
                    stream.request = _h2_request(stream, key)
            else:
                if stream.request is None:  # the server answered before the client's END_STREAM
                    stream.request = _h2_request(stream, key)
                req = stream.request
                req.bytes_in += lengths[i]
                req.end_ts = ts
                if kind == 1:
                    status = next((v for k, v in headers if k == ":status"), None)
                    if status is not None and status.isdigit() and req.status is None:
                        req.status = int(status)
                    req.response_content_type = req.response_content_type or next(
                        (v for k, v in headers if k == "content-type"), None
                    )
                if end:
                    del self._h2[(key, sid)]
                    out.append(req)
        return out

    def _rest(self) -> Iterator[DecryptedRequest]:
        """Requests still waiting for a response when the capture ended."""
        for waiting in self._h1.values():
            yield from waiting
        self._h1 = {}
        for (key, _), stream in sorted(self._h2.items(), key=lambda kv: kv[1].ts):
            yield stream.request or _h2_request(stream, key)
        self._h2 = {}


def _h2_request(stream: _Stream, key: ConnKey) -> DecryptedRequest:
    pseudo = {k: v for k, v in stream.headers if k.startswith(":")}
    headers = tuple((k, v) for k, v in stream.headers if not k.startswith(":"))
    return DecryptedRequest(
        ts=stream.ts, key=key, method=pseudo.get(":method", "GET"), scheme=pseudo.get(":scheme", "https"),
        authority=pseudo.get(":authority", ""), target=pseudo.get(":path", "/"), headers=headers,
        body=bytes(stream.body), http_version="HTTP/2.0", head_size=stream.head_size, body_size=stream.body_size,
    )  # fmt: skip


def _ints(field_: bytes) -> list[int]:
    return [int(x, 0) for x in field_.split(b",") if x]


def _payload_size(line: bytes) -> int:
    """How many bytes of bodies follow a record's line: an H1 line's body length, the sum of an H2
    line's DATA lengths; 0 for other lines and for lengths that are not numbers from 0 to
    :data:`BODY_LIMIT` (a damaged line takes nothing after it)."""
    if line.startswith(b"H1\t"):
        parts = line.split(b"\t", 9)
        fields = parts[7:8] if len(parts) >= 9 else []
    elif line.startswith(b"H2\t"):
        parts = line.split(b"\t")
        fields = parts[13].split(b",") if len(parts) >= 14 and parts[13] else []
    else:
        return 0
    total = 0
    for f in fields:
        if not f.isdigit() or int(f) > BODY_LIMIT:
            return 0
        total += int(f)
    return total


def _ip(raw: bytes) -> str:
    text = raw.decode("ascii", "replace")
    return normalize_ip(text) or text


def _status(head: bytes) -> int | None:
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and len(parts[1]) == 3 else None


def _header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def check_keylog(path: Path) -> bytes:
    """The text of a key log file; :class:`ImportFormatError` when it cannot be read or holds no key."""
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ImportFormatError(f"{path}: cannot read the key log ({e.strerror or e})") from e
    if not keylog_randoms(text):
        raise ImportFormatError(
            f"{path}: not an NSS key log (no CLIENT_RANDOM or TLS 1.3 *_TRAFFIC_SECRET line with a 32-byte client random)"
        )
    return text
