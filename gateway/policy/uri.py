"""Resource URIs as policy sees them: one normal form, and globs over it.

Owns `normalise_uri` and `UriGlobSet`. Policy never matches a URI as the client wrote it:
it matches the normal form below, so that ``file:///data/../etc/passwd``,
``file:///data/%2e%2e/etc/passwd`` and ``FILE:///data/x`` mean what an upstream will read.

Normal form (RFC 3986 section 6.2.2, plus refusals that fail closed):

1. Refused (``None``; policy then grants nothing): empty or over 8192 characters, no scheme,
   control characters, a backslash, a malformed ``%`` escape, an encoded ``/`` ``\\`` or
   control character (``%2F`` ``%5C`` ``%00``: an upstream that decodes before splitting
   would see other segments than policy did), a double-encoded escape (``%25`` followed by
   two hex digits, before or after step 3), or dot segments in a path that does not start with ``/``.
2. Scheme and authority lower-cased; the path, query and fragment keep their case.
3. ``%XX`` of an unreserved character (letters, digits, ``-._~``) decoded; other escapes
   keep their byte with upper-case hex.
4. Dot segments (``.`` and ``..``) removed from a path starting with ``/`` (section 5.2.4;
   ``..`` never climbs above the root).

Globs: ``**`` matches any characters including ``/``; ``*`` matches any characters except
``/``; every other character is literal (``?`` and ``[`` are URI characters, not wildcards).
A glob is normalised like a URI when it starts with a scheme; a glob without one must start
with ``*``. Globs with dot segments are refused at load. Nothing here reads policy files.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

MAX_URI = 8192
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_DOUBLE = re.compile(r"%25[0-9A-Fa-f]{2}", re.IGNORECASE)
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_DOT_SEGMENTS = frozenset({".", ".."})


class _Refused(Exception):
    pass


def normalise_uri(uri: str) -> str | None:
    """The normal form of `uri`, or None when policy refuses to match it (see the module docstring)."""
    if not uri or len(uri) > MAX_URI or any(ord(c) < 0x20 or c in "\x7f\\" for c in uri):
        return None
    scheme = _SCHEME.match(uri)
    if scheme is None or _DOUBLE.search(uri):
        return None
    try:
        rest = _unescape(uri[scheme.end() :])
    except _Refused:
        return None
    if _DOUBLE.search(rest):  # decoding made one: %25%32%65 is %252e
        return None
    authority, path, tail = _split(rest)
    if path.startswith("/"):
        path = remove_dot_segments(path)
    elif _DOT_SEGMENTS & set(path.split("/")):
        return None
    return f"{scheme.group(1).lower()}:{authority.lower()}{path}{tail}"


def _unescape(text: str) -> str:
    """Decode escapes of unreserved characters, upper-case the rest; refuse bad or dangerous ones."""
    if text.count("%") != len(_ESCAPE.findall(text)):
        raise _Refused
    return _ESCAPE.sub(_one_escape, text)


def _one_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    if char in _UNRESERVED:
        return char
    if char in "/\\" or ord(char) < 0x20 or char == "\x7f":
        raise _Refused
    return "%" + match.group(1).upper()


def _split(rest: str) -> tuple[str, str, str]:
    """(``//authority`` or "", path, ``?query#fragment`` or "")."""
    authority = ""
    if rest.startswith("//"):
        end = next((i for i, c in enumerate(rest[2:], 2) if c in "/?#"), len(rest))
        authority, rest = rest[:end], rest[end:]
    cut = next((i for i, c in enumerate(rest) if c in "?#"), len(rest))
    return authority, rest[:cut], rest[cut:]


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 for an absolute path: ``/a/./b/../c`` -> ``/a/c``; never above ``/``."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def check_uri_glob(glob: str) -> str:
    """Validate one URI glob for the policy model; return it normalised (the form that is matched)."""
    if not glob:
        raise ValueError("empty URI glob")
    if _SCHEME.match(glob) is None:
        if not glob.startswith("*"):
            raise ValueError(f"URI glob {glob!r} needs a scheme (like file:///data/**) or to start with '*'")
        if any(ord(c) < 0x20 or c in "\x7f\\%" for c in glob):
            raise ValueError(f"URI glob {glob!r} has a control character, backslash or '%'")
        normal: str | None = glob
    else:
        normal = normalise_uri(glob)
    if normal is None:
        raise ValueError(f"URI glob {glob!r} is not a URI policy can match (bad escape, %2F, backslash ...)")
    if _has_dot_segment(glob) or _has_dot_segment(normal):
        raise ValueError(f"URI glob {glob!r} has '.' or '..' segments; write the path it means")
    return normal


def _has_dot_segment(glob: str) -> bool:
    path = _SCHEME.sub("", glob, count=1)
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1).lower() == "2e" else m.group(0), path)
    cut = next((i for i, c in enumerate(decoded) if c in "?#"), len(decoded))
    return bool(_DOT_SEGMENTS & set(decoded[:cut].split("/")))


def _translate(glob: str) -> str:
    parts = re.split(r"(\*\*|\*)", glob)
    return "".join({"**": ".*", "*": "[^/]*"}.get(p, re.escape(p)) for p in parts)


@dataclass(frozen=True, slots=True, eq=False)
class UriGlobSet:
    """Normalised URI globs compiled into one anchored regex; matched against normalised URIs only."""

    globs: tuple[str, ...]
    regex: re.Pattern[str] | None

    @classmethod
    def of(cls, globs: Iterable[str]) -> UriGlobSet:
        globs = tuple(globs)
        pattern = "|".join(f"(?:{_translate(g)})" for g in globs)
        return cls(globs, re.compile(pattern, re.DOTALL) if globs else None)

    def matches(self, normal_uri: str) -> bool:
        return self.regex is not None and self.regex.fullmatch(normal_uri) is not None
