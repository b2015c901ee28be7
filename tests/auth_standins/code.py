"""One local HTTP service (loopback only) that plays the token endpoints and user APIs of the OAuth
"code" providers, Twitter's OAuth 1.0a endpoints and VK's API, as they answer:

- each provider has a client id and secret (``client_id(p)``, ``secrets[p]``, which a test may change
  to play a rotated secret); a token endpoint refuses another client secret and any code it did
  not issue, issues an access token once per code (codes are single-use, tied to their redirect
  URI, and for Spotify to a PKCE challenge) and the user API answers who a token belongs to;
- Twitter: ``oauth/access_token`` and ``verify_credentials`` check the HMAC-SHA1 signature
  (RFC 5849, computed here by hand), the consumer key, the token, the timestamp and the nonce;
- ``mode``: ``"ok"``, ``"slow"`` (answers after SLOW_SECONDS) or ``"hangup"`` (closes the
  connection without an answer): a provider that hangs or is down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SLOW_SECONDS = 4.0
PROVIDERS = ("github", "microsoft", "linkedin", "instagram", "line", "spotify", "qq", "wechat", "weibo",
             "gpgames", "twitter", "vkontakte")
REDIRECT = "https://app.example.com/callback"


def client_id(provider: str) -> str:
    return f"{provider}-client"


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _enc(value: str) -> str:
    return quote(value, safe="~-._")


@dataclass
class Grant:
    provider: str
    account: str
    redirect_uri: str | None = None
    challenge: str | None = None
    secret: str = ""  # Twitter: the request token's secret


Reply = tuple[int, Any]  # status and a JSON body, or a str body sent as text


@dataclass
class CodeStandins:
    url: str = ""
    mode: str = "ok"
    secrets: dict[str, str] = field(default_factory=lambda: {p: f"{p}-secret-{secrets.token_hex(4)}"
                                                                for p in PROVIDERS})
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what tests ask for --------------------------------------------------------------------------

    def code(self, provider: str, account: str, redirect_uri: str | None = REDIRECT,
             verifier: str | None = None) -> str:
        code = f"{provider}-code-{secrets.token_hex(8)}"
        self.codes[code] = Grant(provider, account, redirect_uri, pkce_challenge(verifier) if verifier else None)
        return code

    def token(self, provider: str, account: str) -> str:
        token = f"{provider}-at-{secrets.token_hex(8)}"
        self.tokens[token] = Grant(provider, account)
        return token

    def twitter_request_token(self, account: str) -> tuple[str, str, str]:
        """A request token the user authorized: (oauth_token, its secret, oauth_verifier)."""
        token, secret, verifier = "rt-" + secrets.token_hex(8), secrets.token_hex(12), secrets.token_hex(6)
        self.codes[token] = Grant("twitter", account, redirect_uri=verifier, secret=secret)
        return token, secret, verifier

    def twitter_access_token(self, account: str) -> tuple[str, str]:
        token, secret = f"{account}-" + secrets.token_hex(8), secrets.token_hex(12)
        self.tokens[token] = Grant("twitter", account, secret=secret)
        return token, secret

    def _take(self, provider: str, code: str | None, redirect_uri: str | None = None,
              check_redirect: bool = True) -> Grant | None:
        with self.lock:
            grant = self.codes.get(code or "")
            if grant is None or grant.provider != provider:
                return None
            del self.codes[code or ""]  # single-use, even when the rest is wrong
        if check_redirect and grant.redirect_uri != redirect_uri:
            return None
        return grant

    def _issue(self, grant: Grant) -> str:
        return self.token(grant.provider, grant.account)

    def _bearer(self, provider: str, headers: Any) -> Grant | None:
        value = headers.get("Authorization", "")
        if not value.startswith("Bearer "):
            return None
        return self._owned(provider, value[7:])

    def _owned(self, provider: str, token: str | None) -> Grant | None:
        grant = self.tokens.get(token or "")
        return grant if grant is not None and grant.provider == provider else None

    def _client_ok(self, provider: str, given_id: str | None, given_secret: str | None) -> bool:
        return given_id == client_id(provider) and hmac.compare_digest(given_secret or "", self.secrets[provider])

    # --- the endpoints -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        form: dict[str, str] = {}
        if "json" in headers.get("Content-Type", ""):
            loaded = json.loads(body or b"{}")
            form = {k: str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        elif body:
            form = dict(parse_qsl(body.decode()))
        provider, _, rest = path.strip("/").partition("/")
        handler = getattr(self, f"_{provider}", None)
        if provider not in PROVIDERS or handler is None:
            return 404, {"error": "not found"}
        return handler(method, rest, query, headers, form)  # type: ignore[no-any-return]

    def _github(self, method: str, rest: str, query: dict[str, str], headers: Any, form: dict[str, str]) -> Reply:
        if rest == "login/oauth/access_token" and method == "POST":
            if not self._client_ok("github", form.get("client_id"), form.get("client_secret")):
                return 200, {"error": "incorrect_client_credentials",
                             "error_description": "The client_id and/or client_secret passed are incorrect."}
            grant = self._take("github", form.get("code"), check_redirect=False)
            if grant is None:
                return 200, {"error": "bad_verification_code",
                             "error_description": "The code passed is incorrect or expired."}
            return 200, {"access_token": self._issue(grant), "token_type": "bearer", "scope": ""}
        if rest == "user":
            grant = self._bearer("github", headers)
            if grant is None:
                return 401, {"message": "Bad credentials"}
            return 200, {"id": int(grant.account), "login": f"user{grant.account}"}
        return 404, {"message": "Not Found"}

    def _standard(self, provider: str, form: dict[str, str]) -> Reply:
        """An RFC 6749 token endpoint (client credentials in the form)."""
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if not self._client_ok(provider, form.get("client_id"), form.get("client_secret")):
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        grant = self._take(provider, form.get("code"), form.get("redirect_uri"))
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "The authorization code is invalid."}
        return 200, {"access_token": self._issue(grant), "token_type": "Bearer", "expires_in": 3600}

    def _microsoft(self, method: str, rest: str, query: dict[str, str], headers: Any,
                   form: dict[str, str]) -> Reply:
        if rest == "token" and method == "POST":
            return self._standard("microsoft", form)
        grant = self._bearer("microsoft", headers) if rest == "me" else None
        if grant is None:
            return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is invalid."}}
        return 200, {"id": grant.account, "displayName": "M"}

    def _linkedin(self, method: str, rest: str, query: dict[str, str], headers: Any,
                  form: dict[str, str]) -> Reply:
        if rest == "token" and method == "POST":
            return self._standard("linkedin", form)
        grant = self._bearer("linkedin", headers) if rest == "me" else None
        if grant is None or headers.get("x-li-format") != "json":
            return 401, {"serviceErrorCode": 65600, "message": "Invalid access token", "status": 401}
        return 200, {"id": grant.account, "localizedFirstName": "L"}

    def _instagram(self, method: str, rest: str, query: dict[str, str], headers: Any,
                   form: dict[str, str]) -> Reply:
        if rest == "token" and method == "POST":
            status, answer = self._standard("instagram", form)
            if status != 200:  # Instagram's own error shape
                return 400, {"error_type": "OAuthException", "code": 400, "error_message": answer["error"]}
            return 200, {"access_token": answer["access_token"], "user_id": 0}
        grant = self._owned("instagram", query.get("access_token")) if rest == "me" else None
        if grant is None:
            return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
        return 200, {"id": grant.account}

    def _line(self, method: str, rest: str, query: dict[str, str], headers: Any, form: dict[str, str]) -> Reply:
        if rest == "token" and method == "POST":
            return self._standard("line", form)
        grant = self._bearer("line", headers) if rest == "profile" else None
        if grant is None:
            return 401, {"message": "Authentication failed."}
        return 200, {"userId": grant.account, "displayName": "L"}

    def _spotify(self, method: str, rest: str, query: dict[str, str], headers: Any,
                 form: dict[str, str]) -> Reply:
        if rest == "token" and method == "POST":
            if form.get("client_id") != client_id("spotify"):
                return 400, {"error": "invalid_client"}
            grant = self._take("spotify", form.get("code"), form.get("redirect_uri"))
            verifier = form.get("code_verifier", "")
            if grant is None or grant.challenge is None or pkce_challenge(verifier) != grant.challenge:
                return 400, {"error": "invalid_grant", "error_description": "code_verifier was incorrect"}
            return 200, {"access_token": self._issue(grant), "token_type": "Bearer", "expires_in": 3600}
        grant = self._bearer("spotify", headers) if rest == "me" else None
        if grant is None:
            return 401, {"error": {"status": 401, "message": "Invalid access token"}}
        return 200, {"id": grant.account, "display_name": "S"}

    def _qq(self, method: str, rest: str, query: dict[str, str], headers: Any, form: dict[str, str]) -> Reply:
        if rest == "oauth2.0/token" and method == "GET":
            grant = None
            if self._client_ok("qq", query.get("client_id"), query.get("client_secret")):
                grant = self._take("qq", query.get("code"), query.get("redirect_uri"))
            if grant is None:
                return 200, 'callback( {"error":100019,"error_description":"code to access token error"} );'
            token = self._issue(grant)
            if query.get("fmt") == "json":
                return 200, {"access_token": token, "expires_in": "7776000", "refresh_token": "r"}
            return 200, f"access_token={token}&expires_in=7776000&refresh_token=r"
        grant = self._owned("qq", query.get("access_token")) if rest == "oauth2.0/me" else None
        if grant is None:
            return 200, 'callback( {"error":100016,"error_description":"access token check failed"} );'
        return 200, f"callback( {json.dumps({'client_id': client_id('qq'), 'openid': grant.account})} );"

    def _wechat(self, method: str, rest: str, query: dict[str, str], headers: Any,
                form: dict[str, str]) -> Reply:
        if rest == "sns/oauth2/access_token":
            if not self._client_ok("wechat", query.get("appid"), query.get("secret")):
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            grant = self._take("wechat", query.get("code"), check_redirect=False)
            if grant is None or query.get("grant_type") != "authorization_code":
                return 200, {"errcode": 40029, "errmsg": "invalid code"}
            return 200, {"access_token": self._issue(grant), "expires_in": 7200, "refresh_token": "r",
                         "openid": grant.account, "scope": "snsapi_login"}
        if rest == "sns/auth":
            grant = self._owned("wechat", query.get("access_token"))
            if grant is None:
                return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            if grant.account != query.get("openid"):
                return 200, {"errcode": 40003, "errmsg": "invalid openid"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 404, {"errcode": -1, "errmsg": "not found"}

    def _weibo(self, method: str, rest: str, query: dict[str, str], headers: Any, form: dict[str, str]) -> Reply:
        if rest == "oauth2/access_token" and method == "POST":
            status, answer = self._standard("weibo", form)
            if status != 200:
                return status, {"error": answer["error"], "error_code": 21325, "request": "/oauth2/access_token"}
            grant = self.tokens[answer["access_token"]]
            return 200, {"access_token": answer["access_token"], "expires_in": 157679999, "uid": grant.account}
        if rest == "oauth2/get_token_info" and method == "POST":
            grant = self._owned("weibo", form.get("access_token"))
            if grant is None:
                return 400, {"error": "invalid_access_token", "error_code": 21332}
            return 200, {"uid": int(grant.account), "appkey": client_id("weibo"), "scope": "", "expire_in": 100}
        return 404, {"error": "not found"}

    def _gpgames(self, method: str, rest: str, query: dict[str, str], headers: Any,
                 form: dict[str, str]) -> Reply:
        if rest == "token" and method == "POST":
            return self._standard("gpgames", form)
        if rest.startswith("players/"):
            grant = self._bearer("gpgames", headers)
            if grant is None:
                return 401, {"error": {"code": 401, "message": "Request had invalid authentication credentials."}}
            wanted = unquote(rest.removeprefix("players/"))
            # As Google: any player's public profile is readable with any valid token.
            player = grant.account if wanted == "me" else wanted
            return 200, {"kind": "games#player", "playerId": player, "displayName": "P"}
        return 404, {"error": {"code": 404}}

    def _vkontakte(self, method: str, rest: str, query: dict[str, str], headers: Any,
                   form: dict[str, str]) -> Reply:
        if rest == "access_token":
            if query.get("grant_type") != "client_credentials" or not self._client_ok(
                    "vkontakte", query.get("client_id"), query.get("client_secret")):
                return 401, {"error": "invalid_client", "error_description": "client_secret is incorrect"}
            return 200, {"access_token": "service-" + secrets.token_hex(6), "expires_in": 0}
        if rest == "users.get":
            grant = self._owned("vkontakte", query.get("access_token"))
            if grant is None:
                return 200, {"error": {"error_code": 5, "error_msg": "User authorization failed"}}
            return 200, {"response": [{"id": int(grant.account), "first_name": "V", "last_name": "K"}]}
        return 404, {"error": "not found"}

    # --- Twitter: OAuth 1.0a --------------------------------------------------------------------------

    def _twitter(self, method: str, rest: str, query: dict[str, str], headers: Any,
                 form: dict[str, str]) -> Reply:
        oauth = _oauth_header(headers.get("Authorization", ""))
        if oauth is None or oauth.get("oauth_consumer_key") != client_id("twitter"):
            return 401, {"errors": [{"code": 32, "message": "Could not authenticate you."}]}
        if rest == "oauth/access_token" and method == "POST":
            grant = self.codes.get(oauth.get("oauth_token", ""))
            if grant is None or grant.provider != "twitter":
                return 401, "Invalid request token."
            if not self._signature_ok(method, headers, rest, query, form, oauth, grant.secret):
                return 401, "Could not authenticate you."
            verifier = oauth.get("oauth_verifier") or form.get("oauth_verifier")
            if self._take("twitter", oauth.get("oauth_token"), verifier) is None:
                return 401, "Error processing your OAuth request: Invalid oauth_verifier parameter"
            token, secret = self.twitter_access_token(grant.account)
            return 200, f"oauth_token={token}&oauth_token_secret={secret}&user_id={grant.account}&screen_name=u"
        if rest == "1.1/account/verify_credentials.json" and method == "GET":
            grant = self._owned("twitter", oauth.get("oauth_token"))
            if grant is None or not self._signature_ok(method, headers, rest, query, form, oauth, grant.secret):
                return 401, {"errors": [{"code": 89, "message": "Invalid or expired token."}]}
            return 200, {"id": int(grant.account), "id_str": grant.account, "screen_name": "u"}
        return 404, {"errors": [{"code": 34, "message": "Sorry, that page does not exist."}]}

    def _signature_ok(self, method: str, headers: Any, rest: str, query: dict[str, str], form: dict[str, str],
                      oauth: dict[str, str], token_secret: str) -> bool:
        """RFC 5849 section 3.4: the base string from the method, the URL and every parameter."""
        if oauth.get("oauth_signature_method") != "HMAC-SHA1" or oauth.get("oauth_version", "1.0") != "1.0":
            return False
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return False
        nonce = oauth.get("oauth_nonce", "")
        if abs(time.time() - stamp) > 300 or not nonce or nonce in self.nonces:
            return False
        self.nonces.add(nonce)
        params = [(k, v) for k, v in oauth.items() if k not in ("oauth_signature", "realm")]
        params += list(query.items()) + list(form.items())
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in params))
        base_url = f"http://{headers.get('Host')}/twitter/{rest}"
        base = "&".join((method.upper(), _enc(base_url), _enc(normalized)))
        key = f"{_enc(self.secrets['twitter'])}&{_enc(token_secret)}"
        expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()
        return hmac.compare_digest(expected, oauth.get("oauth_signature", ""))


def _oauth_header(value: str) -> dict[str, str] | None:
    if not value.startswith("OAuth "):
        return None
    params: dict[str, str] = {}
    for part in value[6:].split(","):
        key, _, quoted = part.strip().partition("=")
        params[unquote(key)] = unquote(quoted.strip('"'))
    return params


def _handler(standins: CodeStandins) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if standins.mode == "hangup":
                self.close_connection = True
                self.connection.close()
                return
            if standins.mode == "slow":
                time.sleep(SLOW_SECONDS)
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            status, answer = standins.handle(method, parts.path, query, self.headers, body)
            text = answer if isinstance(answer, str) else json.dumps(answer)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def serve_code_standins() -> Iterator[CodeStandins]:
    standins = CodeStandins()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standins))
    http.daemon_threads = True
    standins.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield standins
    finally:
        http.shutdown()
        http.server_close()


def urls(standins: CodeStandins, provider: str) -> dict[str, str]:
    """The URL options pointing ``provider`` at the stand-in."""
    base = f"{standins.url}/{provider}"
    return {
        "github": {"tokenUrl": f"{base}/login/oauth/access_token", "userUrl": f"{base}/user"},
        "microsoft": {"tokenUrl": f"{base}/token", "userUrl": f"{base}/me"},
        "linkedin": {"tokenUrl": f"{base}/token", "userUrl": f"{base}/me"},
        "instagram": {"tokenUrl": f"{base}/token", "userUrl": f"{base}/me"},
        "line": {"tokenUrl": f"{base}/token", "userUrl": f"{base}/profile"},
        "spotify": {"tokenUrl": f"{base}/token", "userUrl": f"{base}/me"},
        "qq": {"tokenUrl": f"{base}/oauth2.0/token", "userUrl": f"{base}/oauth2.0/me"},
        "wechat": {"tokenUrl": f"{base}/sns/oauth2/access_token", "userUrl": f"{base}/sns/auth"},
        "weibo": {"tokenUrl": f"{base}/oauth2/access_token", "userUrl": f"{base}/oauth2/get_token_info"},
        "gpgames": {"tokenUrl": f"{base}/token", "userUrl": f"{base}/players"},
        "twitter": {"accessTokenUrl": f"{base}/oauth/access_token",
                    "verifyCredentialsUrl": f"{base}/1.1/account/verify_credentials.json"},
        "vkontakte": {"oauthUrl": f"{base}/access_token", "usersUrl": f"{base}/users.get"},
    }[provider]


def options(standins: CodeStandins, provider: str, **extra: Any) -> dict[str, Any]:
    """The provider's auth options: its client credentials and the stand-in's URLs."""
    if provider == "twitter":
        credentials: dict[str, Any] = {"consumer_key": client_id("twitter"),
                                       "consumer_secret": standins.secrets["twitter"]}
    elif provider == "vkontakte":
        credentials = {"appIds": [client_id("vkontakte")], "appSecret": standins.secrets["vkontakte"]}
    else:
        credentials = {"clientId": client_id(provider), "clientSecret": standins.secrets[provider]}
    return {**credentials, **urls(standins, provider), **extra}
