"""The pinned model catalog (catalog.yaml): installed as the package `coach.data.models` (pyproject.toml maps
this folder). Another catalog: --catalog FILE or COACH_CATALOG."""
