"""The README's file map matches the tree: every module and benchmark script is listed, every listed path exists."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _file_map() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Files\n\n```\n", 1)[1].split("```", 1)[0]
    return [m.group(1) for line in block.splitlines() if (m := re.match(r"(\S+)\s", line + " ")) and "/" in m.group(1)
            or line.startswith(("app.py", "Makefile"))]


def test_every_module_is_in_the_file_map_and_every_entry_exists():
    listed = _file_map()
    for entry in listed:
        assert list(REPO.glob(entry.rstrip("/"))), f"README lists {entry}, which is not in the tree"
    modules = [p.relative_to(REPO).as_posix() for p in [*REPO.glob("coach/**/*.py"), *REPO.glob("bench/*.py")]
               if p.name != "__init__.py" or p.parent.name == "cli"]
    missing = [m for m in modules if m not in listed]
    assert not missing, f"not in the README's file map: {missing}"
