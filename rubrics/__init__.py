"""Question banks, one YAML per scenario: installed as the package `coach.data.rubrics` (pyproject.toml maps
this folder). Your own go beside them or in $COACH_HOME/rubrics/."""
