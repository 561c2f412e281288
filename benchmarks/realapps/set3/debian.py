# ruff: noqa: F821  (Archive, App, pip, wheel, npm, deb are given by fetch.load_set, which execs this file)
"""Set 3, Debian: the one app of Debian's ``androguard`` package that sets 1 and 2 did not take.

Exec'd by ``fetch.load_set(3)``; the package is set 1's archive (declared in ``fetch.py``).

* ``examples/malware/4e2201cde26141715255d2421f0bcfb1.zip``: Android WipeLocker.A (package
  com.elite, support-v4), a malware sample from Contagio Mobile that androguard ships in a zip
  encrypted with the password ``infected`` (its README). ``fetch.py`` decrypts the one entry into the
  cache: never install it on a device.

Checked and left out: androguard 3.4.0~a1-17 (trixie and bookworm-backports) ships the same example
files as bookworm's 3.4.0~a1-6, and 4.1.4-1 (sid) ships none; the other Debian packages with Android
files (android-framework-res 14, apksigcopier, python3-apkinspector, python3-pyaxmlparser,
fdroidserver 2.4.5-1, golang-github-avast-apkparser-dev and -apkverifier-dev) hold no DEX. Debian's
source packages were not used: the machine's sources have no deb-src lines (``fetch.py`` could not
download them as configured), several pool files are not served, androguard's orig tarball holds the
same examples, and apktool's test APKs are Android Studio templates (support libraries and at most 18
classes of their own).
"""

ARCHIVES = ()

APPS = (
    App("deb-androguard-wipelocker.apk", "androguard_3.4.0~a1-6_all.deb",
        "usr/share/doc/androguard/examples/malware/4e2201cde26141715255d2421f0bcfb1.zip",
        "f75678b7e7fa2ed0f0d2999800f2a6a66c717ef76b33a7432f1ca3435b4831e0", zip_password="infected"),
)  # fmt: skip
