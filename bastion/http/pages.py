"""The HTML pages a user opens from a verification or password-reset mail, as Parse Server 9's
PagesRouter names and fills them (``password_reset.html``, ``email_verification_success.html``…).

Every value is HTML-escaped; pages carry no script, cannot be framed, send no Referer (their URL
holds a token) and are not cached. Redirects only ever point at this server's own pages.
"""

from __future__ import annotations

import html
from string import Template
from urllib.parse import urlencode, urlsplit

from bastion.http.responses import Response

HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")
PARAM_HEADER = "x-parse-page-param-"

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:32em;margin:3em auto;padding:0 1em;color:#222}"
          "input{display:block;margin:.3em 0 1em;padding:.4em;width:100%;box-sizing:border-box}"
          ".error{color:#b00020}")


def _page(title: str, body: str) -> Template:
    return Template(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<h1>$appName</h1>\n"
        f"{body}\n</body>\n</html>\n")


_RESET_FORM = _page("Password Reset", """<h2>Reset your password</h2>
<p>Choose a new password for your account $username</p>
<p class="error">$error</p>
<form action="$publicServerUrl/apps/$appId/request_password_reset" method="POST">
<input name="username" type="hidden" value="$username">
<input name="token" type="hidden" value="$token">
<label for="password">New password</label>
<input name="new_password" type="password" id="password" autocomplete="new-password" required>
<label for="password_confirm">Confirm the new password</label>
<input name="confirm_new_password" type="password" id="password_confirm" autocomplete="new-password" required>
<button type="submit">Change password</button>
</form>""")

TEMPLATES: dict[str, Template] = {
    "password_reset.html": _RESET_FORM,
    "password_reset_success.html": _page(
        "Password Reset", "<h2>Success!</h2>\n<p>Your password has been updated.</p>"),
    "password_reset_link_invalid.html": _page(
        "Password Reset", "<h2>Invalid password reset link!</h2>"),
    "email_verification_success.html": _page(
        "Email Verification", "<h2>Email verified!</h2>\n<p>Your email address has been verified. $username</p>"),
    "email_verification_link_invalid.html": _page(
        "Email Verification", "<h2>Invalid verification link!</h2>"),
    "email_verification_link_expired.html": _page(
        "Email Verification", "<h2>Expired verification link!</h2>"),
    "email_verification_send_success.html": _page(
        "Email Verification", "<h2>Link sent!</h2>\n<p>A new verification link has been sent; check your email.</p>"),
    "email_verification_send_fail.html": _page(
        "Email Verification", "<h2>Link not sent!</h2>\n<p>No verification link could be sent.</p>"),
}
_FIELDS = ("appName", "appId", "publicServerUrl", "token", "username", "error")


def security_headers(public_url: str) -> list[tuple[bytes, bytes]]:
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    policy = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
              + (f" {origin}" if origin else "") + "; frame-ancestors 'none'; base-uri 'none'")
    return [
        (b"content-security-policy", policy.encode("latin-1", "replace")),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    ]


def _param_headers(params: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Parse Server's ``x-parse-page-param-*`` headers, for programs reading the answer: control
    characters stripped, anything beyond printable ASCII percent-encoded (headers are bytes)."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in params.items():
        if value is None:
            continue
        text = "".join(ch for ch in str(value) if ch >= " " and ch != "\x7f")
        safe = "".join(ch if ch.isascii() else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text)
        out.append(((PARAM_HEADER + name.lower()).encode(), safe.encode("ascii")))
    return out


def page(name: str, params: dict[str, str | None], public_url: str, status: int = 200) -> Response:
    values = {key: html.escape(str(params.get(key) or ""), quote=True) for key in _FIELDS}
    body = TEMPLATES[name].substitute(values).encode()
    headers = _param_headers({k: v for k, v in params.items() if v is not None}) + security_headers(public_url)
    return Response(raw=body, status=status, headers=headers, content_type=HTML_TYPE)


def redirect(name: str, params: dict[str, str | None], public_url: str) -> Response:
    """303 to one of this server's pages (the POST-redirect-GET Parse Server answers forms with)."""
    assert name in TEMPLATES
    query = urlencode({k: v for k, v in params.items() if v is not None})
    location = f"{public_url}/apps/{name}" + (f"?{query}" if query else "")
    body = f"See Other. Redirecting to {html.escape(location)}".encode()
    headers = [(b"location", location.encode("ascii", "strict")),
               *_param_headers({k: v for k, v in params.items() if v is not None}),
               *security_headers(public_url)]
    return Response(raw=body, status=303, headers=headers, content_type=HTML_TYPE)


def not_found() -> Response:
    return Response(raw=b"Not found.", status=404, content_type=HTML_TYPE)
