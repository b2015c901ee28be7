"""Regular expressions: Python's syntax (the matcher's) in PostgreSQL's ARE dialect."""

from __future__ import annotations

import re

from bastion.errors import Code, ParseError

_LEADING_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


def pg_regex(pattern: str, ignore_case: bool, multiline: bool, extended: bool) -> str:
    """Translate what differs: word boundaries, ``$`` before a final newline, ``\\xhh``, flags.

    Python's DOTALL (always on in the matcher) is PostgreSQL's default; Python's MULTILINE is
    PostgreSQL's ``w`` ("weird") mode: ``^``/``$`` at lines while ``.`` still matches a newline.
    Whatever PostgreSQL still refuses surfaces as ParseError(102) when the query runs.
    """
    while match := _LEADING_FLAGS.match(pattern):
        letters = match.group(1)
        ignore_case = ignore_case or "i" in letters
        multiline = multiline or "m" in letters
        extended = extended or "x" in letters
        pattern = pattern[match.end():]
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if d == "x" and _HEX2.match(pattern, i + 2):
                out.append("\\u00" + pattern[i + 2:i + 4])  # PostgreSQL's \x eats every hex digit
                i += 4
                continue
            if not in_class and d in "bB":
                out.append("\\y" if d == "b" else "\\Y")  # \b is a backspace in PostgreSQL
            else:
                out.append(c + d)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            start = i + 1
            if pattern.startswith("^", start):
                start += 1
            if pattern.startswith("]", start):  # a leading ] is literal in both dialects
                start += 1
            out.append(pattern[i:start])
            i = start
            continue
        if c == "$" and not multiline:
            out.append("(?=\\n?$)")  # Python's $ also matches before a final newline
        elif c == "#" and extended:
            end = pattern.find("\n", i)
            end = n if end < 0 else end
            out.append(pattern[i:end])
            i = end
            continue
        elif pattern.startswith("(?P<", i):
            close = pattern.find(">", i)
            if close < 0:
                raise ParseError(Code.INVALID_QUERY, "Invalid regular expression")
            out.append("(")  # named groups become plain groups; their numbers stay the same
            i = close + 1
            continue
        else:
            out.append(c)
        i += 1
    options = ("i" if ignore_case else "") + ("w" if multiline else "") + ("x" if extended else "")
    body = "".join(out)
    return f"(?{options}){body}" if options else body
