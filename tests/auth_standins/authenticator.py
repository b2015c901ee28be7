"""A software WebAuthn authenticator (and the browser around it) for the passkey tests.

``create`` answers registration options as ``navigator.credentials.create`` would, with a real
attestation: ``none``, or ``packed`` self-attestation signed by the credential's own EC P-256 key.
``get`` answers authentication options with a real assertion. Both give the JSON a browser's
``credential.toJSON()`` gives (RegistrationResponseJSON, AuthenticationResponseJSON). Every part a
server checks can be bent for tests: the origin, the rpId, the signing key, the counter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40
COSE_ES256 = -7


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return cbor2.dumps({1: 2, 3: COSE_ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                        -3: numbers.y.to_bytes(32, "big")})


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0


class Authenticator:
    def __init__(self, origin: str, *, fmt: str = "none", counting: bool = True) -> None:
        self.origin = origin
        self.fmt = fmt
        self.counting = counting  # many platform authenticators keep the counter at 0
        self.aaguid = secrets.token_bytes(16)
        self.credentials: list[Credential] = []

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode("utf-8")

    def create(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
               fmt: str | None = None) -> dict[str, Any]:
        """A new credential for ``options`` (the server's PublicKeyCredentialCreationOptionsJSON)."""
        rp = rp_id or options["rp"]["id"]
        credential = Credential(secrets.token_bytes(32), ec.generate_private_key(ec.SECP256R1()), rp,
                                unb64url(options["user"]["id"]), 1 if self.counting else 0)
        self.credentials.append(credential)
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        auth_data = (hashlib.sha256(rp.encode()).digest() + bytes([FLAG_UP | FLAG_UV | FLAG_AT])
                     + struct.pack(">I", credential.counter) + self.aaguid
                     + struct.pack(">H", len(credential.id)) + credential.id + cose_key(credential.key))
        fmt = fmt or self.fmt
        statement: dict[str, Any] = {}
        if fmt == "packed":  # self-attestation: signed by the credential's own key
            signed = auth_data + hashlib.sha256(client_data).digest()
            statement = {"alg": COSE_ES256, "sig": credential.key.sign(signed, ec.ECDSA(hashes.SHA256()))}
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        return {"id": b64url(credential.id), "rawId": b64url(credential.id), "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data), "attestationObject": b64url(attestation),
                             "transports": ["internal", "hybrid"]},
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}

    def get(self, options: dict[str, Any], *, credential: Credential | None = None, origin: str | None = None,
            rp_id: str | None = None, key: ec.EllipticCurvePrivateKey | None = None,
            counter: int | None = None, user_handle: bytes | None = None) -> dict[str, Any]:
        """An assertion for ``options`` (PublicKeyCredentialRequestOptionsJSON) by ``credential``
        (the last one made for the options' rpId by default)."""
        if credential is None:
            credential = [c for c in self.credentials if c.rp_id == options["rpId"]][-1]
        if counter is not None:
            credential.counter = counter
        elif self.counting:
            credential.counter += 1
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = (hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
                     + bytes([FLAG_UP | FLAG_UV]) + struct.pack(">I", credential.counter))
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (key or credential.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(credential.id), "rawId": b64url(credential.id), "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature),
                             "userHandle": b64url(user_handle or credential.user_handle)},
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}
