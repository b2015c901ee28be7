"""An FCM HTTP v1 stand-in, with Google's OAuth token endpoint.

``service_account()`` makes an RSA key and returns the service-account JSON (``token_uri`` points
here). ``POST /token`` takes a JWT-bearer grant whose assertion must verify against that account's
public key (``kid``, ``iss``, ``aud`` = token_uri, the firebase.messaging scope, at most an hour
long) and issues a bearer token living ``token_lifetime`` seconds. ``POST
/v1/projects/<id>/messages:send`` needs a live bearer issued for that project and a v1 message
(``token``, string-valued ``data``, ``android.priority``/``android.ttl``); accepted ones land in
``messages``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.push_services.http import Answer, Faults, Request, Server, StandIn, parse_form

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")


def _error(status: int, state: str, message: str, code: str | None = None, **extra: Any) -> Answer:
    details: list[dict[str, Any]] = []
    if code:
        details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code})
    if extra.get("field"):
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": extra["field"], "description": message}]})
    body = {"error": {"code": status, "message": message, "status": state, "details": details}}
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


@dataclass
class Account:
    email: str
    key_id: str
    project_id: str
    private: rsa.RSAPrivateKey


@dataclass
class FcmService(StandIn):
    host: str = "127.0.0.1"
    port: int = 0
    token_lifetime: int = 3600
    accounts: dict[str, Account] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # bearer → (project, expiry)
    exchanges: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    _server: Server | None = None


    def service_account(self, project_id: str = "bastion-test") -> dict[str, str]:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"push-{secrets.token_hex(3)}@{project_id}.iam.gserviceaccount.com"
        account = Account(email, secrets.token_hex(20), project_id, private)
        self.accounts[email] = account
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": project_id, "private_key_id": account.key_id,
                "private_key": pem, "client_email": email, "client_id": "1", "token_uri": f"{self.url}/token"}

    def revoke_tokens(self) -> None:
        """Every issued bearer token stops working (as an expired one would)."""
        self.tokens.clear()

    def fail(self, token: str, status: int, code: str = "", *, retry_after: float | None = None,
             times: int | None = None) -> None:
        self.faults.fail(token, status, code, retry_after=retry_after, times=times)

    def _refuse(self, answer: Answer, why: str) -> Answer:
        self.rejected.append((answer[0], why))
        return answer

    def handle(self, request: Request) -> Answer:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        match = _SEND.match(request.path)
        if request.method == "POST" and match:
            return self._send(request, match.group(1))
        return self._refuse(_error(404, "NOT_FOUND", "no such method"), request.path)

    def _token(self, request: Request) -> Answer:
        form = parse_form(request.body)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._refuse((400, {}, b'{"error":"unsupported_grant_type"}'), "grant_type")
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            account = self.accounts[unverified["iss"]]
            header = jwt.get_unverified_header(assertion)
            if header.get("kid") != account.key_id or header.get("alg") != "RS256":
                raise jwt.InvalidTokenError("kid/alg do not match the account's key")
            claims = jwt.decode(assertion, account.private.public_key(), algorithms=["RS256"],
                                audience=f"{self.url}/token", options={"require": ["iat", "exp", "iss", "aud"]})
            if claims["exp"] - claims["iat"] > 3600:
                raise jwt.InvalidTokenError("assertion lives longer than an hour")
            if SCOPE not in str(claims.get("scope", "")).split():
                raise jwt.InvalidTokenError("scope lacks firebase.messaging")
        except (KeyError, jwt.PyJWTError) as error:
            body = {"error": "invalid_grant", "error_description": str(error)}
            return self._refuse((400, {"Content-Type": "application/json"}, json.dumps(body).encode()), str(error))
        bearer = "ya29." + secrets.token_urlsafe(32)
        self.tokens[bearer] = (account.project_id, time.time() + self.token_lifetime)
        self.exchanges += 1
        body = {"access_token": bearer, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _send(self, request: Request, project_id: str) -> Answer:
        auth = request.headers.get("authorization", "")
        issued = self.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        if issued is None or issued[1] < time.time():
            return self._refuse(_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
                                "bearer")
        if issued[0] != project_id:
            return self._refuse(_error(403, "PERMISSION_DENIED", "token of another project"), "project")
        try:
            message = json.loads(request.body)["message"]
            token = message["token"]
            problem = self._shape(message)
        except (ValueError, KeyError, TypeError) as error:
            return self._refuse(_error(400, "INVALID_ARGUMENT", f"bad body: {error}"), "body")
        if problem:
            return self._refuse(_error(400, "INVALID_ARGUMENT", problem, "INVALID_ARGUMENT"), problem)
        fault = self.faults.take(token)
        if fault is not None:
            state = {404: "NOT_FOUND", 400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
                     503: "UNAVAILABLE"}.get(fault.status, "INTERNAL")
            code = fault.reason or {404: "UNREGISTERED", 429: "QUOTA_EXCEEDED", 503: "UNAVAILABLE"}.get(
                fault.status, "INTERNAL")
            field_name = "message.token" if code == "INVALID_ARGUMENT" else None
            message_text = ("The registration token is not a valid FCM registration token"
                            if field_name else f"fault {fault.status}")
            status, headers, body = _error(fault.status, state, message_text, code, field=field_name)
            return status, dict(headers, **Faults.headers(fault)), body
        self.messages.append(message)
        name = f"projects/{project_id}/messages/{secrets.token_hex(8)}"
        return 200, {"Content-Type": "application/json"}, json.dumps({"name": name}).encode()

    @staticmethod
    def _shape(message: dict[str, Any]) -> str | None:
        if not isinstance(message.get("token"), str) or not message["token"]:
            return "message.token must be a non-empty string"
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return "message.data values must be strings"
        android = message.get("android", {})
        if not isinstance(android, dict):
            return "message.android must be an object"
        if android.get("priority", "normal") not in ("normal", "high"):
            return "android.priority must be normal or high"
        ttl = android.get("ttl")
        if ttl is not None and not (isinstance(ttl, str) and _DURATION.match(ttl)):
            return "android.ttl must be a duration such as '3.5s'"
        notification = message.get("notification")
        if notification is not None and not all(isinstance(v, str) for v in notification.values()):
            return "message.notification values must be strings"
        unknown = set(message) - {"token", "data", "notification", "android", "apns", "webpush", "fcm_options",
                                  "name"}
        return f"unknown message fields {sorted(unknown)}" if unknown else None
