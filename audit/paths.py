"""Where dataflow-audit keeps the user's own data (signature overlay, imported ASN table) and its cache."""

from __future__ import annotations

import os
from pathlib import Path


def audit_home() -> Path:
    """``$AUDIT_HOME`` if set, else ``$XDG_DATA_HOME/dataflow-audit`` (``~/.local/share/dataflow-audit``)."""
    home = os.environ.get("AUDIT_HOME")
    if home:
        return Path(home)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "dataflow-audit"


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/dataflow-audit`` (``~/.cache/dataflow-audit``), or ``$AUDIT_HOME/cache``
    when ``$AUDIT_HOME`` is set: data derived from what is installed, rebuilt whenever it is
    missing, stale or unreadable."""
    if os.environ.get("AUDIT_HOME"):
        return audit_home() / "cache"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "dataflow-audit"


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, creating missing parent folders.

    The data goes to a hidden temporary file in the same folder that then replaces ``path``, so a
    reader never sees half a file and a failed write leaves the old one. Errors name ``path`` or
    the folder that cannot be made, never the temporary file (issue 13). A ``path`` that exists and
    is not a regular file (``/dev/stdout``, a FIFO) is written in place."""
    import stat
    import tempfile

    from audit.errors import OutputError

    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        st = target.stat()
    except (FileNotFoundError, NotADirectoryError):  # the folder is missing or not a folder: said below
        st = None
    except OSError as e:
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{target}: is a folder, not a file")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            with open(target, "wb") as f:
                f.write(payload)
        except OSError as e:
            raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
        return
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise OutputError(
            f"{target}: cannot create the folder {folder} (a file of that name is in the way)"
        ) from e
    except OSError as e:
        raise OutputError(f"{target}: cannot create the folder {folder} ({e.strerror or e})") from e
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{target}: cannot write in {folder} ({e.strerror or e})") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from e
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (read by setting it, the only portable way, and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
