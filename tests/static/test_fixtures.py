"""Sanity checks on the built fixtures themselves, read with androguard and zipfile, not our scanner.

They make the truth files trustworthy: every endpoint a truth lists really is in the file and place
it names, every URL-like string in the package is either expected or listed as noise, and every
hostile input carries the defect it is named after.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from loguru import logger
from publicsuffixlist import PublicSuffixList

from audit.models import ENDPOINT_KINDS, SOURCE_KINDS
from tests.conftest import FIXTURES
from tests.helpers.apks import URLISH, is_ip, pb_xml, read_contents

logger.disable("androguard")

from androguard.core.apk import APK  # noqa: E402

APKS = FIXTURES / "apks"
HOSTILE = FIXTURES / "hostile"
TRUTHS = sorted(APKS.glob("*.truth.json"))
AGREED_SDKS = {
    "wechat_opensdk",
    "tencent_bugly",
    "pangle",
    "firebase_analytics",
    "admob",
    "facebook_sdk",
    "umeng_analytics",
    "jpush",
    "appsflyer",
}
PSL = PublicSuffixList()


def token(value: str) -> re.Pattern[str]:
    """``value`` as a whole endpoint: ``facebook.com`` must not match inside ``graph.facebook.com``
    nor ``…/v2`` inside ``…/v2/chat``."""
    before = r"(?<![A-Za-z0-9+.-])" if "://" in value else r"(?<![\w.\-/@:])"
    return re.compile(before + re.escape(value) + r"(?![\w\-./?#=&%~:@])")


def load_truth(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# Truth files
# --------------------------------------------------------------------------------------------


def test_every_fixture_has_a_truth() -> None:
    fixtures = {p.name for p in APKS.iterdir() if not p.name.endswith(".json")}
    described = {load_truth(t)["fixture"] for t in TRUTHS}
    assert fixtures == described
    assert {
        "messenger.apk",
        "multidex.apk",
        "obfuscated.apk",
        "hostile_strings.apk",
        "messenger.aab",
    } <= fixtures


@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.name)
def test_truth_is_well_formed(truth_path: Path) -> None:
    t = load_truth(truth_path)
    assert t["format"] in {"apk", "apks", "xapk", "apkm", "aab", "dex"}
    assert (APKS / t["fixture"]).stat().st_size < 200_000
    values = [e["value"] for e in t["endpoints"]]
    assert len(values) == len(set(values)) and values == sorted(values)
    for e in t["endpoints"]:
        assert e["kind"] in ENDPOINT_KINDS
        assert e["source_kinds"] and set(e["source_kinds"]) <= set(SOURCE_KINDS)
        assert sorted({s["kind"] for s in e["sources"]}) == e["source_kinds"]
        assert sorted({s["file"] for s in e["sources"]}) == e["files"]
        assert (e["sdk"] is None) or e["sdk"] in AGREED_SDKS
        assert e["host"] is None or e["host"] == e["host"].lower()
        if e["kind"] == "ip":
            assert e["host"] == e["value"]
        if is_ip(e["host"]):
            assert e["domain"] is None, e["value"]
        else:
            assert e["domain"] == PSL.privatesuffix(e["host"]), e["value"]
    for s in t["sdks"]:
        assert s["id"] in AGREED_SDKS
        assert set(s["evidence"]) <= {"code", "network"} and s["evidence"]
        assert ("code" in s["evidence"]) == (s["class_count"] > 0)
    assert not set(t["absent"]) & set(values)


@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.name)
def test_truth_endpoints_are_really_where_the_truth_says(truth_path: Path) -> None:
    t = load_truth(truth_path)
    c = read_contents(APKS / t["fixture"])
    for e in t["endpoints"]:
        tok = token(e["value"])
        for s in e["sources"]:
            texts = c.texts.get((s["kind"], s["file"]))
            assert texts is not None, f"{t['fixture']}: no {s['kind']} content in {s['file']}"
            assert any(tok.search(x) for x in texts), f"{e['value']!r} not in {s['file']}"
        if "dex" in e["source_kinds"]:
            owners = set().union(*(o for s, o in c.const_owners.items() if tok.search(s)))
            assert owners == set(e["classes"]), e["value"]
        else:
            assert e["classes"] == []


@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.name)
def test_truth_is_complete_for_url_like_strings(truth_path: Path) -> None:
    """Every scheme://… string in the package is an expected endpoint or declared noise."""
    t = load_truth(truth_path)
    known = [e["value"] for e in t["endpoints"]] + t["absent"]
    for text in read_contents(APKS / t["fixture"]).all_texts():
        for m in URLISH.finditer(text):
            assert any(m.group().startswith(k) for k in known if "://" in k), m.group()


@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.name)
def test_absent_strings_are_really_present(truth_path: Path) -> None:
    """Noise the scanner must ignore has to be in the package, or the absence proves nothing."""
    t = load_truth(truth_path)
    texts = list(read_contents(APKS / t["fixture"]).all_texts())
    for a in t["absent"]:
        assert any(a in x for x in texts), a


def test_sdk_classes_and_obfuscation() -> None:
    messenger = read_contents(APKS / "messenger.apk")
    classes = set().union(*messenger.const_owners.values())
    assert "com.tencent.bugly.proguard.u" in classes and "com.facebook.GraphRequest" in classes
    obf = read_contents(APKS / "obfuscated.apk")
    obf_classes = set().union(*obf.const_owners.values())
    assert {"a.a.b", "a.a.c", "b.c"} <= obf_classes
    assert not any(n.startswith(("com.tencent", "com.facebook", "com.appsflyer")) for n in obf_classes)
    obf_truth = load_truth(APKS / "obfuscated.truth.json")
    assert obf_truth["sdks"] == []  # no SDK's own code: its hosts alone make mentions
    assert {s["id"] for s in obf_truth["sdk_mentions"]} == {"tencent_bugly", "facebook_sdk", "appsflyer"}


# --------------------------------------------------------------------------------------------
# Identity, per format
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["messenger", "multidex", "obfuscated", "hostile_strings"])
def test_apk_identity_matches_truth(name: str) -> None:
    t = load_truth(APKS / f"{name}.truth.json")
    apk = APK(str(APKS / f"{name}.apk"))
    assert apk.get_package() == t["package"]
    assert apk.get_androidversion_name() == t["version_name"]
    assert apk.get_androidversion_code() == t["version_code"]
    assert sorted(apk.get_permissions()) == t["permissions"]


def test_messenger_shape() -> None:
    t = load_truth(APKS / "messenger.truth.json")
    assert t["version_name"] == "3.2.1" and t["version_code"] == "321"
    assert len(t["permissions"]) == 15 and "com.google.android.gms.permission.AD_ID" in t["permissions"]
    kinds = {k for e in t["endpoints"] for k in e["source_kinds"]}
    assert kinds == set(SOURCE_KINDS) - {"xml"}
    assert {e["kind"] for e in t["endpoints"]} == {"url", "host", "ip"}
    assert {e["value"] for e in t["endpoints"] if e["placeholder"]} >= {
        "127.0.0.1",
        "192.168.1.1",
        "10.0.0.2",
    }
    assert {s["id"] for s in t["sdks"]} == {
        "wechat_opensdk",
        "tencent_bugly",
        "pangle",
        "firebase_analytics",
        "admob",
        "facebook_sdk",
    }
    with zipfile.ZipFile(APKS / "messenger.apk") as zf:
        so = zf.read("lib/arm64-v8a/libmessenger.so")
        assert zf.read("classes.dex") == (APKS / "messenger.dex").read_bytes()
    assert so[:4] == b"\x7fELF" and so[4] == 2  # ELFCLASS64
    assert struct.unpack_from("<HH", so, 16) == (3, 183)  # ET_DYN, EM_AARCH64


def test_multidex_layout() -> None:
    with zipfile.ZipFile(APKS / "multidex.apk") as zf:
        names = set(zf.namelist())
    assert {"classes.dex", "classes2.dex", "classes3.dex"} <= names
    c = read_contents(APKS / "multidex.apk")
    assert "https://alog.umeng.com/app_logs" in c.texts[("dex", "classes2.dex")]
    assert "https://tsis.jpush.cn" in c.texts[("dex", "classes3.dex")]


@pytest.mark.parametrize(
    ("fixture", "meta", "apks"),
    [
        ("messenger.apks", None, ("base.apk", "split_config.arm64_v8a.apk", "split_config.xxhdpi.apk")),
        (
            "messenger.apkm",
            "info.json",
            ("base.apk", "split_config.arm64_v8a.apk", "split_config.xxhdpi.apk"),
        ),
        (
            "messenger.xapk",
            "manifest.json",
            ("com.example.messenger.apk", "config.arm64_v8a.apk", "config.xxhdpi.apk"),
        ),
    ],
)
def test_split_bundle_layout(fixture: str, meta: str | None, apks: tuple[str, str, str]) -> None:
    with zipfile.ZipFile(APKS / fixture) as zf:
        assert {n for n in zf.namelist() if n.endswith(".apk")} == set(apks)
        base, arm, xx = (APK(zf.read(n), raw=True) for n in apks)
        info = json.loads(zf.read(meta)) if meta else None
    assert base.get_package() == arm.get_package() == xx.get_package() == "com.example.messenger"
    assert "classes.dex" in base.get_files() and not any(f.startswith("lib/") for f in base.get_files())
    assert arm.get_files() == ["AndroidManifest.xml", "lib/arm64-v8a/libmessenger.so"]
    assert any("xxhdpi" in f for f in xx.get_files())
    split_attrs = [a.get_android_manifest_xml().get("split") for a in (base, arm, xx)]
    assert split_attrs == [None, "config.arm64_v8a", "config.xxhdpi"]
    if fixture.endswith(".xapk"):
        assert info is not None and info["package_name"] == "com.example.messenger"
        assert {s["file"] for s in info["split_apks"]} == set(apks)
    if fixture.endswith(".apkm"):
        assert info is not None and info["pname"] == "com.example.messenger"


def test_aab_layout_and_proto_manifest() -> None:
    with zipfile.ZipFile(APKS / "messenger.aab") as zf:
        names = set(zf.namelist())
        manifest = pb_xml(zf.read("base/manifest/AndroidManifest.xml"))
        assert zf.read("base/dex/classes.dex") == (APKS / "messenger.dex").read_bytes()
    assert {"BundleConfig.pb", "base/resources.pb", "base/assets/config.json"} <= names
    assert "base/lib/arm64-v8a/libmessenger.so" in names
    t = load_truth(APKS / "messenger.aab.truth.json")
    assert manifest["tag"] == "manifest"
    assert manifest["attrs"]["package"] == t["package"]
    assert manifest["attrs"]["versionCode"] == t["version_code"]
    assert manifest["attrs"]["versionName"] == t["version_name"]
    perms = sorted(ch["attrs"]["name"] for ch in manifest["children"] if ch["tag"] == "uses-permission")
    assert perms == t["permissions"]


def test_hostile_strings_survive_into_the_package() -> None:
    apk = APK(str(APKS / "hostile_strings.apk"))
    values = [
        m.get("{http://schemas.android.com/apk/res/android}value")
        for m in apk.get_android_manifest_xml().iter("meta-data")
    ]
    assert '"><img src=x onerror=alert(1)>' in values
    assert "<script>alert(1)</script>" in apk.get_app_name()
    strings = read_contents(APKS / "hostile_strings.apk").texts[("dex", "classes.dex")]
    assert "https://evil.example-xss.com/a<script>alert(1)</script>" in strings


# --------------------------------------------------------------------------------------------
# Hostile inputs carry their defects
# --------------------------------------------------------------------------------------------


def test_hostile_readme_lists_every_file() -> None:
    readme = (HOSTILE / "README.md").read_text(encoding="utf-8")
    for p in HOSTILE.iterdir():
        if p.name != "README.md":
            assert f"`{p.name}`" in readme, p.name


def test_hostile_not_zip_empty_truncated() -> None:
    assert not zipfile.is_zipfile(HOSTILE / "not_a_zip.apk")
    assert (HOSTILE / "empty.apk").stat().st_size == 0
    truncated = (HOSTILE / "truncated.apk").read_bytes()
    assert (APKS / "messenger.apk").read_bytes().startswith(truncated) and truncated[:2] == b"PK"
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(HOSTILE / "truncated.apk")


def test_hostile_zipbombs_are_small_files_with_huge_contents() -> None:
    bomb = HOSTILE / "zipbomb.apk"
    assert bomb.stat().st_size < 1_500_000
    with zipfile.ZipFile(bomb) as zf:
        assert max(i.file_size for i in zf.infolist()) >= 1 << 30
    total = HOSTILE / "zipbomb_total.apk"
    assert total.stat().st_size < 1_500_000
    with zipfile.ZipFile(total) as zf:
        infos = zf.infolist()
    assert sum(i.file_size for i in infos) > 1 << 30
    assert max(i.file_size for i in infos) <= 32 << 20  # no single entry is huge
    assert len(infos) > 40


def test_hostile_traversal_names_are_raw() -> None:
    with zipfile.ZipFile(HOSTILE / "traversal.apk") as zf:
        names = zf.namelist()
    assert {"../../evil.txt", "/abs/path", "classes.dex", "AndroidManifest.xml"} <= set(names)


def test_hostile_nested_apks_is_three_levels() -> None:
    with zipfile.ZipFile(HOSTILE / "nested.apks") as outer:
        inner_name = outer.namelist()[0]
        assert inner_name.endswith(".apks")
        with zipfile.ZipFile(io.BytesIO(outer.read(inner_name))) as inner:
            assert inner.namelist() == ["base.apk"]
            assert zipfile.is_zipfile(io.BytesIO(inner.read("base.apk")))


def test_hostile_dex_defects() -> None:
    assert not (HOSTILE / "corrupt.dex").read_bytes().startswith(b"dex\n")
    with zipfile.ZipFile(HOSTILE / "corrupt_dex.apk") as zf:
        dex = zf.read("classes.dex")
        assert "AndroidManifest.xml" in zf.namelist()
    assert dex.startswith(b"dex\n")
    string_ids_off = struct.unpack_from("<I", dex, 0x3C)[0]
    map_off = struct.unpack_from("<I", dex, 0x34)[0]
    assert string_ids_off > len(dex) and map_off > len(dex)


def test_hostile_manifest_defects() -> None:
    with zipfile.ZipFile(HOSTILE / "garbled_manifest.apk") as zf:
        assert zf.read("AndroidManifest.xml")[:4] != b"\x03\x00\x08\x00"  # not binary AXML
        assert zf.read("classes.dex").startswith(b"dex\n035\0")
    with zipfile.ZipFile(HOSTILE / "missing_manifest.apk") as zf:
        assert "AndroidManifest.xml" not in zf.namelist() and "classes.dex" in zf.namelist()


# --------------------------------------------------------------------------------------------
# The committed outputs are what build.py produces
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_name", "truth_name"),
    [("messenger_spec", "messenger"), ("multidex_spec", "multidex"), ("obfuscated_spec", "obfuscated")],
)
def test_committed_truths_match_the_builder(spec_name: str, truth_name: str) -> None:
    from tests.fixtures import build

    spec = getattr(build, spec_name)()
    assert build.truth(spec, fixture=f"{spec.name}.apk", fmt="apk") == load_truth(
        APKS / f"{truth_name}.truth.json"
    )


@pytest.mark.skipif(shutil.which("apktool") is None, reason="apktool not installed")
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    from tests.fixtures import build

    tree = build.write_tree(build.obfuscated_spec(), tmp_path / "src")
    out = build.build_apk(tree, tmp_path / "obfuscated.apk")
    assert out.read_bytes() == (APKS / "obfuscated.apk").read_bytes()
    assert not (tree / "build").exists()
