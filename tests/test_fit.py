"""Where a model fits: one rule (coach/models/fit.py) for the engine's check, --gpu-layers auto and coach doctor."""

from __future__ import annotations

import pytest

from coach.models.fit import BUFFERS, Footprint, check_fits, gpu_layers_that_fit, place

GiB = 2**30


@pytest.mark.parametrize(("weights", "kv", "ram", "vram", "offload", "where", "layers"), [
    (4 * GiB, 1 * GiB, 16 * GiB, 80 * GiB, True, "GPU", -1),        # all on the GPU, KV too
    (4 * GiB, 1 * GiB, 16 * GiB, 80 * GiB, False, "CPU", 0),       # a CPU-only build ignores the GPU
    (14 * GiB, 4 * GiB, 24 * GiB, 8 * GiB, True, "split", 13),     # as many layers as fit, the rest in RAM
    (14 * GiB, 4 * GiB, 8 * GiB, 2 * GiB, True, "does not fit", 0),
    (4 * GiB, 1 * GiB, 4 * GiB, None, True, "does not fit", 0),     # RAM counts the KV cache too
])
def test_placement_counts_vram_for_offloaded_layers_and_ram_for_the_rest(weights, kv, ram, vram, offload, where,
                                                                         layers):
    fp = Footprint.estimate(weights, kv, 32)
    got = place(fp, ram, vram, offload)
    assert (got.where, got.gpu_layers) == (where, layers)
    if where == "split":  # 13 layers of 14/32 GiB weights and 4/32 GiB KV each fit in 8 GiB less buffers
        assert fp.split(13)[0] <= 8 * GiB < fp.split(14)[0]
        assert fp.split(13)[1] == weights + kv - 13 * (weights + kv) // 32 + BUFFERS


def test_the_memory_check_counts_offloaded_layers_in_vram_not_ram(embedded, monkeypatch):
    """A model larger than free RAM is fine when every layer goes to the GPU; VRAM that is too small is
    refused with the VRAM figure; auto picks the most whole layers that fit."""
    from coach.errors import InsufficientMemory
    from coach.models.gguf import read_header

    info = read_header(embedded.path)
    whole = info.size_bytes + 2048 * 4 * info.kv_bytes_per_token()
    monkeypatch.setattr("coach.models.fit.available_ram", lambda: 300 * 2**20)  # less than weights + KV + buffers
    with pytest.raises(InsufficientMemory, match="of RAM"):
        check_fits(info, 2048, 4, 0, None)  # all on the CPU: refused
    check_fits(info, 2048, 4, -1, 8 * GiB)  # all on the GPU: RAM holds only buffers
    with pytest.raises(InsufficientMemory, match="of VRAM"):
        check_fits(info, 2048, 4, -1, 100 * 2**20)
    assert gpu_layers_that_fit(info, 2048, 4, 8 * GiB) == -1
    kv_layer = 2048 * 4 * info.kv_bytes_per_token() // info.n_layer
    per_layer = info.layer_bytes[0] + kv_layer  # this model's layers are all the same size
    assert gpu_layers_that_fit(info, 2048, 4, 256 * 2**20 + whole // 2) == (whole // 2) // per_layer
    assert gpu_layers_that_fit(info, 2048, 4, 200 * 2**20) == 0


@pytest.mark.parametrize(("total_gb", "best"), [
    (8, "ministral-3-3b-instruct-2512"), (16, "ministral-3-8b-instruct-2512"),
    (24, "ministral-3-14b-instruct-2512"), (32, "mistral-small-3.2-24b-instruct-2506"), (4, None),
])
def test_the_recommendation_is_the_best_current_mistral_with_room_to_spare(total_gb, best):
    from coach.models.catalog import recommend

    total = total_gb * 10**9
    rec = recommend(total, int(total * 0.8))  # a machine with a fifth of its RAM in use
    assert (rec[0].name if rec else None) == best
    if rec:
        assert not rec[0].older and rec[2] <= 0.55 * total


@pytest.mark.parametrize(("total_gb", "bandwidth", "best"), [
    (16, 100.0, "ministral-3-8b-instruct-2512"),  # a laptop with fast memory: the 8B writes ~10 tokens/s
    (24, 17.0, "ministral-3-3b-instruct-2512"),  # this 2-core box: nothing reaches the floor, the fastest wins
    (32, 50.0, "ministral-3-14b-instruct-2512"),  # the 24B fits but would write ~4 tokens/s
    (32, 400.0, "mistral-small-3.2-24b-instruct-2506"),
])
def test_on_the_cpu_the_recommendation_weighs_speed(total_gb, bandwidth, best):
    """The largest current Mistral whose estimated speed reaches the floor; else the fastest that fits."""
    from coach.models.catalog import recommend
    from coach.models.fit import SPEED_FLOOR, cpu_tokens_per_s

    total = total_gb * 10**9
    rec = recommend(total, int(total * 0.8), bandwidth_gbps=bandwidth)
    assert rec is not None and rec[0].name == best
    fast = cpu_tokens_per_s(rec[0].size(rec[1]), bandwidth) >= SPEED_FLOOR
    assert fast or bandwidth == 17.0


@pytest.mark.parametrize("free_gb", [3, 6, 9, 13, 20])
def test_the_models_table_and_doctor_agree_for_every_catalog_entry(settings, monkeypatch, free_gb):
    """One rule: for every catalog file, `coach models list` / the Models table say it fits exactly when
    `coach doctor` places it (CPU here), at several amounts of free RAM."""
    import psutil

    from coach.models.catalog import list_models, load_catalog
    from coach.models.doctor import report

    free = free_gb * 10**9
    vm = psutil.virtual_memory()
    monkeypatch.setattr("coach.models.fit.available_ram", lambda: free)
    monkeypatch.setattr("coach.models.catalog.available_ram", lambda: free)
    monkeypatch.setattr("coach.models.doctor.psutil.virtual_memory", lambda: vm._replace(available=free))
    text = report(settings, gpus=[], offload=False, bandwidth=40.0)
    doctor = {line.split()[0]: "does not fit" not in line for line in text.splitlines()
              if ":" in line.split(" ")[0] and line.split()[0].count(":") == 1 and "GB/s" not in line}
    table = {r.name: r.fits for r in list_models(settings)}
    names = [f"{e.name}:{q}" for e in load_catalog().models for q in e.files]
    assert set(names) <= set(doctor) and all(doctor[n] == table[n] for n in names), \
        [n for n in names if doctor.get(n) != table[n]]
    assert any(table.values())


def test_doctor_says_nemo_fits_in_13_gb_free(settings, monkeypatch):
    """A session's KV cells (4 x 3,072, not 4 x 8,192) put Nemo 12B Q4_K_M (7.5 GB) in 13 GB free."""
    import psutil

    from coach.models.doctor import report

    vm = psutil.virtual_memory()
    monkeypatch.setattr("coach.models.doctor.psutil.virtual_memory", lambda: vm._replace(available=13 * 10**9,
                                                                                   total=24 * 10**9))
    row = next(x for x in report(settings, gpus=[], offload=False, bandwidth=40.0).splitlines()
               if x.startswith("mistral-nemo-instruct-2407:Q4_K_M"))
    assert " CPU " in row


def test_kv_cells_are_what_a_session_needs():
    from coach.models.fit import SESSION_CELLS, session_cells

    assert session_cells(8192, 32768) == SESSION_CELLS == 3072 and session_cells(2048, 32768) == 2048
    assert session_cells(8192, 1024) == 1024
