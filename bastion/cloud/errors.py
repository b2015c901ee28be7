"""The error cloud code raises to answer a client with a Parse error."""

from __future__ import annotations

from bastion.errors import Code, ParseError


class Error(ParseError):
    """``raise cloud.Error(142, "score must be >= 0")`` reaches the client as that Parse error.

    The Parse error codes are attributes (``cloud.Error.VALIDATION_ERROR``), as on ``Parse.Error``.
    Any other exception a function or trigger raises reaches the client as 141 with the exception's
    message (``str(exc)``), as Parse Server answers ``throw new Error("…")`` and ``throw "…"``,
    while the traceback goes to the server's log (see ``ScriptFailure``).
    """

    def __init__(self, code: int, message: str = "", status: int | None = None) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError("cloud.Error(code, message): code must be a Parse error code (int)")
        super().__init__(code, str(message), status)


for _name, _value in vars(Code).items():
    if _name.isupper():
        setattr(Error, _name, _value)

SCRIPT_FAILED = "Script failed."
# What a trigger's failure without a message says (Parse's maybeRunTrigger default).
TRIGGER_FAILED = "Script failed. Unknown error."
VALIDATION_FAILED = "Validation failed."


def exception_message(exc: BaseException) -> str:
    """The text Parse Server would send for a thrown value: JavaScript's ``error.message`` or the
    thrown string is Python's ``str(exc)`` (the one argument of ``Exception("…")``)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ is no message
        return ""


class ScriptFailure(ParseError):
    """A handler's own exception (not a ``cloud.Error``), as Parse's resolveError turns it into a
    Parse error: 141 with the exception's message, or ``fallback`` when it has none. ``detail`` keeps
    the exception's message alone, for callers that answer with their own code (file triggers)."""

    def __init__(self, detail: str, fallback: str = SCRIPT_FAILED, code: int = Code.SCRIPT_FAILED) -> None:
        super().__init__(code, detail or fallback)
        self.detail = detail
