"""Argument values the way people mention them: a value for the call and the words for the request.

Each generator returns a `Said`: the exact argument value and how a person would put it in a sentence
(a city for a time zone, "the last five commits" for 5, a path inside prose, a quoted message). The
words never name the parameter: the request carries the value in its context, as people write.
Deterministic for a `random.Random`. Never reads files or the network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Said:
    value: Any
    """The argument value the call must carry."""
    words: str
    """How the request mentions it."""


_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]

ZONES = {  # IANA zone -> what people call it
    "Europe/Lisbon": ["Lisbon", "Portugal"],
    "America/Mexico_City": ["Mexico City"],
    "Africa/Cairo": ["Cairo", "Egypt"],
    "Asia/Jakarta": ["Jakarta"],
    "Europe/Istanbul": ["Istanbul", "Turkey"],
    "Asia/Hong_Kong": ["Hong Kong"],
    "America/Vancouver": ["Vancouver"],
    "America/Denver": ["Denver"],
    "Pacific/Honolulu": ["Honolulu", "Hawaii"],
    "Atlantic/Reykjavik": ["Reykjavik", "Iceland"],
    "America/Argentina/Buenos_Aires": ["Buenos Aires"],
    "Africa/Johannesburg": ["Johannesburg", "South Africa"],
    "Asia/Bangkok": ["Bangkok"],
    "Europe/Warsaw": ["Warsaw", "Poland"],
    "Europe/Dublin": ["Dublin", "Ireland"],
    "Europe/Zurich": ["Zurich"],
    "Asia/Shanghai": ["Shanghai", "Beijing"],
    "UTC": ["UTC"],
    "Asia/Tokyo": ["Tokyo", "Japan"],
    "Europe/Paris": ["Paris", "France"],
    "America/New_York": ["New York", "NYC"],
    "Europe/London": ["London", "the UK"],
    "Australia/Sydney": ["Sydney"],
    "Asia/Kolkata": ["Mumbai", "India"],
    "America/Chicago": ["Chicago"],
    "Europe/Berlin": ["Berlin", "Germany"],
    "Africa/Nairobi": ["Nairobi", "Kenya"],
    "America/Sao_Paulo": ["São Paulo"],
    "Asia/Singapore": ["Singapore"],
    "Pacific/Auckland": ["Auckland", "New Zealand"],
    "America/Los_Angeles": ["Los Angeles", "LA", "San Francisco"],
    "Asia/Dubai": ["Dubai"],
    "Europe/Madrid": ["Madrid", "Spain"],
    "America/Toronto": ["Toronto"],
    "Asia/Seoul": ["Seoul"],
    "Europe/Oslo": ["Oslo", "Norway"],
}
REPOS = [
    "/home/dana/src/billing-api",
    "/srv/git/website",
    "/work/warden",
    "/Users/priya/code/mobile-app",
    "/opt/projects/inventory",
    "/home/omar/dotfiles",
    "/var/lib/builds/checkout-service",
]
REPO_PROSE = ["the repo at {p}", "{p}", "my checkout in {p}", "the project in {p}", "the repository under {p}"]
FILES = [
    "src/app.py",
    "README.md",
    "docs/setup.md",
    "tests/test_auth.py",
    "package.json",
    "Makefile",
    "src/components/Header.tsx",
    "config/settings.yaml",
    "CHANGELOG.md",
    "scripts/deploy.sh",
]
DIRS = [
    "/home/dana/notes",
    "/srv/data/exports",
    "/tmp/uploads",
    "/home/omar/Documents/invoices",
    "/var/www/site/assets",
    "/projects/thesis/chapters",
    "/home/li/photos/2025",
]
DOCS = ["todo.md", "report-q3.txt", "meeting-notes.md", "budget.csv", "draft.txt", "server.log", "ideas.md"]
SHAS = ["a1b2c3d", "9f8e7d6", "4c5d6e7f", "e0f1a2b", "77ab19c", "3d2c1b0a"]
BRANCHES = ["main", "develop", "feature/login-form", "fix/null-session", "release/2.4", "experiment/cache"]
NEW_BRANCHES = ["feature/dark-mode", "fix/timeout-retry", "chore/bump-deps", "spike/graphql", "docs/api-guide"]
COMMIT_MESSAGES = [
    "Fix login redirect loop",
    "Add retry to the upload client",
    "Update dependencies",
    "Remove unused feature flags",
    "Document the deploy steps",
    "Handle empty carts at checkout",
]
SINCE = ["yesterday", "2 weeks ago", "3 days ago", "2025-01-15", "last monday", "2024-11-01T09:00:00"]
PEOPLE = ["Dana Smith", "Li Wei", "Priya Nair", "Omar Haddad", "Jonas Berg", "Ana Lima", "Kenji Sato"]
ORGS = ["Acme Corp", "Northwind", "the Oslo office", "Blue Harbor Labs", "Project Atlas"]
FACTS = [
    "prefers email over calls",
    "is allergic to peanuts",
    "moved to Lisbon in May",
    "leads the mobile team",
    "speaks Portuguese and German",
    "is on leave until March",
    "owns the billing service",
]
RELATIONS = ["manages", "reports_to", "knows", "mentors", "works_with"]
QUOTES = [
    "Running late, start without me",
    "The build is green again",
    "Can we move standup to 10?",
    "Deploy finished at 14:02 with no errors",
    "Remember to rotate the API keys",
    "Lunch is on me today",
]
GLOBS = [
    ("*.py", "Python files"),
    ("*.md", "Markdown files"),
    ("**/*.log", "log files anywhere below it"),
    ("*.csv", "CSV files"),
    ("**/test_*.py", "test files at any depth"),
    ("*.json", "JSON files"),
]
TOPICS = ["solid-state batteries", "the history of the printing press", "coral reef bleaching", "RISC-V adoption"]


def count(rng: random.Random, lo: int = 2, hi: int = 20) -> Said:
    """A small number, in digits or in words."""
    n = rng.randint(lo, hi)
    return Said(n, _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) and rng.random() < 0.5 else str(n))


def zone(rng: random.Random) -> Said:
    """An IANA zone; the words are a place people name, or the zone itself."""
    z = rng.choice(list(ZONES))
    return Said(z, rng.choice(ZONES[z]) if rng.random() < 0.6 else z)


_SPOKEN = {0: "o'clock", 15: "quarter past", 30: "half past", 45: "quarter to"}
_HOURS = ["midnight", *_NUMBER_WORDS[1:13], *_NUMBER_WORDS[1:12]]


def _spoken(h: int, m: int) -> str:
    """09:15 -> "quarter past nine in the morning"; 12:00 -> "noon"."""
    if (h, m) == (12, 0):
        return "noon"
    if (h, m) == (0, 0):
        return "midnight"
    part = "in the morning" if h < 12 else "in the afternoon" if h < 18 else "in the evening"
    if m == 45:
        return f"quarter to {_HOURS[(h + 1) % 24] if (h + 1) % 24 else 'midnight'} {part}"
    word = _HOURS[h] if h else "twelve"
    return f"{word} o'clock {part}" if m == 0 else f"{_SPOKEN[m]} {word} {part}"


def clock(rng: random.Random) -> Said:
    """HH:MM in 24-hour form; the words sometimes am/pm or spoken ("half past two in the afternoon")."""
    h, m = rng.randrange(24), rng.choice([0, 15, 30, 45, 5, 50])
    value = f"{h:02d}:{m:02d}"
    if m in _SPOKEN and 0 < h < 23 and rng.random() < 0.3:
        return Said(value, _spoken(h, m))
    if rng.random() < 0.4 and 0 < h < 24:
        hh = h % 12 or 12
        return Said(value, f"{hh}:{m:02d} {'pm' if h >= 12 else 'am'}" if m else f"{hh} {'pm' if h >= 12 else 'am'}")
    return Said(value, value)


def repo(rng: random.Random) -> Said:
    p = rng.choice(REPOS)
    return Said(p, rng.choice(REPO_PROSE).format(p=p))


def file_path(rng: random.Random) -> Said:
    p = f"{rng.choice(DIRS)}/{rng.choice(DOCS)}"
    return Said(p, p)


def pick(rng: random.Random, pool: list[str]) -> Said:
    v = rng.choice(pool)
    return Said(v, v)


def quoted(rng: random.Random, pool: list[str]) -> Said:
    """Text the call must carry verbatim; the words quote it."""
    v = rng.choice(pool)
    return Said(v, rng.choice(['"{v}"', "'{v}'", "“{v}”"]).format(v=v))


def several(rng: random.Random, pool: list[str], lo: int = 1, hi: int = 3) -> Said:
    """A list of distinct values; the words list them as people do ("a, b and c")."""
    values = rng.sample(pool, k=rng.randint(lo, min(hi, len(pool))))
    return Said(values, join(values))


def join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
