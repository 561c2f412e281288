"""Builders shared by more than one test module (cases, captures, mitmdump, browser, APK contents).

Test modules import from here, from ``tests.conftest`` and from ``tests.fixtures`` only, never from
another ``test_*`` module (``tests/test_test_layout.py``)."""
