# ruff: noqa: F821  (Archive, App, pip, wheel, npm, deb are given by fetch.load_set, which execs this file)
"""Set 2, Debian: DEX files that set 1 left in Debian's ``androguard`` package (bookworm's main).

Exec'd by ``fetch.load_set(2)`` with ``Archive``, ``App`` and ``deb`` in scope.

The machine's Debian sources (bookworm, bookworm-updates, bookworm-security; main only) hold APK or
DEX files in two packages alone (``apt-file search`` over every file list): ``androguard`` and
``android-framework-res``. Set 1 took androguard's APKs; its test directory also holds bare ``.dex``
files, which set 1 did not take, and those are kept here:

* the MIUI Security Center's DEX (``tests/dc4b1bb9….37.dex``): Xiaomi push, analytics and ads,
  Facebook Audience Network, InMobi, Google ads, Universal Image Loader, Thrift;
* four F-Droid apps' DEX files: AndStatus 254 (a social-network client), Nextcloud PhoneTrack 2,
  Trigger 130 (a door-opener client over HTTPS) and Minimal Calendar Widget 17;
* OkHttp's DEX as built by d8 for DEX version 039 (``tests/okhttp.d8.039.dex``);
* two small DEX files: Samsung's ``com.sec.dsm`` (Find My Mobile's device-security manager, 69 classes)
  and ``com.smt.imfs`` (a flash-card app that registers by SMS, 37 classes).

Left out: androguard's other DEX and APK files that are the code of a set-1 app again
(``TestsAnnotation/classes.dex`` is the text-styling sample's DEX byte for byte,
``partialsignature.apk`` holds a2dp.Vol's DEX, ``TestsAndroguard/bin/classes.dex`` and the
``signing/TestActivity_*`` APKs are TestActivity's code), the three other OkHttp builds (d8 038, dx
038 and 039: the same classes), and the test stubs of fewer than 20 classes (``TC``/``TCDiff``,
``dalvik/test``, the ``signing/apksig`` and politedroid/urzip/duplicate-permissions APKs);
``android-framework-res``'s ``framework-res.apk`` (resources only, no DEX). No other Debian package
ships a DEX: the Android tool jars (apktool, smali, apksig, the Gradle plugin, WALA's dalvik
front end, kotlin) are JVM bytecode, and the Go packages' test data (apkparser, soong) are binary
XML and plain zips.
"""

ARCHIVES = (
    Archive("androguard_3.4.0~a1-6_all.deb", "ff8d3a5c5e7ef441cc82c40178923f4fdb078e3e68d1e54572212e8f6aa6369a",
            deb("androguard=3.4.0~a1-6"), "Debian"),
)  # fmt: skip

_AG = "usr/share/doc/androguard/examples/tests/"
_DEB = "androguard_3.4.0~a1-6_all.deb"

APPS = (
    App("deb-miui-securitycenter.dex", _DEB, _AG + "dc4b1bb9d58daa82f29e60f79d5662f731a3351f.37.dex",
        "d99efa7275efef84bb25c555f6bc60b2fd81c9a78ddf074c0a9353fc25696a97"),
    App("deb-fdroid-org.andstatus.app_254.dex", _DEB, _AG + "fdroid/org.andstatus.app_254.dex",
        "fe9cb56a9fd2471d633da2110f3c39ce88bf74b0e52d32c5e08cf95214229ed5"),
    App("deb-fdroid-phonetrack_2.dex", _DEB, _AG + "fdroid/net.eneiluj.nextcloud.phonetrack_2.dex",
        "384b4cb9ade0324930ac354f6314c7aa9d33df2ef774507c1260088cfb70a0d6"),
    App("deb-fdroid-com.example.trigger_130.dex", _DEB, _AG + "fdroid/com.example.trigger_130.dex",
        "de36e65f2ff6c56840409dc2b39bfcbf6c54d0ee47f52b4c7afd1b5922520ba8"),
    App("deb-fdroid-minimalcalendarwidget_17.dex", _DEB, _AG + "fdroid/cat.mvmike.minimalcalendarwidget_17.dex",
        "98fd6122495ed3573dd808478c31dfe76df2a4d11adeacf16e3faf1d074f68d3"),
    App("deb-okhttp.d8.039.dex", _DEB, _AG + "okhttp.d8.039.dex",
        "b782b36a8387317f8daf9b04016844a13bdf1bb654c7987e542fef3670e31acb"),
    App("deb-samsung-sec-dsm.dex", _DEB, _AG + "2992e3a94a774ddfe2b50c6e8667d925a5684d71.36.dex",
        "e04887faca8d3feab96a6df5fa9cde81c3fd3ca4d8f69f4ac99526d27744c0ae"),
    App("deb-smt-imfs.dex", _DEB, _AG + "921d74ac9568121d0ea1453922a369cb66739c68.36.dex",
        "eee553c056e5c890df5f9661b1c5f2c173b07ada366406b7350f8749476dd729"),
)  # fmt: skip
