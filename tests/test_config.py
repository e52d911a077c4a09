"""Settings: one set of fields feeds the environment, the CLI flags (with their help) and the validation."""

from __future__ import annotations

from dataclasses import fields

import pytest

from coach.cli import build_parser
from coach.config import Settings, overrides
from coach.errors import ConfigError


def _settings(argv: list[str]) -> Settings:
    return Settings.from_env(**overrides(build_parser().parse_args(argv)))


def test_every_settings_flag_is_generated_with_its_help() -> None:
    top = build_parser().format_help()
    for f in fields(Settings):
        flag = f.metadata["flag"]
        if flag and f.metadata["scope"] == "global":
            assert flag in top and f"COACH_{f.name.upper()}" in top.replace("\n", " ").replace("  ", "")
    assert "--port" not in top  # only the ui command binds a port
    s = _settings(["--ctx", "1024", "--threads", "1", "--seed", "3", "--grader-threads", "1", "ui", "--port", "8123"])
    assert (s.n_ctx, s.n_threads, s.seed, s.grader_threads, s.port) == (1024, 1, 3, 1, 8123)


def test_flags_win_over_the_environment_and_auto_is_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_N_GPU_LAYERS", "10")
    monkeypatch.setenv("COACH_N_CTX", "2048")
    assert _settings(["models", "list"]).n_gpu_layers == 10
    assert _settings(["--gpu-layers", "auto", "models", "list"]).n_gpu_layers is None
    assert _settings(["--gpu-layers", "-1", "--ctx", "4096", "models", "list"]).n_ctx == 4096
    monkeypatch.setenv("COACH_N_GPU_LAYERS", "auto")
    assert Settings.from_env().n_gpu_layers is None


def test_out_of_range_values_name_their_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"--grader-threads 0 is out of range.*COACH_GRADER_THREADS"):
        _settings(["--grader-threads", "0", "models", "list"])
    monkeypatch.setenv("COACH_GRADER_THREADS", "x")
    with pytest.raises(ConfigError, match="COACH_GRADER_THREADS='x' is not an integer"):
        Settings.from_env()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--gpu-layers", "many", "models", "list"])
