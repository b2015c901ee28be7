"""Apple Game Center sign-in, as Parse Server 9's ``gcenter`` adapter checks it.

The client sends what GameKit's ``fetchItems(forIdentityVerificationSignature:)`` gives:
``{id (the playerId), publicKeyUrl, timestamp, signature, salt}`` (signature and salt in base64).
The server fetches the certificate at ``publicKeyUrl`` (only ``https://*.apple.com/….cer``, plus
the hosts of ``publicKeyUrlHosts``), checks that it is current and directly issued by a trusted CA
(by default the DigiCert code-signing CA Parse Server downloads from ``rootCertificateUrl``), and
verifies the signature (RSA or ECDSA with SHA-256) over
``playerId + bundleId + timestamp (big-endian uint64) + salt``, with the configured ``bundleId``.

Parse Server checks neither the certificate's dates nor the timestamp's age; Bastion refuses an
expired certificate, and refuses old timestamps when ``maxTimestampAge`` (seconds) is set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult
from bastion.domain.auth_providers.fetch import check_url
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

# The CA Apple's Game Center certificates are issued by, as Parse Server 9 downloads it.
DEFAULT_ROOT_URL = ("https://cacerts.digicert.com/"
                    "DigiCertTrustedG4CodeSigningRSA4096SHA3842021CA1.crt.pem")
# Parse's rule for publicKeyUrl: https, a host under apple.com, a .cer file.
_APPLE_URL = re.compile(r"https://(?:[-_A-Za-z0-9]+\.)*apple\.com/.*\.cer", re.ASCII)
MAX_CERT_BYTES = 64 * 1024
MAX_ROOT_BYTES = 10_000  # Parse refuses a larger rootCertificateUrl document
CACHE_ENTRIES = 64  # certificate URLs kept; real clients use one or two
DEFAULT_CACHE_SECONDS = 3600.0  # when the answer has no Cache-Control max-age
MAX_CACHE_SECONDS = 86400.0
ROOT_RETRY_SECONDS = 10.0  # after a failed CA download, before trying again
_OPTIONS = {"bundleId", "enableInsecureAuth", "rootCertificateUrl", "caCertificates", "caFile",
            "publicKeyUrlHosts", "maxTimestampAge", "enabled", "module", "appIds"}
_UNKNOWN = "Auth failed. Unknown error."


class _FetchFailed(Exception):
    pass


@dataclass(slots=True)
class _Cached:
    certificate: x509.Certificate
    until: float  # monotonic


def _refused(message: str) -> ParseError:
    return ParseError(Code.OBJECT_NOT_FOUND, message)


def load_pem_bundle(text: str | bytes, what: str) -> list[x509.Certificate]:
    data = text.encode() if isinstance(text, str) else text
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"{what} must hold PEM certificates") from None
    return certificates


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


class GameCenterAdapter(AuthAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.bundle_ids: tuple[str, ...] = ()
        self.insecure = False
        self.extra_hosts: frozenset[str] = frozenset()
        self.max_timestamp_age: float | None = None
        self.root_url: str | None = None
        self.roots: list[x509.Certificate] = []
        self._root_failed_at: float | None = None
        self._root_lock = asyncio.Lock()
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    # --- options ------------------------------------------------------------------------------------

    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, _OPTIONS)
        bundle_id = options.get("bundleId")
        if isinstance(bundle_id, str):
            self.bundle_ids = (bundle_id,) if bundle_id else ()
        elif isinstance(bundle_id, list) and all(isinstance(b, str) and b for b in bundle_id):
            self.bundle_ids = tuple(bundle_id)
        elif bundle_id is not None:
            raise ValueError("bundleId must be a string or a list of strings")
        # Parse 9: the deprecated per-provider switch counts only with --enable-insecure-auth-adapters.
        self.insecure = options.get("enableInsecureAuth") is True and self.insecure_allowed
        if not self.bundle_ids and not self.insecure:
            raise ValueError("bundleId is required for secure auth.")
        hosts = options.get("publicKeyUrlHosts", [])
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise ValueError("publicKeyUrlHosts must be a list of host names")
        self.extra_hosts = frozenset(h.lower() for h in hosts)
        age = options.get("maxTimestampAge")
        if age is not None and (isinstance(age, bool) or not isinstance(age, int | float) or age <= 0):
            raise ValueError("maxTimestampAge must be a positive number of seconds")
        self.max_timestamp_age = float(age) if age is not None else None
        self._trust_options(options)

    def _trust_options(self, options: Mapping[str, Any]) -> None:
        inline, path = options.get("caCertificates"), options.get("caFile")
        if inline is not None and path is not None:
            raise ValueError("caCertificates and caFile: give one of them")
        if inline is not None:
            texts = inline if isinstance(inline, list) else [inline]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("caCertificates must be PEM text or a list of PEM texts")
            self.roots = [c for t in texts for c in load_pem_bundle(t, "caCertificates")]
        elif path is not None:
            if not isinstance(path, str):
                raise ValueError("caFile must be the path of a PEM file")
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                raise ValueError(f"caFile cannot be read: {error}") from None
            self.roots = load_pem_bundle(data, "caFile")
        else:
            url = options.get("rootCertificateUrl", DEFAULT_ROOT_URL)
            if not isinstance(url, str):
                raise ValueError("rootCertificateUrl must be a URL")
            check_url(url, "rootCertificateUrl")
            self.root_url = url  # downloaded on first use, as Parse Server does at start-up
        if self.root_url is None and not any(_is_ca(c) for c in self.roots):
            raise ValueError("the trusted certificates hold no CA certificate")

    # --- the check ----------------------------------------------------------------------------------

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        required = ["id", "publicKeyUrl", "timestamp", "signature", "salt"]
        if self.insecure and not self.bundle_ids:
            required.append("bundleId")
        for key in required:
            if not auth_data.get(key):
                raise _refused(f"AuthData {key} is missing.")
        player_id, url = auth_data["id"], auth_data["publicKeyUrl"]
        if not isinstance(player_id, str):
            raise ParseError(Code.INVALID_VALUE, f"Invalid authData id for provider '{self.name}'.")
        if not isinstance(url, str) or not self._allowed_url(url):
            raise _refused(f"Invalid publicKeyUrl: {str(url)[:300]}")
        timestamp = self._timestamp(auth_data["timestamp"])
        salt = _base64(auth_data["salt"], "salt")
        signature = _base64(auth_data["signature"], "signature")
        certificate = await self._certificate(url)
        bundle_ids = self.bundle_ids or (str(auth_data["bundleId"]),)
        for bundle_id in bundle_ids:
            payload = player_id.encode() + bundle_id.encode() + struct.pack(">Q", timestamp) + salt
            if _verifies(certificate, signature, payload):
                return None
        raise _refused("Invalid signature.")

    def _allowed_url(self, url: str) -> bool:
        if len(url) > 2048:
            return False
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None or not parts.path.endswith(".cer"):
            return False
        if _APPLE_URL.fullmatch(url):
            return parts.scheme == "https" and (parts.hostname or "").endswith("apple.com")
        host = (parts.hostname or "").lower()
        if host not in self.extra_hosts:
            return False
        try:
            check_url(url, "publicKeyUrl")  # https, or http on a loopback host
        except ValueError:
            return False
        return True

    def _timestamp(self, value: Any) -> int:
        """Milliseconds since 1970, a number or a numeric string (Parse's ``BigInt(timestamp)``)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _refused("AuthData timestamp is invalid.")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else -1
        except ValueError:
            number = -1
        if not 0 <= number < 2**64:
            raise _refused("AuthData timestamp is invalid.")
        if self.max_timestamp_age is not None:
            age = abs(self.now() * 1000 - number) / 1000
            if age > self.max_timestamp_age:
                raise _refused("AuthData timestamp is too old.")
        return number

    # --- certificates -------------------------------------------------------------------------------

    async def _certificate(self, url: str) -> x509.Certificate:
        cached = self._cache.get(url)
        if cached is not None and cached.until > time.monotonic():
            self._check_dates(cached.certificate)
            return cached.certificate
        self._cache.pop(url, None)
        roots = await self._roots()
        try:
            body, headers = await self._fetch(url, MAX_CERT_BYTES)
        except _FetchFailed as error:
            log.warning("gcenter: the certificate could not be fetched: %s", error)
            raise ParseError(Code.SCRIPT_FAILED, _UNKNOWN) from None
        try:
            certificate = (x509.load_pem_x509_certificate(body) if body.lstrip().startswith(b"-----BEGIN")
                           else x509.load_der_x509_certificate(body))
        except ValueError:
            raise _refused(f"Invalid publicKeyUrl: {url}") from None
        now = datetime.fromtimestamp(self.now(), UTC)
        if not any(_issued_by(certificate, root, now) for root in roots):
            raise _refused(f"Invalid publicKeyUrl: {url}")
        self._check_dates(certificate)
        self._cache[url] = _Cached(certificate, time.monotonic() + _max_age(headers.get("cache-control")))
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return certificate

    def _check_dates(self, certificate: x509.Certificate) -> None:
        now = datetime.fromtimestamp(self.now(), UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise _refused("The Game Center certificate is expired or not yet valid.")

    async def _roots(self) -> list[x509.Certificate]:
        if self.root_url is None or self.roots:
            return self.roots
        async with self._root_lock:
            if self.roots:
                return self.roots
            failed = self._root_failed_at
            if failed is None or time.monotonic() - failed >= ROOT_RETRY_SECONDS:
                await self._load_root(self.root_url)
        if not self.roots:
            raise _refused("Root certificate is invalid or missing.")
        return self.roots

    async def _load_root(self, url: str) -> None:
        try:
            body, headers = await self._fetch(url, MAX_ROOT_BYTES)
        except _FetchFailed as error:
            self._root_failed_at = time.monotonic()
            log.warning("gcenter: rootCertificateUrl could not be fetched: %s", error)
            raise ParseError(Code.SCRIPT_FAILED, _UNKNOWN) from None
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            roots = load_pem_bundle(body, "rootCertificateUrl") if content_type == "application/x-pem-file" else []
        except ValueError:
            roots = []
        if not any(_is_ca(c) for c in roots):
            self._root_failed_at = time.monotonic()
            raise _refused("Invalid rootCertificateURL.")
        self.roots = roots

    async def _fetch(self, url: str, limit: int) -> tuple[bytes, httpx.Headers]:
        try:
            async with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _FetchFailed(f"{url} answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise _FetchFailed(f"{url} sent more than {limit} bytes")
                return bytes(body), response.headers
        except httpx.HTTPError as error:
            raise _FetchFailed(f"{url}: {error!r}") from None


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate, now: datetime) -> bool:
    """Signed by a CA of the trusted set that is itself current (issuer name and signature)."""
    if not _is_ca(issuer):
        return False
    if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _verifies(certificate: x509.Certificate, signature: bytes, payload: bytes) -> bool:
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _base64(value: Any, key: str) -> bytes:
    """Lenient as Node's ``Buffer.from(value, 'base64')``: URL-safe letters and missing padding pass."""
    if not isinstance(value, str) or len(value) > 8192:
        raise _refused(f"AuthData {key} is invalid.")
    text = value.strip().replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _refused(f"AuthData {key} is invalid.") from None


def _max_age(cache_control: str | None) -> float:
    found = re.search(r"max-age=(\d+)", cache_control or "")
    seconds = float(found.group(1)) if found else DEFAULT_CACHE_SECONDS
    return min(seconds, MAX_CACHE_SECONDS)
