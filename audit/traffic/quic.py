"""The server name of a QUIC connection, from the client's Initial packets.

QUIC Initial packets are encrypted, but with keys derived from the Destination Connection ID in the
clear header (RFC 9001 §5.2; RFC 9369 §3.3 for QUIC v2), so anyone on the path can read the
ClientHello carried in their CRYPTO frames. Steps: derive the client Initial secret with HKDF,
remove header protection (AES-128-ECB mask over a 16-byte sample, §5.4), decrypt the payload with
AES-128-GCM (§5.3), collect CRYPTO frames (RFC 9000 §19.6) and parse the ClientHello.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from audit.traffic.tls import ClientHello, parse_client_hello

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF

# RFC 9001 §5.2 and RFC 9369 §3.3.1: (salt, key label, iv label, hp label, Initial packet type bits)
_VERSIONS = {
    QUIC_V1: (
        bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
        b"quic key",
        b"quic iv",
        b"quic hp",
        0,
    ),
    QUIC_V2: (
        bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
        b"quicv2 key",
        b"quicv2 iv",
        b"quicv2 hp",
        1,
    ),
}

_MAX_CRYPTO = 64 * 1024


@dataclass(frozen=True)
class InitialKeys:
    key: bytes
    iv: bytes
    hp: bytes


def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context (RFC 8446 §7.1)."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(secret)


def client_initial_keys(dcid: bytes, version: int = QUIC_V1) -> InitialKeys:
    """Keys protecting the client's Initial packets of a connection whose first DCID is ``dcid``."""
    salt, key_label, iv_label, hp_label, _ = _VERSIONS[version]
    h = hmac.HMAC(salt, hashes.SHA256())
    h.update(dcid)
    initial_secret = h.finalize()  # HKDF-Extract
    secret = hkdf_expand_label(initial_secret, b"client in", 32)
    return InitialKeys(
        key=hkdf_expand_label(secret, key_label, 16),
        iv=hkdf_expand_label(secret, iv_label, 12),
        hp=hkdf_expand_label(secret, hp_label, 16),
    )


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """RFC 9000 §16 variable-length integer at ``pos`` → (value, next position)."""
    first = data[pos]
    length = 1 << (first >> 6)
    if pos + length > len(data):
        raise IndexError("varint past end")
    value = first & 0x3F
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


def hp_mask(hp_key: bytes, sample: bytes) -> bytes:
    enc = Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor()
    return enc.update(sample) + enc.finalize()


@dataclass
class InitialPacket:
    version: int
    dcid: bytes
    payload: bytes
    """Decrypted frames."""


def initial_header(datagram: bytes) -> tuple[int, bytes] | None:
    """(version, DCID) if the datagram starts with a long-header Initial packet of a known version."""
    if len(datagram) < 7 or datagram[0] & 0xC0 != 0xC0:
        return None
    version = int.from_bytes(datagram[1:5], "big")
    if version not in _VERSIONS or (datagram[0] >> 4) & 0x03 != _VERSIONS[version][4]:
        return None
    dcid_len = datagram[5]
    if dcid_len > 20 or 6 + dcid_len > len(datagram):
        return None
    return version, datagram[6 : 6 + dcid_len]


def decrypt_initial(datagram: bytes, keys: InitialKeys | None = None) -> InitialPacket | None:
    """Decrypt the first (Initial) packet of a client datagram; None if it is not one or is damaged.

    ``keys`` default to those derived from this packet's own DCID (right for the client's first
    flight; later client Initials must use the keys of the connection's first DCID).
    """
    header = initial_header(datagram)
    if header is None:
        return None
    version, dcid = header
    try:
        p = 6 + len(dcid)
        p += 1 + datagram[p]  # source connection id
        token_len, p = read_varint(datagram, p)
        p += token_len
        length, p = read_varint(datagram, p)
        pn_offset = p
        if pn_offset + 4 + 16 > len(datagram) or pn_offset + length > len(datagram):
            return None
        keys = keys or client_initial_keys(dcid, version)
        mask = hp_mask(keys.hp, datagram[pn_offset + 4 : pn_offset + 20])
        first = datagram[0] ^ (mask[0] & 0x0F)
        pn_len = (first & 0x03) + 1
        pn_bytes = bytes(
            b ^ m for b, m in zip(datagram[pn_offset : pn_offset + pn_len], mask[1 : 1 + pn_len], strict=True)
        )
        header_bytes = bytes([first]) + datagram[1:pn_offset] + pn_bytes
        pn = int.from_bytes(pn_bytes, "big")
        nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
        ciphertext = datagram[pn_offset + pn_len : pn_offset + length]
        payload = AESGCM(keys.key).decrypt(nonce, ciphertext, header_bytes)
    except (IndexError, InvalidTag, ValueError):
        return None
    return InitialPacket(version=version, dcid=dcid, payload=payload)


def crypto_frames(payload: bytes) -> list[tuple[int, bytes]]:
    """(offset, data) of every CRYPTO frame in a decrypted Initial payload."""
    out: list[tuple[int, bytes]] = []
    p = 0
    try:
        while p < len(payload):
            ftype = payload[p]
            p += 1
            if ftype in (0x00, 0x01):  # PADDING, PING
                continue
            if ftype in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges [, ECN]
                _, p = read_varint(payload, p)
                _, p = read_varint(payload, p)
                count, p = read_varint(payload, p)
                _, p = read_varint(payload, p)
                for _ in range(2 * count + (3 if ftype == 0x03 else 0)):
                    _, p = read_varint(payload, p)
            elif ftype == 0x06:
                offset, p = read_varint(payload, p)
                length, p = read_varint(payload, p)
                out.append((offset, payload[p : p + length]))
                p += length
            else:  # CONNECTION_CLOSE or anything not allowed in Initials: stop
                break
    except IndexError:
        pass
    return out


@dataclass
class QuicInitialReader:
    """Follows the client side of one QUIC connection until its ClientHello is readable.

    Browsers split large ClientHellos over several Initial packets, so CRYPTO data is reassembled
    by offset; all of them use the keys of the first DCID the client chose.
    """

    keys: InitialKeys | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    hello: ClientHello | None = None
    seen: bool = False
    """At least one Initial packet was decrypted."""

    def feed(self, datagram: bytes) -> ClientHello | None:
        if self.hello is not None and self.hello.sni:
            return self.hello
        header = initial_header(datagram)
        if header is None:
            return self.hello
        if self.keys is None:
            self.keys = client_initial_keys(header[1], header[0])
        packet = decrypt_initial(datagram, self.keys)
        if packet is None:
            return self.hello
        self.seen = True
        for offset, data in crypto_frames(packet.payload):
            if offset < _MAX_CRYPTO:
                self.chunks[offset] = data
        stream = self._contiguous()
        if len(stream) >= 4:
            self.hello = parse_client_hello(stream)
        return self.hello

    def _contiguous(self) -> bytes:
        out = bytearray()
        for offset in sorted(self.chunks):
            data = self.chunks[offset]
            if offset > len(out):
                break
            out += data[len(out) - offset :]
        return bytes(out)


def parse_quic_initial(datagram: bytes) -> ClientHello | None:
    """The ClientHello of a single client Initial datagram, if it carries a readable one."""
    return QuicInitialReader().feed(datagram)
