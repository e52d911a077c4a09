"""The docs match the tree: the file map in docs/development.md lists every module and benchmark script and
every listed path exists; the README stays a short front door; every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re

from tests.conftest import REPO

MAX_README_LINES = 250


def _file_map() -> list[str]:
    text = (REPO / "docs" / "development.md").read_text()
    block = text.split("## Files\n\n```\n", 1)[1].split("```", 1)[0]
    return [m.group(1) for line in block.splitlines() if (m := re.match(r"(\S+)\s", line + " ")) and "/" in m.group(1)
            or line.startswith(("app.py", "Makefile"))]


def test_every_module_is_in_the_file_map_and_every_entry_exists():
    listed = _file_map()
    for entry in listed:
        assert list(REPO.glob(entry.rstrip("/"))), f"docs/development.md lists {entry}, which is not in the tree"
    modules = [p.relative_to(REPO).as_posix() for p in [*REPO.glob("coach/**/*.py"), *REPO.glob("bench/*.py")]
               if p.name != "__init__.py" or p.parent.name == "cli"]
    missing = [m for m in modules if m not in listed]
    assert not missing, f"not in the file map of docs/development.md: {missing}"


_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _relative_links(text: str) -> list[str]:
    """Link targets outside code, without their #anchor; web links, mail links and bare anchors left out."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_the_readme_is_short_and_every_relative_link_resolves():
    readme = REPO / "README.md"
    lines = readme.read_text().count("\n")
    assert lines <= MAX_README_LINES, \
        f"README.md has {lines} lines; the manual belongs in docs/ (at most {MAX_README_LINES})"
    pages = [readme, *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 1, "no docs/*.md pages"
    broken = [f"{page.relative_to(REPO)} -> {target}" for page in pages for target in _relative_links(page.read_text())
              if not (page.parent / target).exists()]
    assert not broken, f"links to files that do not exist: {broken}"
