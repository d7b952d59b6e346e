"""The query's strings, quoted names and comments read exactly as the server will read them.

Why not a generic SQL parser: the `sql` command's checks are only as good as the tokens they see, and a
parser that reads a string differently from the server lets the server run what the checks never saw
(sqlparse reads `'\\'` as one escaped quote; PostgreSQL, with standard_conforming_strings, reads a backslash
and the end of the string). This lexer knows each dialect's quoting rules and nothing else:
PostgreSQL's standard strings, `E''` strings with backslash escapes, `U&''` / `U&""` with their escapes and
`UESCAPE`, dollar quotes, nested `/* */` comments; SQLite's `''`, `""`, `` ` ` `` and `[ ]` quotes and flat
comments. What it cannot read the way the server would (an unterminated quote, a string glued to a word that
is not a known prefix) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class LexError(ValueError):
    """The query cannot be read unambiguously; the message says where."""


@dataclass(frozen=True)
class Token:
    kind: str  # space (whitespace and comments) | string | name (a quoted identifier) | word | number | punct
    text: str  # as written
    value: str = ""  # word: lowercased; name: the identifier it denotes (escapes decoded), lowercased


_WORD_START = re.compile(r"[A-Za-z_\u0080-\U0010ffff]")
_WORD = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]*")
_NUMBER = re.compile(r"(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?|0[xXoObB][0-9A-Fa-f_]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
#: Letters that may stand right before a quote and make one literal with it.
_GAP = r"(?:\s|--[^\n]*\n?|/\*.*?\*/)*"
_UESCAPE = re.compile(_GAP + r"UESCAPE" + _GAP + r"'(.)'", re.I | re.S)
_PG_PREFIXES = {"e", "b", "x", "n", "u&"}
_SQLITE_PREFIXES = {"x"}


def lex(query: str, dialect: str) -> list[Token]:
    """The tokens of `query` for `dialect` ("postgresql" or "sqlite"). Raises LexError."""
    pg = dialect == "postgresql"
    out: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            j = i + 1
            while j < n and query[j].isspace():
                j += 1
            out.append(Token("space", query[i:j]))
            i = j
        elif query.startswith("--", i):
            j = query.find("\n", i)
            j = n if j < 0 else j + 1
            out.append(Token("space", query[i:j]))
            i = j
        elif query.startswith("/*", i):
            j = _block_comment_end(query, i, nested=pg)
            out.append(Token("space", query[i:j]))
            i = j
        elif ch == "'":
            j = _quoted_end(query, i, "'", backslash=False)
            out.append(Token("string", query[i:j]))
            i = j
        elif ch == '"' or (not pg and ch == "`"):
            j = _quoted_end(query, i, ch, backslash=False)
            out.append(Token("name", query[i:j], _unquote(query[i + 1 : j - 1], ch).lower()))
            i = j
        elif not pg and ch == "[":
            j = query.find("]", i)
            if j < 0:
                raise LexError(f"unterminated [name] at character {i + 1}")
            out.append(Token("name", query[i : j + 1], query[i + 1 : j].lower()))
            i = j + 1
        elif pg and ch == "$" and (m := _DOLLAR_TAG.match(query, i)):
            tag = m.group(0)
            j = query.find(tag, m.end())
            if j < 0:
                raise LexError(f"unterminated {tag} string at character {i + 1}")
            out.append(Token("string", query[i : j + len(tag)]))
            i = j + len(tag)
        elif _WORD_START.match(ch):
            i = _word(query, i, pg, out)
        elif ch.isdigit() or (ch == "." and i + 1 < n and query[i + 1].isdigit()):
            m = _NUMBER.match(query, i)
            j = m.end() if m else i + 1
            if j < n and (query[j] in "'\"`" or _WORD_START.match(query[j])):
                raise LexError(
                    f"a number runs into a word or a quote at character {j + 1} ({query[i : j + 1]!r}): "
                    "put a space between them"
                )
            out.append(Token("number", query[i:j]))
            i = j
        else:
            out.append(Token("punct", ch))
            i += 1
    return out


def _word(query: str, i: int, pg: bool, out: list[Token]) -> int:
    m = _WORD.match(query, i + 1)
    j = m.end() if m else i + 1
    word = query[i:j]
    low = word.lower()
    n = len(query)
    if pg and low == "u" and query[j : j + 2] in ("&'", '&"'):
        quote = query[j + 1]
        end = _quoted_end(query, j + 1, quote, backslash=False)
        if quote == "'":
            out.append(Token("string", query[i:end]))
        else:
            body = _unquote(query[j + 2 : end - 1], '"')
            out.append(Token("name", query[i:end], _uescape(body, _uescape_char(query, end)).lower()))
        return end
    if j < n and query[j] in "'\"`":
        prefixes = _PG_PREFIXES if pg else _SQLITE_PREFIXES
        if low not in prefixes or query[j] != "'":
            raise LexError(
                f"a word runs into a quote at character {j + 1} ({query[i : j + 1]!r}): "
                "put a space between them"
            )
        end = _quoted_end(query, j, "'", backslash=pg and low == "e")
        out.append(Token("string", query[i:end]))
        return end
    out.append(Token("word", word, low))
    return j


def _quoted_end(query: str, i: int, quote: str, *, backslash: bool) -> int:
    """The index after the quote that closes the one at `i` (a doubled quote is one character)."""
    j, n = i + 1, len(query)
    while j < n:
        c = query[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and query[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    what = {"'": "string", '"': '"name"', "`": "`name`"}[quote]
    raise LexError(f"unterminated {what} starting at character {i + 1}")


def _block_comment_end(query: str, i: int, *, nested: bool) -> int:
    depth, j, n = 0, i, len(query)
    while j < n:
        if query.startswith("/*", j):
            depth = depth + 1 if nested or depth == 0 else depth
            j += 2
        elif query.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    if nested:
        raise LexError(f"unterminated /* comment starting at character {i + 1}")
    return n  # SQLite: a comment left open runs to the end


def _unquote(body: str, quote: str) -> str:
    return body.replace(quote * 2, quote)


def _uescape_char(query: str, i: int) -> str:
    """The escape character named by `UESCAPE 'c'` after a U& literal ending at `i` (default backslash)."""
    m = re.compile(
        r"(?:\s|--[^\n]*\n?|/\*.*?\*/)*UESCAPE(?:\s|--[^\n]*\n?|/\*.*?\*/)*'(.)'", re.I | re.S
    ).match(query, i)
    if not m:
        return "\\"
    if m.group(1) in "0123456789abcdefABCDEF+'\" \t\r\n":
        raise LexError(f"UESCAPE {m.group(1)!r} is not a valid escape character")
    return m.group(1)


def _uescape(body: str, esc: str) -> str:
    """A U&"…" identifier's name: esc+XXXX, esc+'+'+XXXXXX, esc+esc decoded as PostgreSQL does."""
    out, j, n = [], 0, len(body)
    while j < n:
        c = body[j]
        if c != esc:
            out.append(c)
            j += 1
            continue
        if body.startswith(esc, j + 1):
            out.append(esc)
            j += 2
        elif body.startswith("+", j + 1) and re.fullmatch(r"[0-9A-Fa-f]{6}", body[j + 2 : j + 8]):
            out.append(_char(body[j + 2 : j + 8]))
            j += 8
        elif re.fullmatch(r"[0-9A-Fa-f]{4}", body[j + 1 : j + 5]):
            out.append(_char(body[j + 1 : j + 5]))
            j += 5
        else:
            raise LexError("invalid Unicode escape in a U& name")
    return "".join(out)


def _char(hexdigits: str) -> str:
    try:
        return chr(int(hexdigits, 16))
    except (ValueError, OverflowError):
        raise LexError(f"invalid Unicode escape value {hexdigits}") from None
