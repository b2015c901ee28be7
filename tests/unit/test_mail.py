"""Mail adapters: the development mailer's files and log line, and SMTP against a real aiosmtpd server
(plain, AUTH, STARTTLS, implicit TLS, refusals, a server that is down or silent), and mailer URLs."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.adapters.mail import DevMailer, MailError, MailMessage, SmtpMailer, mailer_from_url
from tests.conftest import free_port

# aiosmtpd warns when a test server takes AUTH without TLS; that is what those tests mean to do.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SUBJECT = "Réinitialisez votre mot de passe ✓ — 日本語"
TEXT = "Bonjour Zoë,\nsuivez ce lien : https://example.com/reset?token=abc\n"
HTML = "<p>Bonjour Zoë, <a href='https://example.com/reset?token=abc'>ici</a></p>"


# --- a real SMTP server ---------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Handler:
    refuse_rcpt: bool = False
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse_rcpt:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()
        self.attempts: list[tuple[str, bytes]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.attempts.append((mechanism, data.login))
        ok = data.login == self.user and data.password == self.password
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 235/535 reply


@dataclass
class Server:
    port: int
    handler: Handler
    authenticator: Authenticator | None = None


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    options: dict[str, Any] = getattr(request, "param", {})
    handler = Handler(refuse_rcpt=options.pop("refuse_rcpt", False))
    authenticator = options.pop("authenticator", None)
    if authenticator is not None:
        options.update(authenticator=authenticator, auth_required=True)
        options.setdefault("auth_require_tls", False)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield Server(port, handler, authenticator)
    finally:
        controller.stop()


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1 and a client context that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return Tls(server, client)


def message(**overrides: Any) -> MailMessage:
    values: dict[str, Any] = {"to": "zoe@example.com", "subject": SUBJECT, "text": TEXT, "html": HTML}
    values.update(overrides)
    return MailMessage(**values)


def body_of(parsed: EmailMessage, kind: str) -> str:
    part = parsed.get_body(preferencelist=(kind,))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")  # SMTP carries CRLF line ends


# --- SMTP -----------------------------------------------------------------------------------------


async def test_smtp_delivers_sender_recipient_utf8_subject_text_and_html(smtp_server: Server) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, sender="App <app@example.com>", starttls=False)
    await mailer.send(message())
    [received] = smtp_server.handler.received
    assert received.mail_from == "app@example.com"
    assert received.rcpt_tos == ["zoe@example.com"]
    assert received.message["Subject"] == SUBJECT
    assert received.message["From"] == "App <app@example.com>"
    assert received.message["To"] == "zoe@example.com"
    assert received.message["Message-ID"].endswith("@example.com>")
    assert received.message["Date"]
    assert body_of(received.message, "plain") == TEXT
    assert body_of(received.message, "html").strip() == HTML


async def test_smtp_message_from_overrides_sender_and_text_only_has_one_part(smtp_server: Server) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, sender="app@example.com", starttls=False)
    await mailer.send(message(html=None, from_addr="support@example.org"))
    [received] = smtp_server.handler.received
    assert received.mail_from == "support@example.org"
    assert not received.message.is_multipart()
    assert received.message.get_content().replace("\r\n", "\n") == TEXT


@pytest.mark.parametrize(
    "smtp_server", [{"authenticator": Authenticator("mailer", "s3cret:/@")}], indirect=True
)
async def test_smtp_authenticates_when_configured(smtp_server: Server) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        smtp_server.port,
        sender="app@example.com",
        username="mailer",
        password="s3cret:/@",
        starttls=False,
    )
    await mailer.send(message())
    assert len(smtp_server.handler.received) == 1
    assert smtp_server.authenticator is not None
    assert [login for _, login in smtp_server.authenticator.attempts] == [b"mailer"]


@pytest.mark.parametrize("smtp_server", [{"authenticator": Authenticator("mailer", "right")}], indirect=True)
async def test_smtp_wrong_password_is_a_mail_error(smtp_server: Server) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        smtp_server.port,
        sender="a@example.com",
        username="mailer",
        password="wrong",
        starttls=False,
    )
    with pytest.raises(MailError) as caught:
        await mailer.send(message())
    assert caught.value.smtp_code == 535
    assert smtp_server.handler.received == []


@pytest.mark.parametrize("smtp_server", [{"authenticator": Authenticator("mailer", "right")}], indirect=True)
async def test_smtp_server_requiring_auth_refuses_anonymous_senders(smtp_server: Server) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, sender="a@example.com", starttls=False)
    with pytest.raises(MailError) as caught:
        await mailer.send(message())
    assert caught.value.smtp_code == 530
    assert smtp_server.handler.received == []


@pytest.mark.parametrize("smtp_server", [{"refuse_rcpt": True}], indirect=True)
async def test_smtp_refused_recipient_is_a_mail_error(smtp_server: Server) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, sender="a@example.com", starttls=False)
    with pytest.raises(MailError, match="no such user") as caught:
        await mailer.send(message())
    assert caught.value.smtp_code == 550


async def test_smtp_server_down_is_a_mail_error() -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), sender="a@example.com", timeout=2)
    with pytest.raises(MailError):
        await mailer.send(message())


async def test_smtp_silent_server_times_out_as_a_mail_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        mailer = SmtpMailer("127.0.0.1", listener.getsockname()[1], sender="a@example.com", timeout=0.5)
        with pytest.raises(MailError):
            await mailer.send(message())
    finally:
        thread.join(2)
        for sock in accepted:
            sock.close()
        listener.close()


@pytest.fixture
def starttls_server(tls: Tls) -> Iterator[Server]:
    handler = Handler()
    authenticator = Authenticator("mailer", "pw")
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls.server,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield Server(port, handler, authenticator)
    finally:
        controller.stop()


async def test_smtp_starttls_then_auth(starttls_server: Server, tls: Tls) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        starttls_server.port,
        sender="app@example.com",
        username="mailer",
        password="pw",
        starttls=True,
        tls_context=tls.client,
    )
    await mailer.send(message())
    assert [r.message["Subject"] for r in starttls_server.handler.received] == [SUBJECT]


async def test_smtp_starttls_off_is_refused_by_a_server_that_requires_it(starttls_server: Server) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        starttls_server.port,
        sender="a@example.com",
        username="mailer",
        password="pw",
        starttls=False,
    )
    with pytest.raises(MailError):
        await mailer.send(message())
    assert starttls_server.handler.received == []


async def test_smtp_starttls_with_an_untrusted_certificate_is_a_mail_error(starttls_server: Server) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        starttls_server.port,
        sender="a@example.com",
        username="mailer",
        password="pw",
        starttls=True,
    )
    with pytest.raises(MailError):
        await mailer.send(message())
    assert starttls_server.handler.received == []


async def test_smtp_implicit_tls(tls: Tls) -> None:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=tls.server)
    controller.start()
    try:
        mailer = SmtpMailer(
            "127.0.0.1", port, sender="app@example.com", implicit_tls=True, tls_context=tls.client
        )
        await mailer.send(message())
    finally:
        controller.stop()
    assert [r.rcpt_tos for r in handler.received] == [["zoe@example.com"]]


def test_smtp_options_that_contradict_are_refused() -> None:
    with pytest.raises(ValueError):
        SmtpMailer("h", sender="a@example.com", starttls=True, implicit_tls=True)
    with pytest.raises(ValueError):
        SmtpMailer("h", sender="a@example.com", username="u")
    assert SmtpMailer("h", sender="a@example.com", implicit_tls=True).port == 465
    assert SmtpMailer("h", sender="a@example.com", starttls=True).port == 587
    assert SmtpMailer("h", sender="a@example.com").port == 25
    assert "pw" not in repr(SmtpMailer("h", sender="a@example.com", username="u", password="pw"))


# --- the development mailer -----------------------------------------------------------------------


async def test_dev_mailer_writes_rfc5322_files_and_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = DevMailer(tmp_path)
    with caplog.at_level(logging.INFO, logger="bastion.mail"):
        await mailer.send(message())
    [path] = list((tmp_path / "mail").iterdir())
    assert path.suffix == ".eml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["To"] == "zoe@example.com"
    assert parsed["From"] == "no-reply@localhost"
    assert parsed["Subject"] == SUBJECT
    assert body_of(parsed, "plain") == TEXT
    assert body_of(parsed, "html").strip() == HTML
    [record] = [r for r in caplog.records if r.name == "bastion.mail"]
    line = record.getMessage()
    assert "zoe@example.com" in line and SUBJECT in line and str(path) in line
    assert record.mail_to == "zoe@example.com"  # type: ignore[attr-defined]
    assert record.mail_file == str(path)  # type: ignore[attr-defined]


async def test_dev_mailer_file_names_sort_in_sending_order(tmp_path: Path) -> None:
    mailer = DevMailer(tmp_path, sender="app@example.com")
    for number in range(25):
        await mailer.send(message(subject=f"message {number}", html=None))
    paths = sorted((tmp_path / "mail").iterdir())
    subjects = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"] for p in paths
    ]
    assert subjects == [f"message {n}" for n in range(25)]
    assert not list((tmp_path / "mail").glob("*.tmp"))


async def test_dev_mailer_unwritable_directory_is_a_mail_error(tmp_path: Path) -> None:
    (tmp_path / "mail").write_text("a file where the directory should be")
    with pytest.raises(MailError):
        await DevMailer(tmp_path).send(message())


@pytest.mark.parametrize(
    "subject",
    [
        "Plain ASCII subject that is long enough to be folded by the generator, " * 3,
        "Vérifiez votre adresse — 日本語 — ✓ " * 6,
        "  spaces  at the edges and é in the middle  ",
    ],
)
async def test_subjects_survive_folding_and_encoding(tmp_path: Path, subject: str) -> None:
    await DevMailer(tmp_path).send(message(subject=subject, html=None))
    [path] = list((tmp_path / "mail").iterdir())
    raw = path.read_bytes()
    assert all(len(line) <= 78 for line in raw.split(b"\n"))
    assert raw.isascii()
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == subject


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"to": "zoe@example.com\nBcc: victim@example.com"},
        {"from_addr": "a@example.com\r\nX-Evil: 1"},
    ],
)
async def test_header_injection_is_refused(tmp_path: Path, overrides: dict[str, str]) -> None:
    with pytest.raises(MailError):
        await DevMailer(tmp_path).send(message(**overrides))
    assert not (tmp_path / "mail").exists() or not list((tmp_path / "mail").iterdir())


# --- mailer_from_url ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, ""])
def test_no_url_means_the_dev_mailer(url: str | None, tmp_path: Path) -> None:
    mailer = mailer_from_url(url, tmp_path)
    assert isinstance(mailer, DevMailer)
    assert mailer.directory == tmp_path / "mail"


def test_smtp_url_fields_and_percent_decoded_credentials(tmp_path: Path) -> None:
    mailer = mailer_from_url(
        "smtp://us%40er:p%3Ass%2Fw%20rd@mail.example.com:2525?starttls=1&from=App%20%3Capp%40example.com%3E&timeout=3",
        tmp_path,
    )
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port) == ("mail.example.com", 2525)
    assert (mailer.username, mailer.password) == ("us@er", "p:ss/w rd")
    assert mailer.sender == "App <app@example.com>"
    assert mailer.starttls is True and mailer.implicit_tls is False
    assert mailer.timeout == 3


def test_smtp_url_defaults(tmp_path: Path) -> None:
    plain = mailer_from_url("smtp://relay.internal?from=app@example.com", tmp_path)
    assert isinstance(plain, SmtpMailer)
    assert (plain.port, plain.starttls, plain.username) == (25, None, None)
    off = mailer_from_url("smtp://relay.internal?from=app@example.com&starttls=0", tmp_path)
    assert isinstance(off, SmtpMailer) and off.starttls is False
    implicit = mailer_from_url("smtps://app%40example.com:pw@smtp.example.com", tmp_path)
    assert isinstance(implicit, SmtpMailer)
    assert (implicit.port, implicit.implicit_tls, implicit.starttls) == (465, True, False)
    assert implicit.sender == "app@example.com"  # the login, when it is an address


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com?from=a@example.com",
        "smtp://?from=a@example.com",
        "smtp://mail.example.com",
        "smtp://user@mail.example.com?from=a@example.com",
        "smtp://mail.example.com?from=a@example.com&tls=1",
        "smtp://mail.example.com?from=a@example.com&starttls=maybe",
        "smtps://mail.example.com?from=a@example.com&starttls=1",
        "smtp://mail.example.com:99999?from=a@example.com",
        "smtp://mail.example.com:port?from=a@example.com",
        "smtp://mail.example.com?from=a@example.com&timeout=0",
        "smtp://mail.example.com?from=a@example.com&timeout=soon",
    ],
)
def test_smtp_url_mistakes_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        mailer_from_url(url, tmp_path)


@pytest.mark.parametrize("smtp_server", [{"authenticator": Authenticator("us@er", "p:ss/w")}], indirect=True)
async def test_smtp_url_delivers_through_a_real_server(smtp_server: Server, tmp_path: Path) -> None:
    url = f"smtp://us%40er:p%3Ass%2Fw@127.0.0.1:{smtp_server.port}?starttls=0&from=app%40example.com"
    await mailer_from_url(url, tmp_path).send(message())
    [received] = smtp_server.handler.received
    assert (received.mail_from, received.message["Subject"]) == ("app@example.com", SUBJECT)
