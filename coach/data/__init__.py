"""Data the coach ships: the voice catalog, the labelled sets, the benchmark text; and, mapped in from the
repository's top-level folders, `prompts/`, `rubrics/` and `models/catalog.yaml` (see pyproject.toml)."""
