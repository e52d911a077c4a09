"""Personas and scenarios, as YAML: installed as the package `coach.data.prompts` (pyproject.toml maps this
folder), so a checkout and an installed wheel read the same files. Your own go beside them or in
$COACH_HOME/prompts/ (same layout)."""
