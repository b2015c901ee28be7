"""Email verification and password reset over the wire, on SQLite and PostgreSQL.

Each test module's Bastion is started by the test itself with ``--mail-url`` pointing at a real
aiosmtpd server; links are read out of the received mails and followed over HTTP, as a user would.
Answers and pages were compared with Parse Server 9.10 (given an email adapter; without one it
refuses every one of these flows with code 1).
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import (
    Server,
    backend_database,
    free_port,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.usefixtures("own_server")

LINK = re.compile(r"https?://\S+")
PAGE_HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy", "cache-control")
XHR = {"X-Requested-With": "XMLHttpRequest"}
_counter = iter(range(1_000_000))


# --- a real SMTP server and Bastions that mail through it -------------------------------------------


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted"

    def wait_for(self, to: str, count: int = 1, timeout: float = 15.0) -> list[EmailMessage]:
        """The mails to ``to``, once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if m["To"] == to]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) to {to}, got {len(found)}")

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def link_in(message: EmailMessage) -> str:
    links = LINK.findall(text_of(message))
    assert len(links) == 1, text_of(message)
    return links[0]


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite, else the URL of a fresh PostgreSQL database."""
    with backend_database(request.param) as database:
        yield database


def _bastion(backend: str | None, inbox: tuple[Inbox, int] | None, *flags: str) -> Server:
    args = ["--app-name", "Zoë's <App>", *flags]
    if inbox is not None:
        args += ["--mail-url", f"smtp://127.0.0.1:{inbox[1]}?from=no-reply@example.com"]
    return start_server("postgres" if backend else "sqlite", backend, args)


@pytest.fixture(scope="module")
def verifying(backend: str | None, inbox: tuple[Inbox, int]) -> Iterator[Server]:
    """Verification required for log-in; links never expire; quiet answers (the defaults)."""
    srv = _bastion(backend, inbox, "--verify-user-emails", "--prevent-login-with-unverified-email")
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def strict(backend: str | None, inbox: tuple[Inbox, int]) -> Iterator[Server]:
    """Links valid for 2 seconds, sign-up refused until verified, errors instead of quiet answers,
    sessions kept on a password reset."""
    srv = _bastion(backend, inbox, "--verify-user-emails", "--prevent-login-with-unverified-email",
                   "--prevent-signup-with-unverified-email", "--email-verify-token-validity", "2",
                   "--password-reset-token-validity", "2", "--no-email-verify-success-on-invalid-email",
                   "--no-password-reset-success-on-invalid-email", "--no-revoke-session-on-password-reset")
    try:
        yield srv
    finally:
        stop_server(srv)


def _names(srv: Server) -> tuple[str, str]:
    n = f"{srv.backend}{next(_counter)}{time.monotonic_ns() % 100_000}"
    return f"user{n}", f"user{n}@example.com"


def _sign_up(srv: Server, username: str, address: str | None, password: str = "old-pass") -> httpx.Response:
    body = {"username": username, "password": password}
    if address:
        body["email"] = address
    with srv.client() as api:
        return api.post("/users", json=body)


def _log_in(srv: Server, username: str, password: str) -> httpx.Response:
    with srv.client() as api:
        return api.post("/login", json={"username": username, "password": password})


def _post(srv: Server, path: str, body: Any) -> httpx.Response:
    with srv.client() as api:
        return api.post(path, json=body)


def _page_text(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<style>.*?</style>", "", response.text)))


def _assert_safe_page(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for name in PAGE_HEADERS:
        assert name in response.headers, name
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in response.text


# --- email verification ----------------------------------------------------------------------------


def test_sign_up_without_session_then_205_until_the_mailed_link_verifies(verifying: Server,
                                                                         inbox: tuple[Inbox, int]) -> None:
    username, address = _names(verifying)
    created = _sign_up(verifying, username, address)
    assert created.status_code == 201
    assert set(created.json()) == {"objectId", "createdAt"}  # no session while unverified, as Parse Server
    refused = _log_in(verifying, username, "old-pass")
    assert (refused.status_code, refused.json()) == (400, {"code": 205, "error": "User email is not verified."})
    assert _log_in(verifying, username, "wrong").json()["code"] == 101  # the password is checked first

    [mail] = inbox[0].wait_for(address)
    assert mail["Subject"] == "Please verify your e-mail for Zoë's <App>"
    assert mail["From"] == "no-reply@example.com"
    assert f"confirm the e-mail address {address} with Zoë's <App>" in text_of(mail)
    link = link_in(mail)
    assert link.startswith(f"{verifying.url}/apps/{verifying.app_id}/verify_email?token=")
    assert re.fullmatch(r"[A-Za-z0-9]{25}", link.rsplit("=", 1)[1])

    with verifying.client(master=True) as master:
        user = master.get(f"/users/{created.json()['objectId']}").json()
    assert user["emailVerified"] is False
    assert not any(key.startswith("_") for key in user)  # tokens never leave the server

    page = httpx.get(link)
    assert page.status_code == 200
    _assert_safe_page(page)
    assert "Email verified!" in page.text
    assert "Zoë&#x27;s &lt;App&gt;" in page.text  # escaped

    again = httpx.get(link)  # single use
    assert "Invalid verification link!" in again.text
    logged_in = _log_in(verifying, username, "old-pass")
    assert logged_in.status_code == 200
    assert logged_in.json()["emailVerified"] is True
    assert logged_in.json()["sessionToken"].startswith("r:")


def test_log_in_of_a_user_without_email_is_refused_too(verifying: Server) -> None:
    username, _ = _names(verifying)
    assert "sessionToken" not in _sign_up(verifying, username, None).json()
    assert _log_in(verifying, username, "old-pass").json() == {"code": 205, "error": "User email is not verified."}
    with verifying.client(master=True) as master:  # unless the master key says to ignore it
        ok = master.post("/login", json={"username": username, "password": "old-pass",
                                          "ignoreEmailVerification": True})
        assert ok.status_code == 200 and ok.json()["sessionToken"]
        assert master.post("/login", json={"username": username, "password": "old-pass"}).json()["code"] == 205


def test_bad_verification_links_show_the_invalid_page(verifying: Server) -> None:
    base = f"{verifying.url}/apps/{verifying.app_id}/verify_email"
    for url in (base, base + "?token=", base + "?token=nope", base + "?token=%3Cscript%3E"):
        page = httpx.get(url)
        assert page.status_code == 200
        _assert_safe_page(page)
        assert "Invalid verification link!" in page.text
    other_app = httpx.get(f"{verifying.url}/apps/another-app/verify_email?token=x")
    assert (other_app.status_code, other_app.json()) == (403, {"error": "unauthorized"})


def test_verification_email_request_sends_a_new_link_and_the_old_one_dies(verifying: Server,
                                                                        inbox: tuple[Inbox, int]) -> None:
    username, address = _names(verifying)
    _sign_up(verifying, username, address)
    [first] = inbox[0].wait_for(address)
    assert _post(verifying, "/verificationEmailRequest", {"email": address}).json() == {}
    second = inbox[0].wait_for(address, 2)[1]
    assert link_in(first) != link_in(second)
    assert "Invalid verification link!" in httpx.get(link_in(first)).text
    assert "Email verified!" in httpx.get(link_in(second)).text
    # Verified, unknown: the same quiet {} (no account enumeration), and no mail.
    assert _post(verifying, "/verificationEmailRequest", {"email": address}).json() == {}
    assert _post(verifying, "/verificationEmailRequest", {"email": "nobody@example.com"}).json() == {}
    time.sleep(0.5)
    assert len(inbox[0].to(address)) == 2


@pytest.mark.parametrize(("body", "code", "message"), [
    ({}, 204, "you must provide an email"),
    ({"email": ""}, 204, "you must provide an email"),
    ({"email": 5}, 125, "you must provide a valid email string"),
    ({"email": ["a@b.c"]}, 125, "you must provide a valid email string"),
])
def test_verification_email_request_refusals(verifying: Server, body: dict[str, Any], code: int,
                                             message: str) -> None:
    answer = _post(verifying, "/verificationEmailRequest", body)
    assert (answer.status_code, answer.json()) == (400, {"code": code, "error": message})


def test_changing_the_email_unverifies_and_mails_the_new_address(verifying: Server,
                                                                inbox: tuple[Inbox, int]) -> None:
    username, address = _names(verifying)
    user_id = _sign_up(verifying, username, address).json()["objectId"]
    httpx.get(link_in(inbox[0].wait_for(address)[0]))
    token = _log_in(verifying, username, "old-pass").json()["sessionToken"]
    new_address = "new-" + address
    with verifying.client(**{"X-Parse-Session-Token": token}) as api:
        changed = api.put(f"/users/{user_id}", json={"email": new_address})
        assert changed.status_code == 200
        assert "sessionToken" not in changed.json()  # an email change keeps the session
        assert api.get("/users/me").json()["emailVerified"] is False
    [mail] = inbox[0].wait_for(new_address)
    assert _log_in(verifying, username, "old-pass").json()["code"] == 205
    assert "Email verified!" in httpx.get(link_in(mail)).text
    assert _log_in(verifying, username, "old-pass").status_code == 200


def test_resend_form_of_the_pages(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    username, address = _names(verifying)
    _sign_up(verifying, username, address)
    inbox[0].wait_for(address)
    url = f"{verifying.url}/apps/{verifying.app_id}/resend_verification_email"
    sent = httpx.post(url, data={"username": username})
    assert sent.status_code == 303
    assert sent.headers["location"].startswith(f"{verifying.url}/apps/email_verification_send_success.html?")
    inbox[0].wait_for(address, 2)
    assert httpx.post(url, data={}).headers["location"].startswith(
        f"{verifying.url}/apps/email_verification_link_invalid.html?")
    landing = httpx.get(sent.headers["location"])
    assert landing.status_code == 200 and "Link sent!" in landing.text
    _assert_safe_page(landing)


# --- password reset --------------------------------------------------------------------------------


def _reset_link(srv: Server, inbox: tuple[Inbox, int], address: str) -> str:
    before = len([m for m in inbox[0].to(address) if m["Subject"].startswith("Password Reset")])
    assert _post(srv, "/requestPasswordReset", {"email": address}).json() == {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        resets = [m for m in inbox[0].to(address) if m["Subject"].startswith("Password Reset")]
        if len(resets) > before:
            return link_in(resets[-1])
        time.sleep(0.05)
    raise AssertionError("no reset mail")


def _verified_user(srv: Server, inbox: tuple[Inbox, int]) -> tuple[str, str, str]:
    username, address = _names(srv)
    user_id = _sign_up(srv, username, address).json()["objectId"]
    assert "Email verified!" in httpx.get(link_in(inbox[0].wait_for(address)[0])).text
    return user_id, username, address


def test_password_reset_through_the_mailed_form(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    user_id, username, address = _verified_user(verifying, inbox)
    session = _log_in(verifying, username, "old-pass").json()["sessionToken"]
    link = _reset_link(verifying, inbox, address)
    [mail] = [m for m in inbox[0].to(address) if m["Subject"].startswith("Password Reset")]
    assert mail["Subject"] == "Password Reset for Zoë's <App>"
    assert f"(your username is '{username}')" in text_of(mail)
    assert link.startswith(f"{verifying.url}/apps/{verifying.app_id}/request_password_reset?token=")
    token = link.rsplit("=", 1)[1]

    form = httpx.get(link)
    assert form.status_code == 200
    _assert_safe_page(form)
    assert f'action="{verifying.url}/apps/{verifying.app_id}/request_password_reset" method="POST"' in form.text
    assert f'name="token" type="hidden" value="{token}"' in form.text
    assert form.headers["x-parse-page-param-token"] == token

    done = httpx.post(f"{verifying.url}/apps/{verifying.app_id}/request_password_reset",
                      data={"token": token, "new_password": "new-pass", "confirm_new_password": "new-pass"})
    assert done.status_code == 200
    _assert_safe_page(done)
    assert "Your password has been updated." in done.text

    assert _log_in(verifying, username, "old-pass").json()["code"] == 101
    assert _log_in(verifying, username, "new-pass").status_code == 200
    with verifying.client(**{"X-Parse-Session-Token": session}) as api:  # sessions were revoked
        assert api.get("/users/me").json()["code"] == 209
    # The link is single use: the page says so, and a second POST shows Parse's message on the form.
    assert "Invalid password reset link!" in httpx.get(link).text
    again = httpx.post(f"{verifying.url}/apps/{verifying.app_id}/request_password_reset",
                       data={"token": token, "new_password": "third-pass"})
    assert "Failed to reset password: username / email / token is invalid" in again.text
    assert _log_in(verifying, username, "third-pass").json()["code"] == 101
    with verifying.client(master=True) as master:
        assert master.get(f"/users/{user_id}").json()["updatedAt"] > master.get(f"/users/{user_id}").json()[
            "createdAt"]


def test_password_reset_for_scripts(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    _, username, address = _verified_user(verifying, inbox)
    token = _reset_link(verifying, inbox, address).rsplit("=", 1)[1]
    url = f"{verifying.url}/apps/{verifying.app_id}/request_password_reset"
    missing_token = httpx.post(url, data={"new_password": "x"}, headers=XHR)
    assert (missing_token.status_code, missing_token.json()) == (400, {"code": -1, "error": "Missing token"})
    missing_password = httpx.post(url, data={"token": token}, headers=XHR)
    assert missing_password.json() == {"code": 201, "error": "Missing password"}
    ok = httpx.post(url, data={"token": token, "new_password": "script-pass"}, headers=XHR)
    assert (ok.status_code, ok.json()) == (200, "Password successfully reset")
    used = httpx.post(url, data={"token": token, "new_password": "other"}, headers=XHR)
    assert used.json() == {"code": -1, "error": "Failed to reset password: username / email / token is invalid"}
    assert _log_in(verifying, username, "script-pass").status_code == 200


def test_reset_form_posts_without_fields_redirect_to_the_invalid_page(verifying: Server) -> None:
    url = f"{verifying.url}/apps/{verifying.app_id}/request_password_reset"
    for data in ({}, {"token": "abc"}, {"new_password": "x"}):
        answer = httpx.post(url, data=data)
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location.startswith(f"{verifying.url}/apps/password_reset_link_invalid.html?")  # never elsewhere
        assert "Invalid password reset link!" in httpx.get(location).text
    # A JSON body is no form (Parse Server reads only forms here).
    assert httpx.post(url, json={"token": "abc", "new_password": "x"}).status_code == 303
    assert httpx.post(f"{verifying.url}/apps/another-app/request_password_reset",
                      data={"token": "a", "new_password": "b"}).status_code == 403


def test_pages_escape_what_the_url_brings(verifying: Server) -> None:
    hostile = '"><img src=x onerror=alert(1)>'
    page = httpx.get(f"{verifying.url}/apps/choose_password",
                     params={"appId": verifying.app_id, "token": hostile, "username": hostile})
    assert page.status_code == 200
    _assert_safe_page(page)
    assert "<img" not in page.text
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert httpx.get(f"{verifying.url}/apps/choose_password", params={"token": "x"}).status_code == 403
    assert httpx.get(f"{verifying.url}/apps/no_such_page.html").status_code == 404
    assert httpx.get(f"{verifying.url}/apps/app/request_password_reset?token=x").status_code == 403
    unnamed = httpx.get(f"{verifying.url}/apps/password_reset_success.html")
    assert unnamed.status_code == 200 and "Zoë" not in unnamed.text  # filled only for this app's id


def test_request_password_reset_answers(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    # Unknown emails answer as known ones do (no account enumeration) and send nothing.
    assert _post(verifying, "/requestPasswordReset", {"email": "nobody-at-all@example.com"}).json() == {}
    for body, code, message in (
            ({}, 204, "you must provide an email"),
            ({"email": 5}, 125, "you must provide a valid email string"),
            ({"token": 5}, 162, "token must be a string"),
            ({"token": "not-a-token"}, 125, "you must provide a valid email string")):
        answer = _post(verifying, "/requestPasswordReset", body)
        assert (answer.status_code, answer.json()) == (400, {"code": code, "error": message}), body
    time.sleep(0.3)
    assert inbox[0].to("nobody-at-all@example.com") == []


def test_a_reset_link_dies_when_the_password_or_email_changes(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    user_id, username, address = _verified_user(verifying, inbox)
    for change in ({"password": "changed-pass"}, {"email": "other-" + address}):
        link = _reset_link(verifying, inbox, address)
        with verifying.client(master=True) as master:
            assert master.put(f"/users/{user_id}", json=change).status_code == 200
        assert "Invalid password reset link!" in httpx.get(link).text
        if "email" in change:
            address = change["email"]
            httpx.get(link_in(inbox[0].wait_for(address)[0]))  # the new address is verified again


def test_one_reset_token_changes_the_password_once_under_concurrency(verifying: Server,
                                                                    inbox: tuple[Inbox, int]) -> None:
    _, username, address = _verified_user(verifying, inbox)
    token = _reset_link(verifying, inbox, address).rsplit("=", 1)[1]
    url = f"{verifying.url}/apps/{verifying.app_id}/request_password_reset"
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(4)

    def post(password: str) -> None:
        barrier.wait()
        answers.append(httpx.post(url, data={"token": token, "new_password": password}, headers=XHR, timeout=30))

    threads = [threading.Thread(target=post, args=(f"racer-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) == 1, [a.text for a in answers]
    assert all(a.json()["code"] == -1 for a in answers if a.status_code != 200)
    assert sum(_log_in(verifying, username, f"racer-{i}").status_code == 200 for i in range(4)) == 1


def test_verify_password_is_refused_while_unverified(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    username, address = _names(verifying)
    _sign_up(verifying, username, address)
    answer = _post(verifying, "/verifyPassword", {"username": username, "password": "old-pass"})
    assert answer.json() == {"code": 205, "error": "User email is not verified."}
    httpx.get(link_in(inbox[0].wait_for(address)[0]))
    assert _post(verifying, "/verifyPassword", {"username": username, "password": "old-pass"}).status_code == 200


def test_reset_by_username_when_the_user_has_no_email(verifying: Server, inbox: tuple[Inbox, int]) -> None:
    username = f"{_names(verifying)[0]}@example.org"  # a username that is an address, no email field
    _sign_up(verifying, username, None)
    link = _reset_link(verifying, inbox, username)
    assert "Reset your password" in httpx.get(link).text


# --- expiry and the strict options -------------------------------------------------------------------


def test_strict_sign_up_is_refused_but_the_user_exists_and_is_mailed(strict: Server,
                                                                    inbox: tuple[Inbox, int]) -> None:
    username, address = _names(strict)
    refused = _sign_up(strict, username, address)
    assert (refused.status_code, refused.json()) == (400, {"code": 205, "error": "User email is not verified."})
    assert "Email verified!" in httpx.get(link_in(inbox[0].wait_for(address)[0])).text
    assert _log_in(strict, username, "old-pass").status_code == 200


def test_strict_refusals_instead_of_quiet_answers(strict: Server, inbox: tuple[Inbox, int]) -> None:
    unknown = _post(strict, "/verificationEmailRequest", {"email": "nobody@example.com"})
    assert (unknown.status_code, unknown.json()) == (
        400, {"code": 205, "error": "No user found with email nobody@example.com"})
    reset = _post(strict, "/requestPasswordReset", {"email": "nobody@example.com"})
    assert (reset.status_code, reset.json()) == (404, {"code": 101, "error": "A user with that email does not exist."})
    username, address = _names(strict)
    _sign_up(strict, username, address)
    httpx.get(link_in(inbox[0].wait_for(address)[0]))
    verified = _post(strict, "/verificationEmailRequest", {"email": address})
    assert verified.json() == {"code": -1, "error": f"Email {address} is already verified."}


def test_expired_links(strict: Server, inbox: tuple[Inbox, int]) -> None:
    username, address = _names(strict)
    _sign_up(strict, username, address)
    verify_link = link_in(inbox[0].wait_for(address)[0])
    reset_link = _reset_link(strict, inbox, address)
    token = reset_link.rsplit("=", 1)[1]
    time.sleep(2.5)

    assert "Invalid verification link!" in httpx.get(verify_link).text
    assert "Invalid password reset link!" in httpx.get(reset_link).text
    url = f"{strict.url}/apps/{strict.app_id}/request_password_reset"
    form = httpx.post(url, data={"token": token, "new_password": "new-pass"})
    assert form.status_code == 200 and "The password reset link has expired" in form.text
    assert httpx.post(url, data={"token": token, "new_password": "new-pass"}, headers=XHR).json() == {
        "code": -1, "error": "The password reset link has expired"}

    # An expired reset token may ask for a new link (Parse Server 9's {"token"} variant).
    before = len(inbox[0].to(address))
    assert _post(strict, "/requestPasswordReset", {"token": token}).json() == {}
    fresh = link_in(inbox[0].wait_for(address, before + 1)[-1])
    assert fresh != reset_link
    assert httpx.post(url, data={"token": fresh.rsplit("=", 1)[1], "new_password": "new-pass"}).status_code == 200

    # A new verification link works where the expired one did not.
    count = len(inbox[0].to(address))
    assert _post(strict, "/verificationEmailRequest", {"email": address}).json() == {}
    assert "Email verified!" in httpx.get(link_in(inbox[0].wait_for(address, count + 1)[-1])).text
    assert _log_in(strict, username, "new-pass").status_code == 200


def test_reset_keeps_sessions_when_told_to(strict: Server, inbox: tuple[Inbox, int]) -> None:
    username, address = _names(strict)
    _sign_up(strict, username, address)
    httpx.get(link_in(inbox[0].wait_for(address)[0]))
    session = _log_in(strict, username, "old-pass").json()["sessionToken"]
    token = _reset_link(strict, inbox, address).rsplit("=", 1)[1]
    assert httpx.post(f"{strict.url}/apps/{strict.app_id}/request_password_reset",
                      data={"token": token, "new_password": "new-pass"}).status_code == 200
    with strict.client(**{"X-Parse-Session-Token": session}) as api:
        assert api.get("/users/me").status_code == 200


# --- the development mailer ----------------------------------------------------------------------------


def test_dev_mailer_writes_eml_files_whose_links_work(backend: str | None) -> None:
    srv = _bastion(backend, None)  # no --mail-url
    try:
        username, address = _names(srv)
        _sign_up(srv, username, address)  # no verification asked: no mail, no emailVerified
        assert _log_in(srv, username, "old-pass").json().get("emailVerified") is None
        assert _post(srv, "/requestPasswordReset", {"email": address}).json() == {}
        mail_dir = Path(srv.data_dir) / "mail"
        deadline = time.monotonic() + 15
        files: list[Path] = []
        while time.monotonic() < deadline and not files:
            files = sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []
            time.sleep(0.05)
        assert len(files) == 1
        assert files[0].stat().st_mode & 0o077 == 0  # the token is readable by the owner only
        message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        assert message["To"] == address
        link = link_in(message)
        assert httpx.post(link.split("?")[0], data={"token": link.rsplit("=", 1)[1], "new_password": "dev-pass"},
                          headers=XHR).json() == "Password successfully reset"
        assert _log_in(srv, username, "dev-pass").status_code == 200
        log = (Path(srv.data_dir) / "server.log").read_text()
        assert link.rsplit("=", 1)[1] not in log  # the log names the file, never the token
    finally:
        stop_server(srv)


def test_an_unreachable_smtp_server_changes_no_answer(backend: str | None) -> None:
    srv = start_server("postgres" if backend else "sqlite", backend,
                       ["--mail-url", f"smtp://127.0.0.1:{free_port()}?from=no-reply@example.com&timeout=2"])
    try:
        username, address = _names(srv)
        _sign_up(srv, username, address)
        started = time.monotonic()
        answer = _post(srv, "/requestPasswordReset", {"email": address})
        assert (answer.status_code, answer.json()) == (200, {})  # the mail goes out in the background
        assert time.monotonic() - started < 1.5
        assert _post(srv, "/requestPasswordReset", {"email": "nobody@example.com"}).json() == {}
        deadline = time.monotonic() + 10
        log = ""
        while time.monotonic() < deadline and "mail not sent" not in log:
            time.sleep(0.1)
            log = (Path(srv.data_dir) / "server.log").read_text()
        assert "mail not sent" in log  # logged for the operator
    finally:
        stop_server(srv)
