"""Personas and scenarios: the five scenarios load and cross-check; a malformed file names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coach.errors import ConfigError
from coach.grading.rubrics import RUBRICS_DIR, load_all
from coach.interview.prompts import PROMPTS_DIR, load_personas, load_scenarios, scenario_parts


@pytest.fixture(scope="module")
def world():
    personas, banks = load_personas(), load_all()
    return personas, banks, load_scenarios(personas=personas, banks=banks)


def test_all_five_scenarios_load_with_their_segments_and_tensions(world):
    _, _, scenarios = world
    assert set(scenarios) == {"pmm_final_panel", "pmm_deep_dive", "pmm_live_case", "pm_loop", "tpm_onsite"}
    assert all(s.tension_pairs and len({seg.panelist for seg in s.segments}) == 3 for s in scenarios.values())


def test_your_own_persona_scenario_and_rubric_in_coach_home(_hermetic_home: Path):
    """A file in $COACH_HOME/prompts/ or $COACH_HOME/rubrics/ joins the shipped ones; one with a shipped file's
    name replaces it; a malformed one there fails naming it, like a shipped one."""
    persona = yaml.safe_load((PROMPTS_DIR / "personas" / "gtm.yaml").read_text())
    persona["name"] = "Dana Okafor"
    (_hermetic_home / "prompts" / "personas").mkdir(parents=True)
    (_hermetic_home / "prompts" / "personas" / "gtm.yaml").write_text(yaml.safe_dump(persona))
    bank = yaml.safe_load((RUBRICS_DIR / "pm_loop.yaml").read_text())
    bank["bank"] = "my_loop"
    (_hermetic_home / "rubrics").mkdir()
    (_hermetic_home / "rubrics" / "my_loop.yaml").write_text(yaml.safe_dump(bank))
    scenario = yaml.safe_load((PROMPTS_DIR / "scenarios" / "pm_loop.yaml").read_text())
    scenario.update(id="my_loop", rubric="my_loop")
    (_hermetic_home / "prompts" / "scenarios").mkdir()
    (_hermetic_home / "prompts" / "scenarios" / "my_loop.yaml").write_text(yaml.safe_dump(scenario))
    personas, banks = load_personas(), load_all()
    assert personas["gtm"].name == "Dana Okafor" and set(personas) == {"gtm", "pm", "researcher"}
    assert "my_loop" in banks and len(banks) == 6  # the five shipped banks and this one
    assert "my_loop" in load_scenarios(personas=personas, banks=banks)
    (_hermetic_home / "rubrics" / "broken.yaml").write_text("bank: [")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML"):
        load_all()


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
