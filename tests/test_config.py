"""Settings: one set of fields feeds the environment, the CLI flags (with their help) and the validation."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

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


def test_global_flags_work_before_or_after_the_command() -> None:
    """`coach rehearse --model X` is `coach --model X rehearse`; after the command, every command takes them."""
    from coach.cli import commands

    assert _settings(["rehearse", "--model", "x.gguf", "--seed", "7"]).model == "x.gguf"
    assert _settings(["--model", "y.gguf", "rehearse"]).model == "y.gguf"
    assert _settings(["--model", "y.gguf", "rehearse", "--model", "z.gguf"]).model == "z.gguf"
    assert _settings(["--seed", "5", "rehearse", "--ctx", "2048"]).seed == 5  # not reset by the command's parser
    assert _settings(["sessions", "resume", "abc", "--model", "z.gguf"]).model == "z.gguf"
    for name, parser in commands(build_parser()).items():
        assert "--model" in parser._option_string_actions, name


def test_every_variable_is_a_settings_field_and_in_the_help(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The catalogs, the llama-server binary and the server key are settings like the rest: read from their
    variables, set by a flag where one is safe, listed in `coach --help`, exported to the modules that
    read them at the edge."""
    import os

    top = build_parser().format_help()
    for f in fields(Settings):
        assert f"COACH_{f.name.upper()}" in top, f.name
    monkeypatch.setenv("COACH_BACKEND_KEY", "sekrit")
    monkeypatch.setenv("COACH_LLAMA_SERVER", "/opt/llama-server")
    s = _settings(["models", "list", "--catalog", str(tmp_path / "c.yaml")])
    assert (s.backend_key, s.llama_server, s.catalog) == ("sekrit", Path("/opt/llama-server"), tmp_path / "c.yaml")
    monkeypatch.setenv("COACH_CATALOG", "")  # recorded as it was (unset), so the export below is undone after
    monkeypatch.delenv("COACH_CATALOG")
    s.export()
    from coach.config import catalog_path

    assert catalog_path() == tmp_path / "c.yaml" and os.environ["COACH_CATALOG"] == str(tmp_path / "c.yaml")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["models", "list", "--backend-key", "x"])  # a secret is never a flag


def test_the_cli_reference_is_what_the_parser_says() -> None:
    """docs/cli.md's generated half equals every command's --help today (regenerate with
    `.venv/bin/python -m coach.cli.reference --write`)."""
    from coach.cli.reference import reference, written

    assert written() == reference(), "docs/cli.md is stale: run .venv/bin/python -m coach.cli.reference --write"


def test_the_kv_cache_setting_reaches_the_engine(embedded) -> None:
    """`--kv-cache q8_0` (or COACH_KV_CACHE) is the engine's KV type; anything else is refused before loading."""
    from coach.interview.loader import load_local

    s = _settings(["rehearse", "--kv-cache", "q8_0"])
    be = load_local(s, embedded, n_ctx=512)
    try:
        assert be.kv_type == "q8_0"
    finally:
        be.close()
    with pytest.raises(ConfigError, match="--kv-cache 'q4': use f16 or q8_0"):
        _settings(["--kv-cache", "q4", "models", "list"])
