#!/usr/bin/env python3
"""Fuzz the commands that read and write case files with damaged case files (issue 15).

Usage::

    .venv/bin/python benchmarks/fuzz_case.py --cases 2000 --seed 1
    .venv/bin/python benchmarks/fuzz_case.py --cases 200 --only "garbled page,read-only file"
    .venv/bin/python benchmarks/fuzz_case.py --cases 300 --cli 40     # 40 of them also as real processes

A real case file is built once (``audit import`` of the messenger HAR and pcap, ``audit scan --db`` of
the messenger APK: traffic, DNS, requests, findings and a static scan). Each case copies it, applies one
damage of :data:`DAMAGES` with random parameters (which page, which table, which column and row, which
bits), and runs one command of :data:`COMMANDS` on it: the reading ``destinations``, ``report``,
``graph``, ``check``, ``diff`` (damaged as OLD or NEW), ``corpus`` and the writing ``import`` and
``pii``. Kinds and commands are drawn as a shuffled grid, so every pair comes up once per round.

A command runs in a forked child of a warm parent (``fuzz_common.run_forked``: its own process group,
an address-space cap and a time limit) through click's test runner; ``--cli N`` also runs N sampled
cases as ``python -m audit`` processes. Accepted: success (exit 0, or 3/4 for ``check``) or exit 1
with one ``audit: error:`` line per problem. A finding: a traceback (any exception but click's exit),
another exit status, exit 1 without the error line, a hang, a crash. For ``read-only file`` the child
drops to an unprivileged user (root writes any file whatever its mode), as in
``tests/test_damaged_case.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from audit.cli import main as cli_main  # noqa: E402
from benchmarks.fuzz_common import (  # noqa: E402
    CACHE,
    ERROR_PREFIX,
    FuzzResult,
    add_arguments,
    cli_problem,
    exception_outcome,
    finish,
    keep,
    run_forked,
)

FIXTURES = ROOT / "tests" / "fixtures"
CAPTURES = FIXTURES / "captures"
NOBODY = 65534

Damage = Callable[[random.Random, Path], None]


# ---------------------------------------------------------------------------------------------
# damages: each takes the case file and a random source for its parameters
# ---------------------------------------------------------------------------------------------


def _sql(path: Path, script: str, params: tuple[Any, ...] = ()) -> None:
    c = sqlite3.connect(path)
    try:
        if params:
            c.execute(script, params)
        else:
            c.executescript(script)
        c.commit()
    finally:
        c.close()


def _tables(path: Path) -> list[str]:
    c = sqlite3.connect(path)
    try:
        return [
            r[0]
            for r in c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
    finally:
        c.close()


def _columns(path: Path, table: str, types: tuple[str, ...], nullable: bool = False) -> list[str]:
    """Columns of ``types`` (not the row id: SQLite refuses anything but an integer there)."""
    c = sqlite3.connect(path)
    try:
        return [r[1] for r in c.execute(f"PRAGMA table_info({table})")
                if (r[2] or "").upper() in types and not r[5] and not (nullable and r[3])]  # fmt: skip
    finally:
        c.close()


def _row_ids(path: Path, table: str) -> list[int]:
    c = sqlite3.connect(path)
    try:
        return [r[0] for r in c.execute(f"SELECT rowid FROM {table} LIMIT 500")]
    finally:
        c.close()


def _set_cell(
    rng: random.Random, path: Path, types: tuple[str, ...], value: Any, raw_sql: str | None = None
) -> None:
    """One cell of a random row of a random table with a column of ``types`` set to ``value``."""
    choices = [
        (t, col)
        for t in _tables(path)
        if _row_ids(path, t)
        for col in _columns(path, t, types, value is None and raw_sql is None)
    ]
    if not choices:
        return
    table, col = rng.choice(choices)
    rowid = rng.choice(_row_ids(path, table))
    if raw_sql is not None:
        _sql(path, f"UPDATE {table} SET {col} = {raw_sql} WHERE rowid = {rowid}")
    else:
        _sql(path, f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (value, rowid))


def _page_size(data: bytes) -> int:
    size = int.from_bytes(data[16:18], "big")
    return 65536 if size == 1 else size if size >= 512 else 4096


def garbled_page(rng: random.Random, p: Path) -> None:
    b = bytearray(p.read_bytes())
    size = _page_size(b)
    pages = max(1, len(b) // size)
    n = rng.randrange(1, pages) if pages > 1 else 0
    start = n * size + rng.choice([0, 8, rng.randrange(size)])
    pattern = rng.choice(
        [lambda i: (i * 131) % 256, lambda i: 0, lambda i: 0xFF, lambda i: rng.randrange(256)]
    )
    for i in range(start, min((n + 1) * size, len(b)), rng.choice([1, 7, 64])):
        b[i] = pattern(i)
    p.write_bytes(bytes(b))


def page_header_flip(rng: random.Random, p: Path) -> None:
    """A b-tree page's type, cell count or first free block (the first bytes of a page)."""
    b = bytearray(p.read_bytes())
    size = _page_size(b)
    n = rng.randrange(1, max(2, len(b) // size))
    pos = n * size + rng.randrange(12)
    if pos < len(b):
        b[pos] = rng.choice([0, 0xFF, 2, 5, 10, 13, b[pos] ^ (1 << rng.randrange(8))])
    p.write_bytes(bytes(b))


def dropped_table(rng: random.Random, p: Path) -> None:
    _sql(p, f"DROP TABLE {rng.choice(_tables(p))}")


def dropped_column(rng: random.Random, p: Path) -> None:
    """A table recreated without one of its columns (a foreign or older tool's schema)."""
    table = rng.choice([t for t in _tables(p) if len(_columns(p, t, ("TEXT", "INTEGER", "REAL", ""))) > 1])
    cols = _columns(p, table, ("TEXT", "INTEGER", "REAL", "BLOB", ""))
    keep_cols = [c for c in cols if c != rng.choice(cols)]
    _sql(p, f"CREATE TABLE x_tmp AS SELECT {', '.join(keep_cols)} FROM {table}; DROP TABLE {table}; "
            f"ALTER TABLE x_tmp RENAME TO {table};")  # fmt: skip


def non_utf8_text(rng: random.Random, p: Path) -> None:
    raw = rng.choice(["x'ff6869fe'", "x'c0af'", "x'eda080'", "x'80'", "x'e282'"])
    _set_cell(rng, p, ("TEXT",), None, raw_sql=f"CAST({raw} AS TEXT)")


def blob_in_text(rng: random.Random, p: Path) -> None:
    _set_cell(rng, p, ("TEXT",), rng.choice([b"\xff\x00hi", b"", bytes(range(256)), b"{}"]))


def invalid_json_query_keys(rng: random.Random, p: Path) -> None:
    ids = _row_ids(p, "connections") if "connections" in _tables(p) else []
    if ids:
        value = rng.choice(["[1, ", "{", "nul", '"', '["a"', "]", "\x00", "[" * 5000])
        _sql(p, "UPDATE connections SET query_keys = ? WHERE rowid = ?", (value, rng.choice(ids)))


def wrong_json_type(rng: random.Random, p: Path) -> None:
    """JSON of another type where a list is kept (query keys, headers, answers, notes …)."""
    value = rng.choice(["{}", "5", '"x"', "null", "[1, {}]", '[["a", 1]]', "true", "[null]", "1e400"])
    choices = [(t, c) for t in _tables(p) for c in _columns(p, t, ("TEXT",))
               if c in ("query_keys", "headers", "answers", "notes", "data", "errors", "evidence", "value")]  # fmt: skip
    if choices:
        table, col = rng.choice(choices)
        ids = _row_ids(p, table)
        if ids:
            _sql(p, f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (value, rng.choice(ids)))


def invalid_json_headers(rng: random.Random, p: Path) -> None:
    ids = _row_ids(p, "requests") if "requests" in _tables(p) else []
    if ids:
        _sql(
            p,
            "UPDATE requests SET headers = ? WHERE rowid = ?",
            (rng.choice(["x", "[", '{"a": }', ""]), rng.choice(ids)),
        )


def text_in_number(rng: random.Random, p: Path) -> None:
    _set_cell(rng, p, ("INTEGER", "REAL"), rng.choice(["yesterday", "", "1e999", "0x10", "٣", "NaN"]))


def odd_number(rng: random.Random, p: Path) -> None:
    _set_cell(
        rng,
        p,
        ("INTEGER", "REAL"),
        rng.choice([1e300, -1e300, -1, 2**63 - 1, -(2**63), 0, 1e-300, 253402300800.0]),
    )


def null_cell(rng: random.Random, p: Path) -> None:
    _set_cell(rng, p, ("TEXT", "INTEGER", "REAL"), None)


def header_bit_flip(rng: random.Random, p: Path) -> None:
    b = bytearray(p.read_bytes())
    pos = rng.randrange(100)
    b[pos] ^= 1 << rng.randrange(8)
    p.write_bytes(bytes(b))


def bit_flips(rng: random.Random, p: Path) -> None:
    b = bytearray(p.read_bytes())
    for _ in range(rng.choice([1, 2, 8, 64])):
        b[rng.randrange(100, len(b))] ^= 1 << rng.randrange(8)
    p.write_bytes(bytes(b))


def truncated(rng: random.Random, p: Path) -> None:
    b = p.read_bytes()
    size = _page_size(b)
    cut = rng.choice([rng.randrange(len(b)), size * rng.randrange(1, max(2, len(b) // size)), rng.randrange(100),
                      size * rng.randrange(1, max(2, len(b) // size)) + rng.randrange(1, size)])  # fmt: skip
    p.write_bytes(b[:cut])


def empty_file(rng: random.Random, p: Path) -> None:
    p.write_bytes(b"")


def not_a_database(rng: random.Random, p: Path) -> None:
    p.write_bytes(rng.choice([(CAPTURES / "messenger.har").read_bytes()[:5000], b"SQLite format 3\x00" + b"\x00" * 84,
                              rng.randbytes(8192), b"\xef\xbb\xbfcase", (FIXTURES / "apks" / "messenger.apk").read_bytes()]))  # fmt: skip


def future_schema(rng: random.Random, p: Path) -> None:
    _sql(p, f"PRAGMA user_version = {rng.choice([999, 2**31 - 1, -1, 0, 3])}")


def foreign_database(rng: random.Random, p: Path) -> None:
    p.unlink()
    _sql(p, rng.choice(["CREATE TABLE users(id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'x');",
                        "CREATE TABLE connections(x); INSERT INTO connections VALUES (1);",
                        "CREATE TABLE meta(key, value); PRAGMA user_version = 7;"]))  # fmt: skip


def garbled_schema(rng: random.Random, p: Path) -> None:
    """The schema text itself (``sqlite_master.sql``) rewritten, as a hex editor or a bug would."""
    table = rng.choice(_tables(p))
    sql = rng.choice(
        [
            f"CREATE TABLE {table}(x)",
            "CREATE TABL garbage",
            f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, \xff)",
        ]
    )
    c = sqlite3.connect(p)
    try:
        c.execute("PRAGMA writable_schema = ON")
        c.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (sql, table))
        c.commit()
    finally:
        c.close()


def garbage_wal(rng: random.Random, p: Path) -> None:
    """A -wal (or hot -journal) left beside the case file that is not a journal of it."""
    side = p.with_name(p.name + rng.choice(["-wal", "-journal"]))
    side.write_bytes(rng.choice([rng.randbytes(rng.choice([32, 4096, 40000])), b"\x37\x7f\x06\x82" + rng.randbytes(4000),
                                 b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + rng.randbytes(600)]))  # fmt: skip


def orphan_rows(rng: random.Random, p: Path) -> None:
    """Rows that point at connections which are gone (deleted without their requests and findings)."""
    ids = _row_ids(p, "connections")
    if ids:
        gone = rng.sample(ids, min(len(ids), rng.randint(1, 5)))
        _sql(p, f"DELETE FROM connections WHERE rowid IN ({', '.join(map(str, gone))})")


def read_only_file(rng: random.Random, p: Path) -> None:
    """Mode 0444 in a folder of mode 0555 (the child runs as an unprivileged user: see run_case)."""
    os.chmod(p, 0o444)
    os.chmod(p.parent, 0o555)


def folder_not_file(rng: random.Random, p: Path) -> None:
    p.unlink()
    p.mkdir()


DAMAGES: dict[str, Damage] = {
    "garbled page": garbled_page,
    "page header bits": page_header_flip,
    "dropped table": dropped_table,
    "dropped column": dropped_column,
    "non-UTF-8 text": non_utf8_text,
    "blob in a text column": blob_in_text,
    "invalid JSON in query_keys": invalid_json_query_keys,
    "JSON of another type": wrong_json_type,
    "invalid JSON in request headers": invalid_json_headers,
    "text in a number column": text_in_number,
    "odd number (1e300, -1, 2^63)": odd_number,
    "NULL in a column": null_cell,
    "bit flip in the file header": header_bit_flip,
    "bit flips in pages": bit_flips,
    "truncation": truncated,
    "empty file": empty_file,
    "not a database": not_a_database,
    "future or odd schema version": future_schema,
    "another program's database": foreign_database,
    "garbled schema text": garbled_schema,
    "garbage -wal or -journal": garbage_wal,
    "orphan rows": orphan_rows,
    "read-only file": read_only_file,
    "a folder, not a file": folder_not_file,
}

#: Command lines; ``{db}`` the damaged case, ``{base}`` an intact one, ``{out}`` a writable folder.
COMMANDS: dict[str, list[str]] = {
    "destinations": ["destinations", "--json", "--db", "{db}"],
    "report": ["report", "--db", "{db}", "-o", "{out}/r.html"],
    "graph": ["graph", "--db", "{db}", "-o", "{out}/g.json"],
    "check": ["check", "--deny-country", "CN", "--db", "{db}"],
    "diff (damaged new)": ["diff", "{base}", "{db}", "--json"],
    "diff (damaged old)": ["diff", "{db}", "{base}", "--table"],
    "corpus": ["corpus", "--json", "--db", "{db}"],
    "import": ["import", str(CAPTURES / "messenger.flows"), "--db", "{db}"],
    "pii": ["pii", "--json", "--db", "{db}"],
}


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------


def build_base(folder: Path) -> Path:
    """The intact case file every damage starts from (built once per run)."""
    db = folder / "base.sqlite"
    runner = CliRunner()
    for args in (["import", str(CAPTURES / "messenger.har"), "--app", "com.example.messenger"],
                 ["import", str(CAPTURES / "messenger.pcap")], ["scan", str(FIXTURES / "apks" / "messenger.apk"), "--json"]):  # fmt: skip
        r = runner.invoke(cli_main, [*args, "--db", str(db)])
        if r.exit_code != 0:
            raise SystemExit(f"cannot build the base case ({' '.join(args[:2])}): {r.output[-500:]}")
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("PRAGMA journal_mode = DELETE")  # one file: every damage sees the whole case
    c.close()
    for side in ("-wal", "-shm"):
        db.with_name(db.name + side).unlink(missing_ok=True)
    return db


def _classify(code: int, stderr: str, exception: BaseException | None) -> dict[str, Any]:
    if exception is not None and not isinstance(exception, SystemExit):
        return exception_outcome(exception)
    # exit 2 is click's usage error, e.g. "--db: File '…' is a directory": one line, accepted
    problem = cli_problem(code, stderr, (0, 1, 2, 3, 4))
    if problem is None and code == 2 and not any(ln.startswith(ERROR_PREFIX) for ln in stderr.splitlines()):
        problem = ("message", "usage error without an 'audit: error:' line")
    if problem:
        return {"kind": problem[0], "where": problem[1], "msg": stderr[-3000:]}
    return {"kind": "ok" if code in (0, 3, 4) else "error", "msg": stderr[-300:]}


def run_case(args: list[str], drop_privileges: bool) -> dict[str, Any]:
    """In the forked child: one command through click's runner."""
    if drop_privileges and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    r = CliRunner().invoke(cli_main, args)
    return _classify(r.exit_code, r.stderr, r.exception)


_PREFIX: list[list[str]] = []


def _unprivileged() -> list[str]:
    """``setpriv`` to nobody, if this interpreter runs that way (not one installed under root's
    private home, as CI's Python 3.12 is); else nothing, and the file is read-only to no one."""
    if not _PREFIX:
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        ok = os.geteuid() == 0 and shutil.which("setpriv") is not None
        if ok:
            ok = (
                subprocess.run(
                    [*prefix, sys.executable, "-c", "pass"], capture_output=True, timeout=60
                ).returncode
                == 0
            )
        _PREFIX.append(prefix if ok else [])
    return _PREFIX[0]


def run_cli(args: list[str], drop_privileges: bool, timeout: float, home: Path) -> dict[str, Any]:
    """The same command as a real ``python -m audit`` process."""
    prefix = _unprivileged() if drop_privileges else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUDIT_HOME": str(home), "PYTHONIOENCODING": "utf-8"}
    try:
        r = subprocess.run([*prefix, sys.executable, "-m", "audit", *args], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=home)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"kind": "hang", "where": "cli timeout", "msg": f"no answer in {timeout} s"}
    out = _classify(r.returncode, r.stderr, None)
    if out["kind"] in ("ok", "error") and r.returncode < 0:
        out = {"kind": "crash", "where": f"signal {-r.returncode}", "msg": r.stderr[-2000:]}
    return out


def _open_up(folder: Path) -> None:
    """Folders another user can enter and write (the read-only case runs as nobody)."""
    for p in [folder, *folder.rglob("*")]:
        try:
            if p.is_dir():
                os.chmod(p, 0o777)
            elif p.is_file():
                os.chmod(p, p.stat().st_mode | stat.S_IROTH | stat.S_IWOTH)
        except OSError:
            pass


def run(
    cases: int,
    seed: int = 1,
    *,
    only: list[str] | None = None,
    commands: list[str] | None = None,
    timeout: float = 60.0,
    mem: int = 2048,
    cli: int = 0,
    quiet: bool = False,
) -> FuzzResult:
    """``cases`` damaged case files, each with one command (``random.Random(seed)``)."""
    kinds = [k for k in DAMAGES if not only or k in only]
    cmds = [c for c in COMMANDS if not commands or c in commands]
    if not kinds or not cmds:
        raise SystemExit(f"nothing to run: damages {only}, commands {commands}")
    rng = random.Random(seed)
    result = FuzzResult("fuzz_case", seed)
    pairs_seen: Counter[str] = Counter()
    findings = CACHE / "findings" / "case"
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="fuzz-case-"))
    os.chmod(work, 0o755)
    home = work / "home"
    home.mkdir()
    old_home = os.environ.get("AUDIT_HOME")
    os.environ["AUDIT_HOME"] = str(home)  # geo-IP caches and overlays: never the user's own
    try:
        base = build_base(work)
        _open_up(work)
        # Every command once on the intact case, in this process: the lazy imports are done before
        # the fork (faster, and an unprivileged child could not read an interpreter under /root).
        (work / "warm").mkdir()
        for line in COMMANDS.values():
            CliRunner().invoke(cli_main, [a.format(db=base, base=base, out=work / "warm") for a in line if a != "import"]
                               if line[0] != "import" else ["import", "--help"])  # fmt: skip
        grid: list[tuple[str, str]] = []
        cli_left = cli
        for n in range(cases):
            if not grid:
                grid = [(k, c) for k in kinds for c in cmds]
                rng.shuffle(grid)
            kind, cmd = grid.pop()
            case_dir = work / f"c{n % 4}"
            if case_dir.exists():
                os.chmod(case_dir, 0o777)
                shutil.rmtree(case_dir)
            case_dir.mkdir()
            out = case_dir / "out"
            out.mkdir()
            db = case_dir / "case.sqlite"
            shutil.copy(base, db)
            try:
                DAMAGES[kind](rng, db)
            except (sqlite3.Error, OSError, ValueError, IndexError) as e:
                if not quiet:
                    print(
                        f"[{n}] damage {kind!r} not applied ({e}); the command runs on what there is",
                        flush=True,
                    )
            damaged = db.read_bytes() if db.is_file() else b""
            _open_up(out)
            os.chmod(case_dir, 0o755 if kind != "read-only file" else 0o555)
            args = [a.format(db=db, base=base, out=out) for a in COMMANDS[cmd]]
            ro = kind == "read-only file"
            if cli_left > 0 and rng.random() < 0.1:
                cli_left -= 1
                t0 = time.monotonic()
                answer, elapsed = run_cli(args, ro, timeout, home), 0.0
                elapsed = time.monotonic() - t0
                result.outcomes["as a process"] += 1
            else:
                answer, elapsed = run_forked(lambda args=args, ro=ro: run_case(args, ro), timeout, mem)
            pairs_seen[f"{kind} × {cmd}"] += 1
            where = str(answer.get("where", ""))
            sig = result.add(
                str(answer["kind"]), f"{kind} × {cmd}: {where}", str(answer.get("msg", "")), elapsed
            )
            if sig is not None and result.findings[sig] <= 3:
                kept = keep(findings, sig, result.findings[sig], damaged, ".sqlite",
                            f"damage {kind}, command {' '.join(args)}\n{answer.get('msg', '')}")  # fmt: skip
                print(f"[{n}] {sig} -> {kept.name}", flush=True)
            if not quiet and (n + 1) % 100 == 0:
                print(f"... {n + 1} cases, {dict(result.outcomes)}", flush=True)
    finally:
        if old_home is None:
            os.environ.pop("AUDIT_HOME", None)
        else:
            os.environ["AUDIT_HOME"] = old_home
        _open_up(work)
        shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.monotonic() - start
    result.outcomes["distinct damage × command pairs"] = len(pairs_seen)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap, cases=2000)
    ap.add_argument("--only", help="comma-separated damage kinds (default: all): " + ", ".join(DAMAGES))
    ap.add_argument("--commands", help="comma-separated commands (default: all): " + ", ".join(COMMANDS))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per command (default 60)")
    ap.add_argument(
        "--mem", type=int, default=2048, help="MiB of address space above the parent's (default 2048)"
    )
    ap.add_argument(
        "--cli", type=int, default=0, help="run about this many sampled cases as real processes too"
    )
    args = ap.parse_args()
    only = [k.strip() for k in args.only.split(",")] if args.only else None
    commands = [c.strip() for c in args.commands.split(",")] if args.commands else None
    result = run(
        args.cases, args.seed, only=only, commands=commands, timeout=args.timeout, mem=args.mem, cli=args.cli
    )
    return finish(result, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
