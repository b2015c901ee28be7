"""PostgreSQL's default text search parser: the tokens of a text, each a word or something else.

Words (ASCII or not), words with digits, numbers (signed, decimal, versions), hyphenated words (the
compound, then each part), dotted names (hosts, files), paths (``and/or``), e-mail addresses, URLs
(the URL, its host, its path); XML tags and entities are skipped. Its rarer corners (URLs with user
names, scientific notation next to letters...) are approximated.
"""

from __future__ import annotations

import re

# Token kinds: a word of letters (stemmed) or anything else (lower-cased, as the "simple" dictionary).
WORD, OTHER = 0, 1


def _run_end(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i].isalnum():
        i += 1
    return i


# Markup the parser recognises and no configuration indexes.
_TAG = re.compile(r"<!--.*?-->|<[/?]?[A-Za-z_:][\w:.\-]*(?:\s+[^<>]*?)?\s*/?>", re.DOTALL)
_HIDDEN_ELEMENT = re.compile(r"<(script|style)\b", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
_HOST = r"(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}"
_EMAIL = re.compile(r"[A-Za-z0-9_.\-]+@" + _HOST)
_URL = re.compile(r"(?P<protocol>[A-Za-z][A-Za-z0-9+.\-]*://)?(?P<host>" + _HOST + r"(?::[0-9]+)?)"
                  r"(?P<path>/[^\s<>\"`]*)?")
_PROTOCOL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE][+\-]?[0-9]+(?![0-9A-Za-z])")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_\-]*[A-Za-z0-9])?"
_UNDERSCORED_HOST = re.compile(_LABEL + r"(?:\." + _LABEL + r")*\.[A-Za-z]{2,}(?![A-Za-z0-9_\-])")
_FILE = re.compile(r"[A-Za-z0-9.]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)+")


def _address(text: str, i: int) -> tuple[list[str], int] | None:
    """An e-mail address, URL or path at ``i``: its tokens (none for a bare protocol) and its end."""
    email = _EMAIL.match(text, i)
    if email is not None:
        return [email.group()], email.end()
    url = _URL.match(text, i)
    if url is not None and (url.group("protocol") or url.group("path")):
        host, path = url.group("host"), url.group("path")
        return ([host + path, host, path] if path else [host]), url.end()
    protocol = _PROTOCOL.match(text, i)
    if protocol is not None:  # not indexed; what follows is read as usual
        return [], protocol.end()
    number = _SCIENTIFIC.match(text, i)
    if number is not None:
        return [number.group()], number.end()
    host = _UNDERSCORED_HOST.match(text, i)
    if host is not None and "_" in host.group():  # "my_file.tar.gz" is one host name
        return [host.group()], host.end()
    path_match = _FILE.match(text, i)
    if path_match is not None:
        head = path_match.group().split("/", 1)[0]
        if not ("." in head and head.replace(".", "").isdigit()):  # "3.14/2": a number, then "/2"
            token = path_match.group().rstrip(".")
            if "/" in token and token != "/":
                return [token], i + len(token)
    return None


def _word_kind(token: str) -> int:
    return WORD if token.isalpha() else OTHER


def tokens(text: str) -> list[tuple[int, str]]:
    """The indexable tokens of ``text`` in order, as (kind, token)."""
    out: list[tuple[int, str]] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if (ch.isascii() and ch.isalnum()) or ch == "/":
            address = _address(text, i)
            if address is not None:
                out.extend((OTHER, token) for token in address[0])
                i = address[1]
                continue
        if ch.isalnum():
            j = _run_end(text, i)
            run = text[i:j]
            if j + 1 < n and text[j] == "." and text[j + 1].isalnum():
                dotted = _dotted(text, i, j, run)
                if dotted is not None:
                    out.append((OTHER, dotted[0]))
                    i = dotted[1]
                    continue
            if run[0].isalpha() and j + 1 < n and text[j] == "-" and text[j + 1].isalnum():
                parts, k = [run], j
                while k + 1 < n and text[k] == "-" and text[k + 1].isalnum():
                    end = _run_end(text, k + 1)
                    part = text[k + 1:end]
                    if not any(c.isalpha() for c in part):
                        break  # "covid-19": a word, then the signed number -19
                    parts.append(part)
                    k = end
                if len(parts) > 1:
                    compound = "-".join(parts)
                    has_digits = any(not p.isalpha() for p in parts)
                    out.append((OTHER if has_digits else WORD, compound))
                    out.extend((_word_kind(p), p) for p in parts)
                    i = k
                    continue
            out.append((_word_kind(run), run))
            i = j
            if text.startswith("..", j) and (j + 2 == n or not (text[j + 2] == "." or text[j + 2].isalnum())):
                out.append((OTHER, ".."))  # the parser's quirk: "so.. yes" holds the file name ".."
                i = j + 2
            continue
        if ch in "<&":
            markup = (_TAG if ch == "<" else _ENTITY).match(text, i)
            if markup is not None:
                i = markup.end()
                hidden = _HIDDEN_ELEMENT.match(markup.group())
                if hidden is not None:  # a script's or style's content is not text
                    close = re.compile(r"</" + hidden.group(1) + r"\b", re.IGNORECASE).search(text, i)
                    i = n if close is None else close.start()
                continue
        if ch in "+-" and i + 1 < n and text[i + 1].isdigit():
            scientific = _SCIENTIFIC.match(text, i + 1)
            if scientific is not None:
                out.append((OTHER, text[i:scientific.end()]))
                i = scientific.end()
                continue
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            if j + 1 < n and text[j] == "." and text[j + 1].isdigit():  # "-123.456"
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            out.append((OTHER, text[i:j]))  # "-19a" is -19, then a
            i = j
            continue
        i += 1
    return out


def _dotted(text: str, start: int, first_end: int, first: str) -> tuple[str, int] | None:
    """A dotted token (``3.14``, ``1.2.3``, ``example.com``, ``e.g``) starting at ``start``."""
    n = len(text)
    parts, k = [first], first_end
    if first.isdigit() and first.isascii():
        # Numbers: "3.14", "1.2.3"; "3.5kg" is 3.5 then kg, "10.5.x" is 10.5 then x.
        while k + 1 < n and text[k] == "." and text[k + 1].isdigit() and text[k + 1].isascii():
            end = k + 1
            while end < n and text[end].isdigit() and text[end].isascii():
                end += 1
            parts.append(text[k + 1:end])
            k = end
            if end < n and text[end].isalnum():
                break
        return (".".join(parts), k) if len(parts) > 1 else None
    while k + 1 < n and text[k] == "." and text[k + 1].isalnum():
        end = _run_end(text, k + 1)
        parts.append(text[k + 1:end])
        k = end
    if first[0].isalpha() and all(p.isascii() for p in parts):
        return ".".join(parts), k  # host or file name
    return None
