"""Damaged, foreign and read-only case files × the reading commands (issue 15): one line naming the
file, what is wrong and what to do, never a traceback; a case file that cannot be written is read
read-only (a read-only file, a read-only medium)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.errors import StoreError
from audit.store import Store
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = FIXTURES / "captures"
READING = [
    ["destinations", "--json"], ["report", "-o", "{tmp}/r.html"], ["graph", "-o", "{tmp}/g.json"],
    ["graph", "--receivers", "imei"], ["check", "--deny-country", "CN"], ["pii", "--json"],
]  # fmt: skip


@pytest.fixture(scope="module")
def base_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("case") / "base.sqlite"
    r = CliRunner().invoke(
        main, ["import", str(CAPTURES / "messenger.har"), "--db", str(db), "--app", "com.example.messenger"]
    )
    assert r.exit_code == 0, r.output
    return db


def _sql(script: str) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        c = sqlite3.connect(p)
        c.executescript(script)
        c.commit()
        c.close()

    return damage


def _flip(offset: int, bit: int) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        b = bytearray(p.read_bytes())
        b[offset] ^= bit
        p.write_bytes(bytes(b))

    return damage


def _garble_page(n: int) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        b = bytearray(p.read_bytes())
        size = int.from_bytes(b[16:18], "big")
        for i in range(n * size + 8, min((n + 1) * size, len(b)), 7):
            b[i] = (i * 131) % 256
        p.write_bytes(bytes(b))

    return damage


def _rewrite_schema(table: str, sql: str | bytes) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        c = sqlite3.connect(p)
        c.execute("PRAGMA writable_schema = ON")
        c.execute("UPDATE sqlite_master SET sql = CAST(? AS TEXT) WHERE name = ?", (sql, table))
        c.commit()
        c.close()

    return damage


def _foreign(p: Path) -> None:
    p.unlink(missing_ok=True)
    _sql("CREATE TABLE users(id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'x');")(p)


#: (damage, what the one line must say: one of these); None: the commands work (the damage is tolerated).
GARBLED = ("damaged case file (database disk image is malformed)", "damaged, or not written by this tool")
DAMAGES: dict[str, tuple[Callable[[Path], None], str | tuple[str, ...] | None]] = {
    "dropped table dns": (_sql("DROP TABLE dns"), "not a complete case file (no table dns)"),
    "dropped table connections": (_sql("DROP TABLE connections"), "no table connections"),
    "non-UTF-8 text": (_sql("UPDATE connections SET host = CAST(x'ff6869fe' AS TEXT) WHERE id = 3"), None),
    "a blob in a text column": (_sql("UPDATE connections SET host = x'ff6869' WHERE id = 3"), "connections row 3: host holds blob"),
    "invalid JSON in query_keys": (_sql("UPDATE connections SET query_keys = '[1, ' WHERE id = 4"),
                                   "connections row 4: query_keys is not a JSON array"),
    "JSON of another type in query_keys": (_sql("UPDATE connections SET query_keys = '{}' WHERE id = 4"), "not a JSON array"),
    "invalid JSON in request headers": (_sql("UPDATE requests SET headers = 'x' WHERE connection_id = 2"),
                                        "requests row 2: headers is not a JSON array"),
    # found by benchmarks/fuzz_case.py: SQLite reads '1e999' into a number column as infinity (OverflowError)
    "infinity in a byte count": (_sql("UPDATE connections SET bytes_in = '1e999' WHERE id = 2"),
                                 "connections row 2: bytes_in holds an out-of-range number"),
    "a real beyond 64 bits in a port": (_sql("UPDATE connections SET port = 1e30 WHERE id = 2"), "port holds an out-of-range"),
    "text in a time column": (_sql("UPDATE connections SET ts = 'yesterday' WHERE id = 5"), "connections row 5: ts holds text"),
    "bit flip: header magic": (_flip(0, 0x01), "not a case file (file is not a database)"),
    "bit flip: read version (PRAGMA journal_mode fails)": (_flip(19, 0x04), "file is not a database"),
    "bit flip: write version (the file turns read-only)": (_flip(18, 0x04), None),
    "bit flip: page size": (_flip(16, 0x01), "file is not a database"),
    "garbled page 3": (_garble_page(3), GARBLED),
    "garbled page 6": (_garble_page(6), GARBLED),
    "cut after 5 pages": (lambda p: p.write_bytes(p.read_bytes()[: 5 * 4096 + 100]), GARBLED),
    "another program's database": (_foreign, "not a case file (an SQLite database with other tables: users)"),
    # found by benchmarks/fuzz_case.py: a KeyError in every command that reads the inputs
    "garbled schema text": (_rewrite_schema("inputs", "CREATE TABLE inputs(x)"), "no column inputs.kind, inputs.path"),
    # SQLite's message quotes the schema's bytes; the sqlite3 module failed to decode it (UnicodeDecodeError)
    "schema text that is not UTF-8": (_rewrite_schema("inputs", b"CREATE \xc5\x28"), "unreadable schema or message"),
    "table recreated without a column": (_sql("CREATE TABLE t AS SELECT id, ts, app, source, protocol, tls FROM "
                                              "connections; DROP TABLE connections; ALTER TABLE t RENAME TO connections;"),
                                         "(no column connections.end_ts, connections.port,"),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("args", READING, ids=lambda a: "-".join(a[:2]))
def test_damaged_case_gives_one_line(tmp_path: Path, base_case: Path, damage: str, args: list[str]) -> None:
    db = tmp_path / "case.sqlite"
    shutil.copy(base_case, db)
    fn, expected = DAMAGES[damage]
    fn(db)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = CliRunner().invoke(main, [*args, "--db", str(db)])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if "write version" in damage and args[0] == "pii":  # pii writes its findings back
        assert r.exit_code == 1 and f"audit: error: {db}: read-only" in r.stderr, r.output
        return
    if expected is None:
        assert r.exit_code in (0, 3), r.output
        return
    assert r.exit_code == 1, r.output
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("audit: error: ")]
    alternatives = (expected,) if isinstance(expected, str) else expected
    assert line.startswith(f"audit: error: {db}: ") and any(e in line for e in alternatives), line
    assert ".recover" in line or "re-import" in line or "right file" in line or "case file" in line


def test_store_errors_name_the_file_and_what_to_do(tmp_path: Path, base_case: Path) -> None:
    db = tmp_path / "case.sqlite"
    shutil.copy(base_case, db)
    db.write_bytes(db.read_bytes()[: 5 * 4096 + 100])
    with pytest.raises(StoreError) as e:
        with Store(db) as s:
            list(s.connections())
    msg = str(e.value)
    assert msg.startswith(f"{db}: damaged case file (database disk image is malformed)"), msg
    assert f'sqlite3 {db} ".recover"' in msg and "\n" not in msg


def test_a_foreign_database_is_never_written_to(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    _foreign(db)
    with pytest.raises(StoreError, match="not a case file"):
        Store(db)
    c = sqlite3.connect(db)
    assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["users"]
    c.close()


def test_non_utf8_text_is_shown_with_replacement_characters(tmp_path: Path, base_case: Path) -> None:
    db = tmp_path / "case.sqlite"
    shutil.copy(base_case, db)
    DAMAGES["non-UTF-8 text"][0](db)
    with Store(db) as s:
        s.verify()
        assert any(c.host == "\ufffdhi\ufffd" for _, c in s.connections())


# -- read-only case files ------------------------------------------------------------------------


def _as_nobody() -> list[str]:
    """A command prefix that runs as an unprivileged user (root writes any file regardless of its mode)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop the right to write")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:  # e.g. an interpreter installed under root's private home directory
        pytest.skip(f"this interpreter cannot run as an unprivileged user: {probe.stderr.strip()[:200]}")
    return prefix


def _run(prefix: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(cwd), "AUDIT_HOME": str(cwd / "home")}
    return subprocess.run([*prefix, sys.executable, "-m", "audit", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)  # fmt: skip


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary directory another user can enter (pytest's own are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="audit-ro-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for sub in d.rglob("*"):
            if sub.is_dir():
                os.chmod(sub, 0o755)
        shutil.rmtree(d)


def test_read_only_file_is_read(shared_tmp: Path, base_case: Path) -> None:
    tmp_path = shared_tmp
    case_dir = tmp_path / "ro"
    case_dir.mkdir()
    db = case_dir / "case.sqlite"
    shutil.copy(base_case, db)
    os.chmod(db, 0o444)
    os.chmod(case_dir, 0o555)  # no -wal/-shm can be made next to it either
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    prefix = _as_nobody()
    try:
        for args in (["destinations", "--json"], ["report", "-o", str(out / "r.html")], ["graph", "--receivers", "imei"],
                     ["check", "--deny-country", "CN"]):  # fmt: skip
            r = _run(prefix, [*args, "--db", str(db)], out)
            assert r.returncode in (0, 3), r.stderr
            assert "Traceback" not in r.stderr
        assert (out / "r.html").stat().st_size > 10_000
        r = _run(prefix, ["import", str(CAPTURES / "messenger.pcap"), "--db", str(db)], out)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"{db}: read-only" in r.stderr and "writable copy" in r.stderr
    finally:
        os.chmod(case_dir, 0o755)
    assert sorted(p.name for p in case_dir.iterdir()) == ["case.sqlite"]


def test_read_only_medium_is_read(tmp_path: Path, base_case: Path) -> None:
    """A read-only mount (a forensic copy on write-blocked media), in a private mount namespace."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare for a private read-only mount")
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    shutil.copy(base_case, src / "case.sqlite")
    db = ro / "case.sqlite"
    script = (
        f"mount --bind {src} {ro} && mount -o remount,bind,ro {ro} && "
        f"{sys.executable} -m audit destinations --json --db {db} > {tmp_path}/d.json && "
        f"{sys.executable} -m audit report --db {db} -o {tmp_path}/r.html"
    )
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespaces here")
    r = subprocess.run([unshare, "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / "r.html").stat().st_size > 10_000 and (tmp_path / "d.json").read_text().startswith("[")
    assert sorted(p.name for p in src.iterdir()) == ["case.sqlite"]  # nothing was written next to it


def test_read_only_store_refuses_writes_in_one_line(tmp_path: Path, base_case: Path) -> None:
    db = tmp_path / "case.sqlite"
    shutil.copy(base_case, db)
    with Store(db, readonly=True) as s:
        assert s.readonly and s.connection_count() > 0
        s.cache_ip_info([])  # a cache: silently not written
        with pytest.raises(StoreError, match=r"read-only .*writable copy"):
            s.record_input("har", "x.har")
