"""Google Sign-In: ``authData.google`` is ``{id, id_token}`` (``token`` is accepted too), as Parse
Server 9's ``google`` adapter takes it: an ID token signed by Google (RS256, Google's key set) for the
configured ``clientId`` (a string or a list), issued by accounts.google.com or
https://accounts.google.com, whose ``sub`` is ``authData.google.id``.

Or ``{id, access_token}``, as Parse Server's adapter took it before version 6: the token is asked to
Google's tokeninfo endpoint (``tokenInfoUrl``), which must name one of the ``clientId``s as its
audience and ``authData.google.id`` as its subject, and not be expired.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AuthRequest, AuthResult
from bastion.domain.auth_providers.fetch import FetchError
from bastion.domain.auth_providers.idtoken import JwksAdapter, check_issuer, check_subject, string_list
from bastion.domain.auth_providers.remote import request_json, request_timeout, url_option
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

TOKEN_ISSUER = "accounts.google.com"
HTTPS_TOKEN_ISSUER = "https://accounts.google.com"
TOKEN_INFO_URL = "https://oauth2.googleapis.com/tokeninfo"
INVALID = "Google auth is invalid for this user."
MAX_ACCESS_TOKEN = 4096


class GoogleAdapter(JwksAdapter):
    DEFAULT_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"
    OPTIONS = JwksAdapter.OPTIONS | {"clientId", "tokenInfoUrl"}

    def validate_options(self, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        self.client_ids = string_list(options.get("clientId"), "clientId")
        self.token_info_url = url_option(options, "tokenInfoUrl", TOKEN_INFO_URL)
        self.timeout = request_timeout(options)

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        token = auth_data.get("id_token") or auth_data.get("token")
        if not token and auth_data.get("access_token"):
            await self._check_access_token(auth_data)
            return None
        claims = await self.verifier.verify(token, self.client_ids)
        check_issuer(claims, (TOKEN_ISSUER, HTTPS_TOKEN_ISSUER),
                     f"id token not issued by correct provider - expected: {TOKEN_ISSUER} or {HTTPS_TOKEN_ISSUER}")
        check_subject(claims, auth_data.get("id"))
        return None

    async def _check_access_token(self, auth_data: dict[str, Any]) -> None:
        token = auth_data.get("access_token")
        if not isinstance(token, str) or len(token) > MAX_ACCESS_TOKEN:
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)
        try:
            status, info = await request_json(self.http, "GET", self.token_info_url, self.timeout,
                                              params={"access_token": token})
        except FetchError as error:
            log.warning("auth provider %s: tokeninfo did not answer: %s", self.name, error)
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID) from None
        if status != 200 or not isinstance(info, dict):
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)  # Google answers 400 invalid_token
        # Access tokens carry the client they were issued to as aud (azp, issued_to in older answers).
        audience = next((info[k] for k in ("aud", "azp", "issued_to") if isinstance(info.get(k), str)), None)
        subject = info.get("sub", info.get("user_id"))
        expires_in = info.get("expires_in")
        if (audience not in self.client_ids or not isinstance(subject, str) or subject != auth_data.get("id")
                or (expires_in is not None and not _positive(expires_in))):
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)


def _positive(value: Any) -> bool:
    try:
        return int(value) > 0
    except (TypeError, ValueError):
        return False
