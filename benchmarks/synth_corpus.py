#!/usr/bin/env python3
"""Generate a synthetic corpus of small, distinct Android apps for the batch benchmarks.

Usage::

    .venv/bin/python benchmarks/synth_corpus.py --apps 1000 [--out benchmarks/.cache/corpus-1000] [--seed 1]

Each app is a real APK: a binary manifest (built once by apktool through the fixture builder, then
its package name, the same length in every app, rewritten in the string pool), one DEX file written
by ``synth_apps.write_dex`` with 40 to 120 classes of the app's own code plus the code of 0 to 8
SDKs drawn from our signature database (a class under one of each SDK's code prefixes, loading one
of its domains), endpoint URLs of the app's own, and an APK Signing Block: most apps are signed
(v1+v2) by the "developer" test key, every 20th by the "store" key (a re-signed copy of the previous
app, same package). Deterministic for a given seed; about 1 000 apps a minute.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.synth_apps import write_dex  # noqa: E402
from tests.fixtures.build import build_apk, write_apktool_yml, write_smali_class, write_zip  # noqa: E402
from tests.fixtures.sign import sign_block, sign_v1, signer  # noqa: E402

TEMPLATE_PACKAGE = "com.synth.corpus.template0"
CACHE = Path(__file__).resolve().parent / ".cache"


def template_manifest() -> bytes:
    """A binary AndroidManifest.xml for :data:`TEMPLATE_PACKAGE` (apktool, once, cached)."""
    cached = CACHE / "synth-corpus-manifest.bin"
    if cached.exists():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        write_apktool_yml(src, apk_name="template.apk", version_code=1, version_name="1.0")
        (src / "AndroidManifest.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="{TEMPLATE_PACKAGE}">\n'
            '    <uses-permission android:name="android.permission.INTERNET"/>\n'
            '    <uses-permission android:name="android.permission.ACCESS_FINE_LOCATION"/>\n'
            '    <application android:label="synth"/>\n</manifest>\n',
            encoding="utf-8",
        )
        write_smali_class(src, f"{TEMPLATE_PACKAGE}.Main", ["https://api.synth-corpus.example.net/v1"])
        build_apk(src, Path(tmp) / "template.apk")
        with zipfile.ZipFile(Path(tmp) / "template.apk") as z:
            data = z.read("AndroidManifest.xml")
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


def with_package(manifest: bytes, package: str) -> bytes:
    """The template manifest naming ``package`` (same length: the string pool keeps its layout)."""
    assert len(package) == len(TEMPLATE_PACKAGE)
    out = manifest
    for enc in ("utf-16-le", "utf-8"):
        out = out.replace(TEMPLATE_PACKAGE.encode(enc), package.encode(enc))
    assert out != manifest, "package name not found in the template manifest"
    return out


def sdk_pool() -> list[tuple[str, str, str]]:
    """(id, code prefix, domain) of every SDK in our database with both a prefix and a domain."""
    from audit.static.signatures import load_signatures

    return [
        (s.id, s.code_prefixes[0], s.domains[0])
        for s in load_signatures().filter()
        if s.code_prefixes and s.domains
    ]


def app_dex(rng: random.Random, package: str, sdks: list[tuple[str, str, str]]) -> bytes:
    classes = []
    for n in range(rng.randrange(40, 121)):
        loads = [f"{package}.feature{n % 7}.key{n}", f"Could not load item {n}"]
        if n % 10 == 0:
            loads.append(f"https://api{n % 5}.{package.rsplit('.', 1)[1]}.synth-corpus.net/v{n % 3}/items")
        classes.append((f"{package}.feature{n % 7}.C{n}", loads))
    for sid, prefix, domain in sdks:
        classes.append((f"{prefix}.internal.Client", [f"https://{domain}/collect", f"{sid}.config.enabled"]))
    return write_dex(sorted(dict(classes).items()))


def build_corpus(out: Path, apps: int, seed: int = 1) -> list[Path]:
    manifest = template_manifest()
    pool = sdk_pool()
    dev, store = signer("developer"), signer("store")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(apps):
        resigned = i % 20 == 19
        number = i - 1 if resigned else i
        package = f"com.synth.corpus.app{number:06d}"
        app_rng = random.Random(seed * 1_000_003 + number)  # a re-signed copy has the same content
        sdks = app_rng.sample(pool, app_rng.randrange(0, 9))
        entries = [("AndroidManifest.xml", with_package(manifest, package), True),
                   ("classes.dex", app_dex(app_rng, package, sdks), True)]  # fmt: skip
        key, cert = store if resigned else dev
        path = out / f"{package}{'-resigned' if resigned else ''}.apk"
        write_zip(path, sign_v1(entries, key, cert, "2"))
        path.write_bytes(sign_block(path.read_bytes(), key, cert, ("v2",)))
        paths.append(path)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out = args.out or CACHE / f"corpus-{args.apps}"
    paths = build_corpus(out, args.apps, args.seed)
    size = sum(p.stat().st_size for p in paths)
    print(f"{out}: {len(paths)} apps, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
