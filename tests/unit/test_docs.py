"""The docs say what the code is: the layout, the counts, the commands and the links.

Each check reads the Markdown as a newcomer would and compares it with the tree,
the Makefile, the CLI and the code's own lists, so a rename or a new module that
the docs do not follow fails here, naming what to fix.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from ordersaga.cli import build_parser
from ordersaga.ops.demo import SCENARIOS
from ordersaga.shell.groups import GROUPS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ordersaga"
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
DOCS = sorted([README, ARCHITECTURE, ROOT / "BENCHMARKS.md", *(ROOT / "docs").rglob("*.md")])
# The generated settings table is over a third of it; prose beyond this goes to docs/.
README_MAX_LINES = 340

NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ------------------------------------------------------------------ the layout


def layout_listing() -> list[str]:
    """The lines of the code block under ARCHITECTURE.md's ``## Layout``."""
    text = ARCHITECTURE.read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block, "ARCHITECTURE.md's Layout section has no ``` block listing the package"
    return block.group(1).splitlines()


def listed_layout() -> tuple[set[str], list[str]]:
    """The modules and packages the listing names (paths under the repo), and its bad lines.

    One entry a line: two spaces of indent per level under ``ordersaga/``, the name
    (``pkg/`` for a package, ``mod.py`` for a module), then its purpose.
    """
    listed: set[str] = set()
    problems: list[str] = []
    stack: list[str] = []
    for line in layout_listing():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        entry, _, purpose = line.strip().partition(" ")
        if indent % 2:
            problems.append(f"odd indent: {line!r}")
            continue
        depth = indent // 2
        if depth > len(stack):
            problems.append(f"indented under no package: {line!r}")
            continue
        del stack[depth:]
        if depth > 0 and not purpose.strip():
            problems.append(f"no purpose given: {line!r}")
        if entry.endswith("/"):
            stack.append(entry.rstrip("/"))
            listed.add("/".join(stack) + "/")
        else:
            listed.add("/".join([*stack, entry]))
    return listed, problems


def actual_layout() -> set[str]:
    """Every module (but ``__init__``) and package under ordersaga/, as the listing names them."""
    found: set[str] = {"ordersaga/"}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "__pycache__" in rel.parts:
            continue
        for i in range(1, len(rel.parts)):
            found.add("/".join(rel.parts[:i]) + "/")
        if path.name != "__init__.py":
            found.add("/".join(rel.parts))
    return found


def test_the_layout_lists_every_module_and_nothing_else() -> None:
    listed, problems = listed_layout()
    assert problems == [], problems
    actual = actual_layout()
    missing = sorted(actual - listed)
    extra = sorted(listed - actual)
    assert (missing, extra) == ([], []), (
        "ARCHITECTURE.md's Layout disagrees with the tree:\n"
        f"  missing (add a line each, with its purpose): {missing}\n"
        f"  listed but not in the tree (remove or rename): {extra}"
    )


# ------------------------------------------------------------------ the counts


def stated_counts(noun: str) -> list[tuple[str, int, str]]:
    """Every "<number> <noun>" in the docs and the Makefile: (file, number, the phrase).

    Not BENCHMARKS.md: it records runs as they were (some when there were six groups).
    """
    pattern = re.compile(rf"\b(\d+|{'|'.join(NUMBERS)}) {noun}\b", re.IGNORECASE)
    found = []
    for path in [*DOCS, ROOT / "Makefile"]:
        if path.name == "BENCHMARKS.md":
            continue
        for match in pattern.finditer(path.read_text()):
            word = match.group(1).lower()
            found.append((name(path), int(word) if word.isdigit() else NUMBERS[word], match[0]))
    return found


@pytest.mark.parametrize(
    ("noun", "actual", "in_readme"),
    [
        ("agent groups", len(GROUPS), True),
        ("groups", len(GROUPS), False),
        ("scenarios", len(SCENARIOS), True),
    ],
)
def test_counts_in_the_docs_match_the_code(noun: str, actual: int, in_readme: bool) -> None:
    stated = stated_counts(noun)
    if in_readme:
        assert any(path == "README.md" for path, _, _ in stated), f"README states no {noun} count"
    wrong = [(path, phrase) for path, number, phrase in stated if number != actual]
    assert wrong == [], f"the code has {actual} {noun}; these say otherwise: {wrong}"


# ----------------------------------------------------- commands, targets, links


def code_spans_and_lines(text: str) -> list[str]:
    """The text a reader would type: `inline code` and the lines of ``` blocks."""
    spans = re.findall(r"`([^`\n]+)`", text)
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return spans + [line for block in blocks for line in block.splitlines()]


def mentioned(program: str) -> list[tuple[str, str]]:
    """(file, word) for each ``<program> <word>`` the docs show as something to type."""
    pattern = re.compile(
        rf"(?:^|[\s;(&|$])(?:[A-Z_]+=\S*\s+)*(?:\.venv/bin/)?{program} ([a-z][\w-]*)"
    )
    return [
        (name(path), word)
        for path in DOCS
        for code in code_spans_and_lines(path.read_text())
        for word in pattern.findall(code)
    ]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, re.MULTILINE))


def cli_commands() -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_every_make_target_the_docs_mention_exists() -> None:
    targets = make_targets()
    named = mentioned("make")
    assert ("README.md", "run") in named and ("README.md", "test") in named
    assert [(path, t) for path, t in named if t not in targets] == []


def test_every_ordersaga_command_the_docs_mention_exists() -> None:
    commands = cli_commands()
    named = mentioned("ordersaga")
    assert ("README.md", "audit") in named
    assert [(path, c) for path, c in named if c not in commands] == []


def test_every_relative_link_points_to_a_file_that_exists() -> None:
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#", 1)[0]).exists():
                broken.append((name(path), target))
    assert broken == []


def test_every_file_the_docs_name_exists() -> None:
    """Paths in `code` (ordersaga/..., tests/..., deploy/...) and bare test file names."""
    test_files = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for path in DOCS:
        for code in code_spans_and_lines(path.read_text()):
            for named in re.findall(r"(?<![\w/.])((?:ordersaga|tests|deploy)/[\w./-]*\w)", code):
                if not (ROOT / named).exists():
                    missing.append((name(path), named))
            for named in re.findall(r"(?<![\w/])(test_\w+\.py)\b", code):
                if named not in test_files:
                    missing.append((name(path), named))
    assert missing == []


def test_the_readme_stays_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
