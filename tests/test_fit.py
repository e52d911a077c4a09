"""Where a model fits: one rule (coach/fit.py) for the engine's check, --gpu-layers auto and coach doctor."""

from __future__ import annotations

import pytest

from coach.fit import BUFFERS, Footprint, check_fits, gpu_layers_that_fit, place

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
    from coach.gguf import read_header

    info = read_header(embedded.path)
    whole = info.size_bytes + 2048 * 4 * info.kv_bytes_per_token()
    monkeypatch.setattr("coach.fit.available_ram", lambda: 300 * 2**20)  # less than weights + KV + buffers
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
