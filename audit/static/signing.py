"""Who signed the app: the certificates of the v1 (JAR), v2, v3 and v3.1 signature schemes.

v1 signatures are PKCS#7 files under ``META-INF/`` (``CERT.RSA`` beside ``CERT.SF``); v2, v3 and
v3.1 live in the APK Signing Block just before the zip central directory
(source.android.com/docs/security/features/apksigning/v2 and /v3). The certificates and the PKCS#7
structures are decoded by ``cryptography``. The block's framing (a few nested length-prefixed
sequences) is read here, with a bound on every length: androguard reads it too
(``APK.parse_v2_v3_signature``), but importing ``androguard.core.apk`` costs about 0.3 s of every
scan and reads the whole APK into memory; ``tests/static/test_signing.py`` checks that both agree.

Nothing here verifies a signature: a signer is the certificate the package *declares*. Android
refuses to install a package whose signatures do not verify, so for an installable copy the
declaration is the signer; ``apksigner verify`` checks one that matters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from audit.models import SIGNATURE_SCHEMES, Signer
from audit.static.archive import Archive, EntryError

__all__ = ["BLOCK_MAGIC", "merge_signers", "read_signers", "signing_block"]

log = logging.getLogger(__name__)

BLOCK_MAGIC = b"APK Sig Block 42"
#: ID-value pairs of the APK Signing Block that hold signers, by scheme.
SCHEME_IDS = {0x7109871A: "v2", 0xF05368C0: "v3", 0x1B93AD61: "v3.1"}
#: Largest signing block read. Real ones are a few KiB (64 KiB with apksigner's padding and a
#: rotation lineage); a declared size past this is noted, not read.
MAX_BLOCK = 32 << 20
#: Signers per scheme, and PKCS#7 files, read at most (real apps: one).
MAX_SIGNERS = 32
_V1_SIGNATURE = re.compile(r"META-INF/[^/]+\.(RSA|DSA|EC)")
_U32 = struct.Struct("<I")


class SigningError(ValueError):
    """A signing block or signature file whose structure does not hold together."""


def signing_block(fp: IO[bytes], cd_offset: int) -> dict[int, memoryview] | None:
    """The ID → value pairs of the APK Signing Block ending at ``cd_offset`` (the start of the
    central directory), or None when there is none. Raises :class:`SigningError` when the block
    is malformed or larger than :data:`MAX_BLOCK`."""
    if cd_offset < 32:
        return None
    fp.seek(cd_offset - 24)
    footer = fp.read(24)
    if len(footer) != 24 or footer[8:] != BLOCK_MAGIC:
        return None
    (size,) = struct.unpack_from("<Q", footer)
    # size counts the pairs, the trailing size and the magic, not the leading size field
    if size < 24 or size + 8 > cd_offset:
        raise SigningError(f"APK Signing Block size {size} does not fit before the central directory")
    if size > MAX_BLOCK:
        raise SigningError(f"APK Signing Block of {size >> 20} MiB, more than the {MAX_BLOCK >> 20} MiB read")
    fp.seek(cd_offset - size - 8)
    block = memoryview(fp.read(size + 8))
    if len(block) != size + 8 or struct.unpack_from("<Q", block)[0] != size:
        raise SigningError("APK Signing Block sizes at its start and end differ")
    pairs: dict[int, memoryview] = {}
    pos, end = 8, size + 8 - 24
    while pos < end:
        if pos + 12 > end:
            raise SigningError("APK Signing Block pair cut off")
        length, key = struct.unpack_from("<QI", block, pos)
        if length < 4 or pos + 8 + length > end:
            raise SigningError(f"APK Signing Block pair 0x{key:08x} runs past the block")
        pairs.setdefault(key, block[pos + 12 : pos + 8 + length])  # the first one counts, as for apksig
        pos += 8 + length
    return pairs


def _sequence(view: memoryview, what: str) -> Iterator[memoryview]:
    """The items of a sequence of uint32-length-prefixed items filling ``view``."""
    pos = 0
    while pos < len(view):
        if pos + 4 > len(view):
            raise SigningError(f"{what}: length prefix cut off")
        (n,) = _U32.unpack_from(view, pos)
        if pos + 4 + n > len(view):
            raise SigningError(f"{what}: item of {n} bytes runs past its sequence")
        yield view[pos + 4 : pos + 4 + n]
        pos += 4 + n


def _prefixed(view: memoryview, pos: int, what: str) -> tuple[memoryview, int]:
    """One uint32-length-prefixed field at ``pos``, and the position after it."""
    if pos + 4 > len(view):
        raise SigningError(f"{what}: cut off")
    (n,) = _U32.unpack_from(view, pos)
    if pos + 4 + n > len(view):
        raise SigningError(f"{what}: {n} bytes run past its signer")
    return view[pos + 4 : pos + 4 + n], pos + 4 + n


def scheme_certificates(value: memoryview, scheme: str) -> list[bytes]:
    """The signing certificate (DER) of each signer of a v2/v3/v3.1 block value: the first
    certificate of its signed data (any further ones are its chain)."""
    out = []
    signers = _prefixed(value, 0, f"{scheme} signers")[0]
    for i, signer in enumerate(_sequence(signers, f"{scheme} signers")):
        if i >= MAX_SIGNERS:
            break
        signed_data, _ = _prefixed(signer, 0, f"{scheme} signed data")
        _digests, pos = _prefixed(signed_data, 0, f"{scheme} digests")
        certificates, _ = _prefixed(signed_data, pos, f"{scheme} certificates")
        first = next(_sequence(certificates, f"{scheme} certificates"), None)
        if first is None:
            raise SigningError(f"{scheme} signer without a certificate")
        out.append(bytes(first))
    return out


def v1_certificates(pkcs7: bytes) -> list[bytes]:
    """The signer certificates (DER) of a JAR signature file (PKCS#7 SignedData)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.hazmat.primitives.serialization import pkcs7 as p7

    certs = p7.load_der_pkcs7_certificates(pkcs7)
    if len(certs) <= 1:
        return [c.public_bytes(Encoding.DER) for c in certs]
    # Several certificates (a chain): the signer is the one its SignerInfo names by issuer and
    # serial number, which cryptography does not expose; asn1crypto (an androguard dependency) does.
    from asn1crypto import cms

    wanted = []
    for info in cms.ContentInfo.load(pkcs7)["content"]["signer_infos"]:
        sid = info["sid"]
        if sid.name == "issuer_and_serial_number":
            wanted.append((sid.chosen["issuer"].dump(), int(sid.chosen["serial_number"].native)))
    chosen = [c for c in certs if (c.issuer.public_bytes(), c.serial_number) in wanted]
    return [c.public_bytes(Encoding.DER) for c in (chosen or certs[:1])]


def _key(cert: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    try:
        key = cert.public_key()
    except (ValueError, TypeError):  # a key algorithm cryptography does not know
        return (
            cert.public_key_algorithm_oid.dotted_string if hasattr(cert, "public_key_algorithm_oid") else ""
        )
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return type(key).__name__.removesuffix("PublicKey")
    return type(key).__name__


def describe(der: bytes, schemes: Iterable[str]) -> tuple[Signer, str | None]:
    """A :class:`Signer` for one DER certificate, and a note when it cannot be decoded (the
    fingerprint is the certificate's identity and is always given)."""
    import warnings

    from cryptography import x509

    order = tuple(s for s in SIGNATURE_SCHEMES if s in set(schemes))
    fingerprint = hashlib.sha256(der).hexdigest()
    try:
        cert = x509.load_der_x509_certificate(der)
        with warnings.catch_warnings():
            # real certificates break X.520 length rules (a 6-letter C=); cryptography warns, Android does not care
            warnings.simplefilter("ignore")
            subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        signer = Signer(
            sha256=fingerprint,
            schemes=order,
            subject=subject,
            issuer=issuer,
            serial=f"{cert.serial_number:x}" if cert.serial_number >= 0 else f"-{-cert.serial_number:x}",
            not_before=cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            key=_key(cert),
        )
    except (ValueError, TypeError) as e:
        return Signer(
            fingerprint, order, "", "", "", "", "", ""
        ), f"certificate {fingerprint[:16]}… cannot be decoded ({e})"
    return signer, None


def read_signers(archive: Archive) -> tuple[tuple[Signer, ...], list[str]]:
    """Every signing certificate of one APK (or the v1 signature of an app bundle), sorted by
    fingerprint, with the schemes carrying it; and notes for signature data that cannot be read."""
    found: dict[bytes, set[str]] = {}
    notes: list[str] = []
    where = archive.prefix
    names = {i.filename for i in archive.entries()}
    v1 = [i for i in archive.entries() if _V1_SIGNATURE.fullmatch(i.filename)]
    for info in v1[:MAX_SIGNERS]:
        if info.filename.rpartition(".")[0] + ".SF" not in names:
            continue  # no signature file: Android ignores it, so do we
        try:
            for der in v1_certificates(archive.read(info)):
                found.setdefault(der, set()).add("v1")
        except EntryError as e:
            notes.append(str(e))
        except (ValueError, TypeError, KeyError) as e:  # ValueError: not PKCS#7; asn1crypto raises these too
            notes.append(f"{where}{info.filename}: signature cannot be read ({e})")
    pairs = None
    try:
        if archive.zf.fp is not None:
            pairs = signing_block(archive.zf.fp, archive.zf.start_dir)  # type: ignore[attr-defined]
    except (SigningError, struct.error, OSError) as e:
        notes.append(f"{where}APK Signing Block cannot be read ({e})")
    for key, scheme in SCHEME_IDS.items():
        if pairs and key in pairs:
            try:
                for der in scheme_certificates(pairs[key], scheme):
                    found.setdefault(der, set()).add(scheme)
            except (SigningError, struct.error) as e:
                notes.append(f"{where}{scheme} signature cannot be read ({e})")
    signers = []
    for der, schemes in found.items():
        signer, note = describe(der, schemes)
        signers.append(signer)
        if note:
            notes.append(f"{where}{note}")
    return tuple(sorted(signers, key=lambda s: s.sha256)), notes


def merge_signers(groups: Iterable[Sequence[Signer]]) -> tuple[Signer, ...]:
    """One list for the APKs of a bundle: each certificate once, with every scheme any APK used."""
    merged: dict[str, Signer] = {}
    for group in groups:
        for s in group:
            seen = merged.get(s.sha256)
            if seen is None:
                merged[s.sha256] = s
            else:
                schemes = set(seen.schemes) | set(s.schemes)
                merged[s.sha256] = dataclasses.replace(
                    seen, schemes=tuple(x for x in SIGNATURE_SCHEMES if x in schemes)
                )
    return tuple(merged[k] for k in sorted(merged))
