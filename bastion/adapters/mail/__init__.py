"""Mail adapters: SMTP when configured, otherwise a development mailer that writes files."""

from bastion.adapters.mail.dev import DevMailer
from bastion.adapters.mail.smtp import SmtpMailer
from bastion.adapters.mail.url import mailer_from_url
from bastion.ports.mail import Mailer, MailError, MailMessage

__all__ = ["DevMailer", "MailError", "MailMessage", "Mailer", "SmtpMailer", "mailer_from_url"]
