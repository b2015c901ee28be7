"""The error cloud code raises to answer a client with a Parse error."""

from __future__ import annotations

from bastion.errors import Code, ParseError


class Error(ParseError):
    """``raise cloud.Error(142, "score must be >= 0")`` reaches the client as that Parse error.

    The Parse error codes are attributes (``cloud.Error.VALIDATION_ERROR``), as on ``Parse.Error``.
    Any other exception a function or trigger raises reaches the client as 141 "Script failed."
    while the traceback goes to the server's log.
    """

    def __init__(self, code: int, message: str = "", status: int | None = None) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError("cloud.Error(code, message): code must be a Parse error code (int)")
        super().__init__(code, str(message), status)


for _name, _value in vars(Code).items():
    if _name.isupper():
        setattr(Error, _name, _value)

SCRIPT_FAILED = "Script failed."
