"""An installed wheel works outside the repo: package data is found through the package, not the checkout.

The wheel is built from the tracked files, installed with no dependencies into a fresh virtualenv whose
only other path is this environment's site-packages (for torch, llama.cpp and the rest; its editable
`coach` is not on it), and run from an empty folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import REPO


def _tracked_copy(src: Path) -> Path:
    """The tracked files as they are in the working tree (a file deleted but not yet committed is skipped)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((REPO / name).read_bytes())
    return src


def _venv_with(env_dir: Path, *pip_args: str) -> Path:
    """A fresh virtualenv whose only other path is this environment's site-packages (for torch, llama.cpp and
    the rest; its .pth files, such as the editable coach's, are not run), then `pip install --no-deps
    pip_args` into it. Returns its python."""
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], *(p for p in sys.path if p.endswith("site-packages"))])
    (site / "deps.pth").write_text("".join(f"{p}\n" for p in deps))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    *pip_args], check=True, capture_output=True)
    return py


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src = _tracked_copy(root / "src")
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(src)], check=True, capture_output=True)
    _venv_with(root / "venv", str(next(dist.glob("coach-*.whl"))))
    return root / "venv"


def _run(env_dir: Path, args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([str(env_dir / "bin" / "coach"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1200, **kw)  # type: ignore[call-overload]


@pytest.mark.timeout(2400)  # a wheel build, a fresh venv and four commands: long on a busy machine
def test_the_wheel_carries_its_data_and_runs_outside_the_repo(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import coach, app"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert "No module named 'app'" in where.stderr  # the package installs no top-level script module
    found = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import coach.config as c; print(c.__file__); print(sorted(p.name for p in "
                            "c.RUBRICS_DIR.glob('*.yaml')))"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(installed) in found.splitlines()[0] and "pmm_final_panel.yaml" in found

    ev = _run(installed, ["grader-eval"], tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert "rho" in ev.stdout and "(176 labelled answers" in ev.stdout, ev.stdout

    models = _run(installed, ["models", "list"], tmp_path)
    assert models.returncode == 0 and "mistral-7b-instruct-v0.3:Q4_K_M" in models.stdout, models.stderr

    voices = _run(installed, ["voice", "list"], tmp_path)  # the voice catalog ships in the wheel too
    assert voices.returncode == 0 and "whisper-base.en" in voices.stdout, voices.stderr


def test_the_package_list_is_the_tree():
    """pyproject.toml lists every package (it maps the top-level data folders in, so it cannot search for
    them): a new sub-package missing from the list would be missing from the wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "coach").rglob("__init__.py")}
    mapped = {"coach.data.prompts", "coach.data.rubrics", "coach.data.models"}
    assert listed == tree | mapped, (listed ^ (tree | mapped))
    for folder in ("prompts", "rubrics", "models"):  # the human-edited data: at the top, and nowhere else
        assert (REPO / folder / "__init__.py").exists() and not (REPO / "coach" / "data" / folder).exists()


@pytest.mark.timeout(2400)
def test_an_editable_install_reads_the_top_level_data_and_rehearses(tmp_path: Path) -> None:
    """`pip install -e` into a fresh virtualenv (dependencies from this one): the data is the checkout's own
    top-level folders, and a rehearse turn runs from another folder."""
    src = _tracked_copy(tmp_path / "src")
    env_dir = tmp_path / "venv"
    py = _venv_with(env_dir, "--no-build-isolation", "-e", str(src))
    away = tmp_path / "elsewhere"
    away.mkdir()
    code = ("import coach.config as c; print(c.PROMPTS_DIR); print(c.RUBRICS_DIR); print(c.catalog_path()); "
            "import coach.interview.prompts as p; print(sorted(p.load_personas()))")
    found = subprocess.run([str(py), "-c", code],
                           cwd=away, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[:3] == [str(src / "prompts"), str(src / "rubrics"), str(src / "models" / "catalog.yaml")], lines
    assert lines[3] == "['gtm', 'pm', 'researcher']"
    answer = ("We shipped the smaller size first because our download data showed most pulls were the smallest "
              "file, and we told researchers exactly what the benchmark numbers meant.\n\n")
    r = _run(env_dir, ["--ctx", "2048", "rehearse", "--scenario", "pm_loop"], away, input=answer)
    assert r.returncode == 130, r.stderr
    assert "Resume with: coach sessions resume" in r.stderr


def test_one_rehearse_turn_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    answer = ("We shipped the smaller size first because our download data showed most pulls were the smallest "
              "file, and we told researchers exactly what the benchmark numbers meant.\n\n")
    r = _run(installed, ["--ctx", "2048", "rehearse", "--scenario", "pm_loop"], tmp_path, input=answer)
    assert r.returncode == 130, r.stderr  # the input ends after one answer: saved, resumable
    assert "Resume with: coach sessions resume" in r.stderr
    listed = _run(installed, ["sessions", "list"], tmp_path)
    assert "pm_loop" in listed.stdout and " 1 " in listed.stdout, listed.stdout
