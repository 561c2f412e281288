"""An import's records read in a forked child process while this process detects and stores them.

A big HAR's import is two halves of about the same CPU time (issue 15: 200,000 entries): reading
(the JSON of each entry, the record built from it by the one builder, :func:`storable` and
:func:`checked`) and the rest (data detection and the case file's rows). In one process they take
their sum; here the reading runs in a child forked for it and this process takes each batch of
records as the child finishes it, so the two halves overlap on two CPUs. Detection turned out to be
the larger half (docs/reliability.md), so when this process falls behind (more than half of the
pipe's buffer unread) the child detects the next batch itself, with the same detector object, and
says so in the batch's header: the findings are the same whichever process found them.

The child runs the very same iteration (the importer object and everything it needs are inherited
through ``fork``) and sends its records in file order, in batches, over a pipe; when it is done it
sends what the iteration knows only at its end (the importer's warnings, the records it left out:
:meth:`Source.state`), which :meth:`Source.restore` puts back here. Records travel as their
instance dicts (a connection's request content and findings as theirs) in ``marshal``'s format
(several times cheaper than pickling the dataclasses, and the records here are equal to the
child's: ``marshal`` writes exactly the dicts, str, bytes, numbers and tuples a record holds, and
reads the dicts back in C, which rebuilding them from tuples of field values here did not); a
batch ``marshal`` cannot write goes pickled.

Faults stay where they were: an exception while reading (an :class:`~audit.errors.ImportFormatError`
naming the entry) is raised here, after the records before it, as the reading would have raised it
in this process; a child that dies without finishing (killed, out of memory) is an
``ImportFormatError`` saying so. Either way the import's transaction is rolled back and the case file
keeps what it had. The child ignores Ctrl-C (this process handles it, stops the child and rolls
back) and exits when this process goes away (its next write finds the pipe closed).
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import fcntl
import marshal
import operator
import os
import pickle
import signal
import struct
import termios
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO, Protocol, TypeVar

from audit.errors import ImportFormatError
from audit.forking import fork_is_safe
from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.traffic.importers.base import Detector
from audit.traffic.importers.detection import detected
from audit.traffic.records import record_from_dict

#: Files at least this big are read in a child (a process start costs a few milliseconds; below
#: this size the overlap gains less than it costs, docs/reliability.md).
READER_MIN_BYTES = 16 << 20
#: Records per message, or fewer when their URLs and bodies make :data:`BATCH_BYTES`.
BATCH = 500
BATCH_BYTES = 4 << 20
#: The pipe's buffer, so that the child can run a batch or two ahead (Linux; the default is 64 KiB).
PIPE_BYTES = 1 << 20

_HEAD = struct.Struct("!c?Q")
_RECORDS, _PICKLED, _DONE, _ERROR = b"R", b"P", b"D", b"E"

_DNS_FIELDS = tuple(f.name for f in dataclasses.fields(DnsRecord))
_dns_fields = operator.attrgetter(*_DNS_FIELDS)


class Source(Protocol):
    """What is read in the child: an iteration of records, and the state it leaves behind."""

    def __iter__(self) -> Iterator[Connection | DnsRecord]: ...

    def state(self) -> object:
        """What the iteration found out (warnings, counts), once it is done: sent back pickled."""
        ...

    def restore(self, state: object) -> None:
        """Take the child's :meth:`state` as if the iteration had run here."""
        ...


def _pack(item: Connection | DnsRecord) -> tuple[bool, Any]:
    if type(item) is not Connection:
        return False, _dns_fields(item)
    # A copy of the instance dict (never one dict for two records), with the request content and
    # the findings as their instance dicts too: marshal writes dicts, and reads them back in C.
    fields = dict(vars(item))
    request, findings = fields["request"], fields["findings"]
    if request is not None:
        fields["request"] = vars(request)
    if findings:
        fields["findings"] = tuple(vars(f) for f in findings)
    return True, fields


_T = TypeVar("_T")


def _record(cls: type[_T], names: tuple[str, ...], values: tuple[Any, ...]) -> _T:
    """A record from its field values as ``pickle`` makes one (:func:`record_from_dict`: half the
    cost of this process's share). The builder made it in the child."""
    return record_from_dict(cls, dict(zip(names, values, strict=True)))


def _unpack(packed: tuple[bool, Any]) -> Connection | DnsRecord:
    is_connection, values = packed
    if not is_connection:
        return _record(DnsRecord, _DNS_FIELDS, values)
    fields: dict[str, Any] = values  # a fresh dict, just read: the record's own
    request, findings = fields["request"], fields["findings"]
    if request is not None:
        fields["request"] = record_from_dict(HttpRequestData, request)
    if findings:
        fields["findings"] = tuple(record_from_dict(DataFinding, f) for f in findings)
    return record_from_dict(Connection, fields)


def _size(item: Connection | DnsRecord) -> int:
    request = getattr(item, "request", None)
    return len(request.url) + len(request.body) if request is not None else 0


def _send(out: BinaryIO, kind: bytes, data: bytes, detected_here: bool = False) -> None:
    out.write(_HEAD.pack(kind, detected_here, len(data)))
    out.write(data)


def _send_records(out: BinaryIO, batch: list[Connection | DnsRecord], detector: Detector | None) -> None:
    """One batch, with its findings when ``detector`` is given (the parent is behind)."""
    if detector is not None:
        batch = list(detected(batch, detector))
    kind, data = _batch([_pack(item) for item in batch])
    _send(out, kind, data, detector is not None)


def _backlog(fd: int) -> int:
    """Bytes written to the pipe ``fd`` that the parent has not read yet (0 when unknown)."""
    count = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, count)
    except OSError:
        return 0
    return count[0]


def _batch(packed: list[tuple[bool, Any]]) -> tuple[bytes, bytes]:
    try:
        return _RECORDS, marshal.dumps(packed)
    except ValueError:  # a field of a type marshal does not write (another importer's record)
        return _PICKLED, pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)


def _child(source: Source, out: BinaryIO, detector: Detector | None, behind: Callable[[], bool]) -> None:
    """The child's whole life: read, send, report the end (or the exception). A batch gets its
    findings here when the parent is ``behind`` (more than half the pipe's buffer unread)."""
    batch: list[Connection | DnsRecord] = []
    size = 0
    try:
        try:
            for item in source:
                batch.append(item)
                size += _size(item)
                if len(batch) >= BATCH or size >= BATCH_BYTES:
                    _send_records(out, batch, detector if detector is not None and behind() else None)
                    batch, size = [], 0
            if batch:
                _send_records(out, batch, detector if detector is not None and behind() else None)
            _send(out, _DONE, pickle.dumps(source.state(), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            raise  # the pipe: the parent is gone or stopped reading
        except BaseException as e:
            try:
                data = pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # an exception that does not pickle: its type and text, as far as they go
                data = pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))
            _send(out, _ERROR, data)
        out.flush()
    except OSError:
        pass


def _read_exactly(f: BinaryIO, n: int) -> bytes | None:
    data = f.read(n)
    return data if len(data) == n else None


def _ended(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


def read_in_child(
    source: Source, *, name: str, detector: Detector | None = None
) -> Generator[Connection | DnsRecord, None, None]:
    """The records of ``source`` in order, read in a forked child (``name``: the file, for the
    message when the child dies), each HTTP connection with the findings of ``detector``: found
    here, or in the child for the batches it sends while this process is behind. The caller has
    checked :func:`can_read_in_child`."""
    r, w = os.pipe()
    with contextlib.suppress(OSError):  # a smaller buffer is fine
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    try:
        half = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) // 2
    except OSError:
        half = 1 << 62  # never behind: all detection here
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage does not follow os.fork)
        code = 0
        try:
            os.close(r)  # else the pipe never breaks when the parent is gone
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # whatever handler the parent had
            with os.fdopen(w, "wb", buffering=1 << 16) as out:
                _child(source, out, detector, lambda: _backlog(w) >= half)
        except BaseException:
            code = 1
        finally:
            os._exit(code)  # never the parent's code, exit handlers or the case file's connection
    os.close(w)
    ended = False
    try:
        with os.fdopen(r, "rb") as f:
            while True:
                head = _read_exactly(f, _HEAD.size)
                data = None
                if head is not None:
                    kind, detected_there, n = _HEAD.unpack(head)
                    data = _read_exactly(f, n)
                if data is None:
                    ended = True
                    _, status = os.waitpid(pid, 0)
                    raise ImportFormatError(
                        f"{name}: the process reading the file stopped before its end ({_ended(status)}); "
                        "nothing of the file was imported"
                    )
                if kind in (_DONE, _ERROR):
                    ended = True  # the child exits by itself
                if kind in (_RECORDS, _PICKLED):
                    records = map(_unpack, marshal.loads(data) if kind == _RECORDS else pickle.loads(data))
                    yield from (
                        records if detector is None or detected_there else detected(records, detector)
                    )
                elif kind == _DONE:
                    source.restore(pickle.loads(data))
                    return
                else:
                    raise pickle.loads(data)  # the reading's own exception, as it would have come here
    finally:
        if not ended:  # stopped early (an exception here, Ctrl-C): the child goes too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):  # already waited for
            os.waitpid(pid, 0)


def can_read_in_child() -> bool:
    """``fork`` and Linux pipe sizes, a second CPU for the child, and neither another thread (a fork
    may inherit a lock it holds) nor ``AUDIT_NO_FORK`` (batch workers, as for the scanner's fork)."""
    return fork_is_safe() and hasattr(fcntl, "F_GETPIPE_SZ") and (os.cpu_count() or 1) > 1
