"""dataflow-audit recorder for mitmproxy: every server the app reaches goes into the case file.

Usage: mitmdump -s addons/dataflow.py --set audit_db=capture.sqlite --set audit_app=com.example.app

Works in every mode (regular, transparent, wireguard, local, reverse, socks5, dns). More options:
``--set audit_device=device.toml``, ``--set audit_mmdb=GeoLite2-City.mmdb``,
``--set audit_body_limit=65536``, ``--set audit_flush_interval=500``. See docs/capture.md.
"""

from audit.traffic.addon import Recorder

addons = [Recorder()]
