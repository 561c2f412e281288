"""Exactness: the fast reader must agree with a slow androguard walk on every DEX we have.

Reference: ``androguard.core.dex.DEX`` strings, class names, and const-string/const-string/jumbo found by
decoding every instruction of every method (up to the first invalid one, where androguard stops). Inputs: each ``classes*.dex`` of the committed fixture APKs
(tests/fixtures/apks/*.apk) and the DEX files assembled from smali by ``tests/helpers/dex.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from audit.static.dex import DexFile, descriptor_to_name
from tests.conftest import FIXTURES
from tests.helpers.dex import OP_CONST_STRING, OP_CONST_STRING_JUMBO, fast, reference, with_unused_opcode


def assert_same(data: bytes, name: str) -> None:
    ref_strings, ref_classes, ref_refs = reference(data)
    strings, classes, refs = fast(data, name)
    assert len(strings) == len(ref_strings)
    mismatched = [i for i, (a, b) in enumerate(zip(strings, ref_strings, strict=True)) if a != b]
    assert not mismatched, [(strings[i], ref_strings[i]) for i in mismatched[:5]]
    assert classes == ref_classes
    assert refs == ref_refs
    assert refs, "a fixture DEX that loads no string proves nothing"


def fixture_dex_files() -> list[tuple[str, Path, str]]:
    out = []
    for apk in sorted((FIXTURES / "apks").glob("*.apk")):
        with zipfile.ZipFile(apk) as z:
            for entry in z.namelist():
                if entry.startswith("classes") and entry.endswith(".dex") and "/" not in entry:
                    out.append((f"{apk.name}!{entry}", apk, entry))
    return out


_NO_FIXTURES = [pytest.param("", None, "", marks=pytest.mark.skip(reason="no fixture APKs built yet"))]


@pytest.mark.parametrize(("label", "apk", "entry"), fixture_dex_files() or _NO_FIXTURES)
def test_fixture_apks_match_androguard(label: str, apk: Path, entry: str) -> None:
    with zipfile.ZipFile(apk) as z:
        data = z.read(entry)
    assert_same(data, label)


def test_payloads_and_text_match_androguard(small_dex: bytes) -> None:
    assert_same(small_dex, "small.dex")


def test_unused_opcode_matches_androguard(small_dex: bytes) -> None:
    assert_same(with_unused_opcode(small_dex)[0], "unused.dex")


def test_jumbo_matches_androguard(jumbo_dex: bytes) -> None:
    assert_same(jumbo_dex, "jumbo.dex")


def reference_calls(data: bytes) -> dict[int, set[tuple[str, str, str]]]:
    """String index → (loading class, invoked class, invoked method) of every method loading it, the
    slow way: androguard decodes each instruction and names its method reference."""
    from androguard.core.dex import DEX, InvalidInstruction

    dex = DEX(data)
    out: dict[int, set[tuple[str, str, str]]] = {}
    for cls in dex.get_classes():
        name = descriptor_to_name(cls.get_name())
        for method in cls.get_methods():
            loads: set[int] = set()
            calls: set[tuple[str, str]] = set()
            try:
                for ins in method.get_instructions():
                    op = ins.get_op_value()
                    if op in (OP_CONST_STRING, OP_CONST_STRING_JUMBO):
                        loads.add(ins.get_ref_kind())
                    elif 0x6E <= op <= 0x72 or 0x74 <= op <= 0x78:
                        m = dex.get_cm_method(ins.get_ref_kind())
                        calls.add((descriptor_to_name(m[0]), m[1]))
            except InvalidInstruction:
                pass
            for idx in loads:
                out.setdefault(idx, set()).update((name, c, n) for c, n in calls)
    return out


def labelled_dex_files() -> list[tuple[str, Path, str]]:
    out = []
    for apk in sorted((FIXTURES / "labelled").glob("*.apk")):
        with zipfile.ZipFile(apk) as z:
            out += [
                (f"{apk.name}!{e}", apk, e)
                for e in z.namelist()
                if e.startswith("classes") and e.endswith(".dex")
            ]
    return out


@pytest.mark.parametrize(("label", "apk", "entry"), fixture_dex_files() + labelled_dex_files())
def test_method_invokes_match_androguard(label: str, apk: Path, entry: str) -> None:
    """What the methods loading each string invoke (the evidence of :mod:`audit.static.servers`)."""
    with zipfile.ZipFile(apk) as z:
        data = z.read(entry)
    dex = DexFile(data, label)
    loaders = dex.string_loaders(range(len(dex.strings())))
    fast_calls = {
        idx: {(cls, *dex.method_name(m)) for off, cls in owners for m in dex.method_invokes(off)}
        for idx, owners in loaders.items()
    }
    ref = reference_calls(data)
    assert {i: c for i, c in fast_calls.items() if c} == {i: c for i, c in ref.items() if c}
    if "labelled" in str(apk) and any(cls for cls in ("noise", "adapters") if cls in label):
        assert any(c for c in ref.values()), "a labelled app whose code calls nothing proves nothing"
