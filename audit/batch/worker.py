"""Where one batch scan runs: a single-threaded helper process that forks a child per scan.

The same function, :func:`scan_task`, runs every scan of ``audit batch``: in a thread of the local
pool, or in a Dask worker. It hands the path to a helper process of its own (started once, then
reused) and waits for the answer. The helper forks one child
per scan; the child sets ``RLIMIT_AS`` to the memory limit and scans, the helper kills it at the
time limit. So:

* limits are per scan, not per worker: Dask's ``--memory-limit`` is per worker process and Dask has
  no per-task timeout (dask/distributed#391);
* the fork happens in a process with one thread (a Dask worker has several, and a fork there could
  inherit a held lock), and the scanner's own two-process fork is turned off (``AUDIT_NO_FORK=1``):
  one scan is one process, so the limit covers all of it and N workers use N cores. Results are
  the same either way (``tests/static/test_parallel_scan.py``);
* Dask worker processes are daemonic and may not start ``multiprocessing`` children
  (dask/distributed#2142): the helper is a plain subprocess;
* a hostile package that crashes or exhausts its child is a failure with a reason; a helper that
  dies (killed from outside) is restarted and the scan retried once, then recorded as lost.

Requests and answers are JSON lines on the helper's stdin and on a private copy of its stdout
(fd 1 itself is pointed at stderr, so nothing a library prints can corrupt the protocol).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import zipfile
from typing import IO, Any

__all__ = ["HELPER_COMMAND", "ScanHelper", "WorkerLost", "close_helpers", "reset_stop", "scan_task"]

log = logging.getLogger(__name__)

#: How the helper process is started (tests may point it at a wrapper).
HELPER_COMMAND: list[str] = [sys.executable, "-c", "from audit.batch.worker import main; main()"]
#: Extra seconds the caller waits past the scan's own time limit before it gives the helper up.
GRACE = 30.0
_ANDROID_ENTRIES = ("AndroidManifest.xml", "base/manifest/AndroidManifest.xml")
#: Names that make a file a package candidate whatever its content (audit.batch.runner uses them too).
PACKAGE_EXTENSIONS = (".apk", ".apks", ".xapk", ".apkm", ".aab", ".dex")


class WorkerLost(RuntimeError):
    """The helper process died or stopped answering while it held a scan."""


# -- inside the helper ------------------------------------------------------------------------


def _not_a_package(path: str) -> str | None:
    """Why a readable zip found by its content alone is no Android package (no manifest, DEX or
    inner package), or None. Anything named like a package, DEX files and damaged zips go to the
    scanner, which decides."""
    if path.lower().endswith(PACKAGE_EXTENSIONS):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return None
    for n in names:
        if n in _ANDROID_ENTRIES or n.endswith((".dex", *PACKAGE_EXTENSIONS)):
            return None
    return "a zip archive without AndroidManifest.xml, DEX files or APKs: not an Android package"


def _scan(path: str) -> dict[str, Any]:
    """The answer for one path: ``done`` with the ScanResult dict, ``ignored`` or ``failed``."""
    from audit.errors import AuditError
    from audit.static.scanner import _sha256, scan_path

    def sha() -> str | None:
        try:
            return _sha256(path)  # type: ignore[arg-type]
        except OSError:
            return None

    why = _not_a_package(path)
    if why is not None:
        return {"status": "ignored", "sha256": sha(), "reason": why}
    try:
        result = scan_path(path)
    except AuditError as e:
        return {"status": "failed", "sha256": sha(), "reason": str(e)}
    return {"status": "done", "sha256": result.app.sha256, "result": result.to_dict()}


def _child(path: str, max_memory_mb: int, wfd: int) -> None:
    """The forked scan process: limit, scan, write the answer, exit (never returns)."""
    out_of_memory = json.dumps(
        {"status": "failed", "sha256": None, "reason": f"memory limit of {max_memory_mb} MB exceeded"}
    ).encode()
    code = 0
    try:
        if max_memory_mb:
            limit = max_memory_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            data = json.dumps(_scan(path)).encode()
        except MemoryError:
            data = out_of_memory
    except BaseException as e:  # a bug: reported as this app's failure, the run goes on
        data = json.dumps(
            {"status": "failed", "sha256": None, "reason": f"internal error: {type(e).__name__}: {e}"}
        ).encode()
        code = 1
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view) :]
    finally:
        os._exit(code)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything the child writes until it closes the pipe; (data, timed out)."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def scan_in_child(path: str, timeout: float, max_memory_mb: int) -> dict[str, Any]:
    """Fork, scan ``path`` in the child under the limits, and return its answer with ``seconds``
    and ``peak_rss`` (KiB)."""
    start = time.monotonic()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _child(path, max_memory_mb, wfd)
    os.close(wfd)
    try:
        data, timed_out = _read_until(rfd, start + timeout)
    finally:
        os.close(rfd)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    answer: dict[str, Any]
    if timed_out:
        answer = {
            "status": "failed",
            "sha256": None,
            "reason": f"time limit of {timeout:g} s exceeded (scan killed)",
        }
    else:
        try:
            answer = json.loads(data)
        except ValueError:
            if os.WIFSIGNALED(status):
                sig = signal.Signals(os.WTERMSIG(status)).name
                why = f"scan process killed by {sig}" + (" (out of memory?)" if sig == "SIGKILL" else "")
            else:
                why = f"scan process exited with status {os.WEXITSTATUS(status)} without an answer"
            answer = {"status": "failed", "sha256": None, "reason": why}
    if answer.get("sha256") is None and answer["status"] != "done":
        from audit.static.scanner import _sha256

        try:
            answer["sha256"] = _sha256(path)  # type: ignore[arg-type]
        except OSError:
            pass
    answer["seconds"] = round(time.monotonic() - start, 3)
    answer["peak_rss"] = int(usage.ru_maxrss)
    return answer


def serve(requests: IO[str], answers: IO[str]) -> None:
    """The helper's loop: one JSON request per line in, one JSON answer per line out."""
    # Loaded once here, shared copy-on-write by every forked scan.
    from audit.static.scanner import scan_path  # noqa: F401
    from audit.static.signatures import load_signatures

    load_signatures()
    from cryptography import x509  # noqa: F401  (decodes signing certificates)

    for line in requests:
        if not line.strip():
            continue
        req = json.loads(line)
        answer = scan_in_child(str(req["path"]), float(req["timeout"]), int(req["max_memory"]))
        answer["id"] = req.get("id")
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main() -> None:
    logging.getLogger("audit").addHandler(logging.NullHandler())
    logging.getLogger("audit").propagate = False
    os.environ["AUDIT_NO_FORK"] = "1"
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        serve(sys.stdin, proto)
    except (BrokenPipeError, KeyboardInterrupt):
        pass


# -- on the caller's side ----------------------------------------------------------------------


class ScanHelper:
    """One helper process, used by one thread at a time."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = list(command or HELPER_COMMAND)
        self.proc: subprocess.Popen[str] | None = None
        self._next_id = 0

    def _start(self) -> subprocess.Popen[str]:
        env = {**os.environ, "AUDIT_NO_FORK": "1"}
        return subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            start_new_session=True,  # a terminal's Ctrl-C goes to the coordinator, which stops them
        )  # fmt: skip

    def scan(self, path: str, timeout: float, max_memory_mb: int) -> dict[str, Any]:
        """The helper's answer for ``path``; raises :class:`WorkerLost` if it dies or hangs."""
        if self.proc is None or self.proc.poll() is not None:
            if _stopping.is_set():
                raise WorkerLost("batch stopped")
            self.proc = self._start()
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        self._next_id += 1
        try:
            proc.stdin.write(json.dumps({"id": self._next_id, "path": path, "timeout": timeout,
                                         "max_memory": max_memory_mb}) + "\n")  # fmt: skip
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            self.close()
            raise WorkerLost(f"scan worker gone ({e})") from e
        ready, _, _ = select.select([proc.stdout], [], [], timeout + GRACE)
        line = proc.stdout.readline() if ready else None
        if not line:
            code = proc.poll()
            self.close()
            raise WorkerLost(
                "scan worker stopped answering" if line is None else f"scan worker died (exit status {code})"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        """Stop the helper and the scan it runs now (same process group: its own session)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_local = threading.local()
_helpers: list[ScanHelper] = []
_helpers_lock = threading.Lock()


def _helper() -> ScanHelper:
    helper: ScanHelper | None = getattr(_local, "helper", None)
    if helper is None or helper.command != HELPER_COMMAND:
        helper = _local.helper = ScanHelper()
        with _helpers_lock:
            _helpers.append(helper)
    return helper


_stopping = threading.Event()


def close_helpers(kill: bool = False) -> None:
    """Stop every helper this process started (the local pool calls it when a batch ends); with
    ``kill`` also the scans they run now, and start no new ones (an interrupted batch)."""
    if kill:
        _stopping.set()
    with _helpers_lock:
        helpers = list(_helpers)
        _helpers.clear()
    for h in helpers:
        h.kill() if kill else h.close()
    _local.__dict__.clear()


def reset_stop() -> None:
    _stopping.clear()


atexit.register(close_helpers)


def scan_task(path: str, timeout: float, max_memory_mb: int) -> dict[str, Any]:
    """Scan one package under the limits, in this thread's helper; a lost helper is restarted and
    the scan tried once more. The answer: ``status`` (done, failed, ignored), ``sha256``,
    ``result`` (ScanResult dict, when done), ``reason``, ``seconds``, ``peak_rss``, ``attempts``."""
    helper = _helper()
    lost: WorkerLost | None = None
    for attempt in (1, 2):
        try:
            answer = helper.scan(path, timeout, max_memory_mb)
        except WorkerLost as e:
            if _stopping.is_set():
                raise
            log.warning("%s: %s (attempt %d)", path, e, attempt)
            lost = e
            continue
        answer["attempts"] = attempt
        return answer
    return {"status": "failed", "sha256": None, "reason": f"scan worker lost twice ({lost})", "attempts": 2,
            "seconds": None, "peak_rss": None}  # fmt: skip


if __name__ == "__main__":
    main()
