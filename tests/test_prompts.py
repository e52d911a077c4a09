"""Personas and scenarios: the five scenarios load and cross-check; a malformed file names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coach.errors import ConfigError
from coach.grading.rubrics import load_all
from coach.interview.prompts import PROMPTS_DIR, load_personas, load_scenarios, scenario_parts


@pytest.fixture(scope="module")
def world():
    personas, banks = load_personas(), load_all()
    return personas, banks, load_scenarios(personas=personas, banks=banks)


def test_all_five_scenarios_load_with_their_segments_and_tensions(world):
    _, _, scenarios = world
    assert set(scenarios) == {"pmm_final_panel", "pmm_deep_dive", "pmm_live_case", "pm_loop", "tpm_onsite"}
    assert all(s.tension_pairs and len({seg.panelist for seg in s.segments}) == 3 for s in scenarios.values())


def test_malformed_scenario_and_persona_name_file_and_field(tmp_path: Path, world):
    personas, banks, _ = world
    sc = yaml.safe_load((PROMPTS_DIR / "scenarios" / "pm_loop.yaml").read_text())
    sc["segments"][0]["questions"].append("no-such-question")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(sc))
    with pytest.raises(ConfigError, match=r"bad.yaml: field `segments.0.questions`: no question 'no-such-question'"):
        load_scenarios(tmp_path, personas=personas, banks=banks)
    pd = yaml.safe_load((PROMPTS_DIR / "personas" / "gtm.yaml").read_text())
    pd["vioce"] = pd.pop("voice")
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "p.yaml").write_text(yaml.safe_dump(pd))
    with pytest.raises(ConfigError, match=r"p.yaml: field `voice`: Field required"):
        load_personas(tmp_path / "personas")


def test_scenario_parts_names_the_scenarios_there_are():
    sc, bank, personas = scenario_parts("tpm_onsite")
    assert bank.bank == sc.rubric and {seg.panelist for seg in sc.segments} <= set(personas)
    with pytest.raises(ConfigError, match="unknown scenario 'nope'; choose one of: pm_loop, pmm_deep_dive"):
        scenario_parts("nope")
