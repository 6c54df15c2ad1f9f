"""normalise_uri and URI globs: the tricks a client may play with a resource URI."""

from __future__ import annotations

import posixpath
import random
import re
import urllib.parse

import pytest

from gateway.policy.uri import MAX_URI, UriGlobSet, check_uri_glob, normalise_uri, remove_dot_segments


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("file:///data/a.txt", "file:///data/a.txt"),
        ("file:///data/../etc/passwd", "file:///etc/passwd"),
        ("file:///data/./a.txt", "file:///data/a.txt"),
        ("file:///data/x/../../etc/passwd", "file:///etc/passwd"),
        ("file:///../../../etc/passwd", "file:///etc/passwd"),
        ("file:///data/%2e%2e/etc/passwd", "file:///etc/passwd"),
        ("file:///data/%2E%2E/etc/passwd", "file:///etc/passwd"),
        ("file:///data/.%2e/etc/passwd", "file:///etc/passwd"),
        ("file:///data/%2e/a", "file:///data/a"),
        ("file:///data/..", "file:///"),
        ("file:///data/x/..", "file:///data/"),
        ("FILE:///data/a", "file:///data/a"),
        ("File:///Data/A", "file:///Data/A"),
        ("HTTPS://Example.COM/Path/X", "https://example.com/Path/X"),
        ("file:///data/%61.txt", "file:///data/a.txt"),
        ("file:///data/a%20b", "file:///data/a%20b"),
        ("file:///data/a%3fb", "file:///data/a%3Fb"),
        ("file:///data/a?x=../../etc", "file:///data/a?x=../../etc"),
        ("file:///data/a#../b", "file:///data/a#../b"),
        ("demo://resource/static/document/x.md", "demo://resource/static/document/x.md"),
        ("mem://notes/../secret", "mem://notes/secret"),
        ("file:///data//a", "file:///data//a"),
        ("urn:isbn:0451450523", "urn:isbn:0451450523"),
        ("file:///data/{path}", "file:///data/{path}"),
        ("file:///données/é", "file:///données/é"),
    ],
)
def test_normal_form(uri: str, normal: str) -> None:
    assert normalise_uri(uri) == normal


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "/etc/passwd",  # no scheme
        "data/a.txt",
        "file:///data/x%2F..%2F..%2Fetc%2Fpasswd",  # encoded slash
        "file:///data/x%2f..%2fetc",
        "file:///data/..%5C..%5Cetc",  # encoded backslash
        "file:///data\\..\\etc\\passwd",  # raw backslash
        "file:///data/a%00.txt",  # encoded NUL
        "file:///data/a\x00.txt",
        "file:///data/a\n",
        "file:///data/%",  # bad escapes
        "file:///data/%zz",
        "file:///data/%2",
        "file:///data/%252e%252e/etc/passwd",  # double encoding
        "file:///data/%252F",
        "file:///data/%25%32%65%25%32%65/etc",  # double encoding made by decoding
        "urn:a/../b",  # dot segments in a path that is not absolute
        "mem:notes/./x",
        "file:///" + "a" * MAX_URI,
    ],
)
def test_refused(uri: str) -> None:
    assert normalise_uri(uri) is None


def test_remove_dot_segments_follows_rfc_3986() -> None:
    # RFC 3986 5.4.2's abnormal examples, reduced to their paths.
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"
    assert remove_dot_segments("/a/b/../../../g") == "/g"
    assert remove_dot_segments("/./g") == "/g"
    assert remove_dot_segments("/g.") == "/g."
    assert remove_dot_segments("/..g") == "/..g"
    assert remove_dot_segments("/a/b/.") == "/a/b/"


def globs(*patterns: str) -> UriGlobSet:
    return UriGlobSet.of(check_uri_glob(p) for p in patterns)


def test_double_star_crosses_slashes_single_star_does_not() -> None:
    deep, flat = globs("file:///data/**"), globs("file:///data/*")
    assert deep.matches("file:///data/a") and deep.matches("file:///data/a/b/c")
    assert flat.matches("file:///data/a") and not flat.matches("file:///data/a/b")
    assert deep.matches("file:///data/") and flat.matches("file:///data/")


def test_a_directory_glob_grants_no_sibling_and_not_the_directory_itself() -> None:
    g = globs("file:///data/**")
    for uri in ("file:///data-secret/x", "file:///data", "file:///datax/y", "file:///other/data/x"):
        assert not g.matches(normalise_uri(uri) or "")


def test_question_mark_and_brackets_are_literal() -> None:
    g = globs("file:///data/a?b=[1]")
    assert g.matches("file:///data/a?b=[1]")
    assert not g.matches("file:///data/axb=[1]")
    assert not g.matches("file:///data/a?b=1")


def test_globs_are_normalised_like_uris() -> None:
    assert check_uri_glob("FILE:///data/**") == "file:///data/**"
    assert check_uri_glob("https://Example.com/%7Euser/*") == "https://example.com/~user/*"
    assert check_uri_glob("**") == "**"


def test_every_uri_glob() -> None:
    assert globs("**").matches("anything:at/all")
    assert globs("*").matches("urn:isbn:1") and not globs("*").matches("file:///x")


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("", "empty URI glob"),
        ("/data/**", "needs a scheme"),
        ("data/**", "needs a scheme"),
        ("file:///data/../etc/**", "'.' or '..' segments"),
        ("file:///data/%2e%2e/**", "'.' or '..' segments"),
        ("file:///data/./x", "'.' or '..' segments"),
        ("file:///data%2F**", "not a URI policy can match"),
        ("file:///data\\**", "not a URI policy can match"),
        ("*\\x", "backslash"),
    ],
)
def test_bad_globs(glob: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_uri_glob(glob)


def test_dots_in_names_are_not_dot_segments() -> None:
    assert check_uri_glob("file:///data/.config/**") == "file:///data/.config/**"
    assert check_uri_glob("file:///data/a..b/*") == "file:///data/a..b/*"
    assert check_uri_glob("file:///data/x?y=../z") == "file:///data/x?y=../z"


PIECES = [
    "/",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2f",
    "%5c",
    "%25",
    "%252e",
    "%32",
    "e",
    "a",
    "A",
    "%41",
    "?",
    "#",
    "\\",
    "%",
    "~",
]


def random_uris(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    heads = ["file:///data/", "file:///data", "FILE:///data/", "file:///", "file://data/"]
    return [rng.choice(heads) + "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8))) for _ in range(count)]


def test_normal_form_is_idempotent() -> None:
    for uri in random_uris(5000):
        normal = normalise_uri(uri)
        assert normal is None or normalise_uri(normal) == normal, uri


def test_a_granted_uri_stays_under_the_directory_for_a_decoding_server() -> None:
    """What a server that percent-decodes once and resolves the path (like a filesystem) would open."""
    grant = globs("file:///data/**")
    granted = 0
    for uri in random_uris(20000):
        normal = normalise_uri(uri)
        if normal is None or not grant.matches(normal):
            continue
        granted += 1
        raw = re.split(r"[?#]", normal.removeprefix("file://"), maxsplit=1)[0]
        once = urllib.parse.unquote(raw)
        for path in (once, urllib.parse.unquote(once)):  # a server that (wrongly) decodes twice too
            assert "\\" not in path, uri
            resolved = posixpath.normpath(path)
            assert resolved == "/data" or resolved.startswith("/data/"), (uri, normal, resolved)
    assert granted > 1000  # the property was exercised
