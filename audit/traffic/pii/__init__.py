"""Which personal data an HTTP request carries.

Two kinds of detection, both over every part of a request (host, path segments, query names and
values, headers, cookies, and bodies: form, JSON, XML, multipart, text, printable strings of binary
data; Content-Encoding undone; base64 blobs decoded and re-scanned):

* **known** values from a :class:`~audit.traffic.profile.DeviceProfile`, in every encoding apps
  use (case variants, without separators, URL-encoded, base64, hex, MD5/SHA-1/SHA-256). All
  variants of all values are compiled once into a single trie-shaped regular expression, so a
  request is scanned in one pass per field whatever the number of values.
* **pattern** detectors that need no profile: e-mail addresses, Luhn-valid IMEIs, MAC addresses,
  advertising IDs, coordinates, phone numbers, Android IDs, IMSI/ICCID and serials under telling
  keys.

``PiiDetector(None)`` runs the pattern detectors only; it is cheap and meant to run on every
request the addon and the importers see. Raw values never leave this module: findings carry
:func:`mask` ed values only, and nothing is logged.

The package has one module per concern: :mod:`~audit.traffic.pii.keys` (key vocabularies),
:mod:`~audit.traffic.pii.patterns`, :mod:`~audit.traffic.pii.known` (device-profile values),
:mod:`~audit.traffic.pii.fields` (request → fields) and :mod:`~audit.traffic.pii.detector`; the re-scan
of a case file (``audit pii``) is a case-level operation, :mod:`audit.rescan`.
"""

from audit.traffic.pii.detector import PiiDetector
from audit.traffic.pii.keys import normalize_key
from audit.traffic.pii.values import luhn_ok, mask

__all__ = ["PiiDetector", "luhn_ok", "mask", "normalize_key"]
