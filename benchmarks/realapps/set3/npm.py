# ruff: noqa: F821  (Archive, App, pip, wheel, npm, deb are given by fetch.load_set, which execs this file)
"""Set 3, npm: no app. Every npm package checked for set 3 holds no DEX, or only other builds of apps
already in a set; kept so that the next set does not check them again.

Other builds: appium-uiautomator 1.3.0's test fixture AppiumBootstrap.jar (set 2 has
appium-android-bootstrap 3.0.0's), sample-apps 1.1.0 (the same three APKs as set 2's 2.0.4),
appium-espresso-driver's bundled io.appium.settings 5.x (set 1 has 8.0.10). No DEX: unicorn-demo-app,
node-apk, node-apk-parser, apk-parser, apk-manifest-parser, minicap-prebuilt 2.3.0 (native only),
nativescript-dev-appium, cordova-plugin-apkupdater, com.testfairy.cordova-plugin,
react-native-testfairy, com.adjust.sdk, com.razorpay.cordova, io.justtrack.justtrack-unity-sdk (their
native SDKs come from Maven at build time), appium-youiengine-driver, appium-flutter-integration-driver,
appium-device-farm, uiautomator2, selendroid, appium-selendroid-installer, mobile-mcp,
@mobilenext/mobile-mcp and @mobilenext/mobilecli (which downloads its device agent at run time).
"""

ARCHIVES = ()

APPS = ()
