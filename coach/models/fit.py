"""Where a model fits: RAM, VRAM, or split between them. One rule (`fit`) for the engine's check before it
loads a file, for `--gpu-layers auto`, for `coach models list`, the Models tab and `coach doctor`'s table.

A footprint is the weights (per layer where the GGUF's tensor table says so) plus every resident
speaker's KV cache. Offloaded layers take their own tensors and their share of the KV cache to VRAM;
the rest stays in RAM; each side also needs its compute buffers.

The KV cache is sized to what a session needs, not to the context limit: each of the SLOTS speakers
starts with SESSION_CELLS cells (a full-length panel's thread is under 2,800 tokens a speaker at turn
20) and the engine grows a speaker's cells when a longer thread needs them, up to --ctx.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from coach.errors import CoachError, InsufficientMemory
from coach.models.gguf import GGUFInfo, read_header

BUFFERS = 256 * 2**20  # compute buffers on each side (and the CUDA context on the GPU's)
SLOTS = 4  # resident speakers: three panelists and the committee
SESSION_CELLS = 3072  # KV cells a speaker starts with: a 20-turn panel thread (< 2,800 tokens) and its reply
ROOM = 0.55  # "fits with room to spare": at most this share of the machine's RAM (the rest: OS, browser, grader)
# Decoding on the CPU reads every weight once a token, so its speed is about this multiple of the measured copy
# bandwidth (bytes read plus written) over the bytes of weights. Measured on a 2-core machine at 17.1 GB/s:
# Ministral 3 3B Q4_K_M 9.6 tokens/s (1.2 x), 8B Q4_K_M 5.3 tokens/s (1.6 x); the lower is kept.
SPEED_SHARE = 1.2
# Below this a panelist's first sentence (about 9 tokens) takes over 2 s to write after its first token: a
# smaller model that reaches it is recommended over a larger one that does not.
SPEED_FLOOR = 5.0


def cpu_tokens_per_s(weight_bytes: float, bandwidth_gbps: float) -> float:
    """Estimated generation speed on the CPU for a file of `weight_bytes` (an estimate, not a measurement)."""
    return SPEED_SHARE * bandwidth_gbps * 1e9 / max(1.0, weight_bytes)


def session_cells(n_ctx: int, n_ctx_train: int) -> int:
    """The cells each speaker starts with: a session's need, never more than --ctx or the trained context."""
    return max(1, min(n_ctx, n_ctx_train, SESSION_CELLS))


def available_ram() -> int:
    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class Footprint:
    weights: int  # bytes of the whole file's tensors
    kv: int  # bytes of every slot's KV cache at the context in use
    layers: tuple[int, ...]  # bytes of each repeating layer's tensors, first to last

    @classmethod
    def of(cls, info: GGUFInfo, n_ctx: int, slots: int = 1) -> Footprint:
        n_layer = max(1, info.n_layer)
        kv = min(n_ctx, info.n_ctx_train) * slots * info.kv_bytes_per_token()
        return cls(info.size_bytes, kv, tuple(info.layer_bytes.get(i, info.size_bytes // n_layer)
                                              for i in range(n_layer)))

    @classmethod
    def estimate(cls, size: int, kv: int, n_layer: int) -> Footprint:
        """Without the file (a catalog entry not yet pulled): layers of equal size."""
        n_layer = max(1, n_layer)
        return cls(size, kv, (size // n_layer,) * n_layer)

    @property
    def ram_only(self) -> int:
        return self.weights + self.kv + BUFFERS

    def split(self, gpu_layers: int) -> tuple[int, int]:
        """(VRAM, RAM) bytes with `gpu_layers` offloaded (-1: all). llama.cpp offloads the last layers
        first; everything that is not a repeating layer (embeddings, output) goes with "all"."""
        n = len(self.layers)
        if gpu_layers == 0:
            return 0, self.ram_only
        if gpu_layers < 0 or gpu_layers >= n:
            return self.weights + self.kv + BUFFERS, BUFFERS
        on_gpu = sum(self.layers[n - gpu_layers:]) + self.kv * gpu_layers // n
        return on_gpu + BUFFERS, self.weights + self.kv - on_gpu + BUFFERS

    def layers_that_fit(self, free_vram: int) -> int:
        """-1 when everything fits in `free_vram`, else the most whole layers that do (0: none)."""
        if self.split(-1)[0] <= free_vram:
            return -1
        n = len(self.layers)
        best = 0
        for k in range(1, n):
            if self.split(k)[0] > free_vram:
                break
            best = k
        return best


@dataclass(frozen=True)
class Placement:
    where: str  # "GPU", "split", "CPU" or "does not fit"
    gpu_layers: int  # -1 all, 0 none, else that many
    share: float  # of the layers on the GPU


def fit(fp: Footprint, free_ram: int, free_vram: int | None, offload: bool,
        gpu_layers: int | None = None) -> Placement:
    """THE fit rule. With `gpu_layers` None: where `fp` runs best here (`place`). With a number (-1 all, 0
    none): whether that placement fits, each part counted where it lives; VRAM unknown (`free_vram` None
    with layers offloaded: Metal, Vulkan) checks RAM only."""
    if gpu_layers is None:
        return place(fp, free_ram, free_vram, offload)
    n = len(fp.layers)
    on_gpu, on_cpu = fp.split(gpu_layers)
    if gpu_layers and free_vram is not None and on_gpu > free_vram:
        return Placement("does not fit", gpu_layers, 0.0)
    if on_cpu > free_ram:
        return Placement("does not fit", gpu_layers, 0.0)
    if not gpu_layers:
        return Placement("CPU", 0, 0.0)
    return Placement("GPU" if gpu_layers < 0 or gpu_layers >= n else "split", gpu_layers,
                     1.0 if gpu_layers < 0 else min(1.0, gpu_layers / n))


def fits_cpu(fp: Footprint, free_ram: int) -> bool:
    """`fit` for the CPU (what `coach models list` and the Models table show)."""
    return fit(fp, free_ram, None, False, 0).where != "does not fit"


def has_room(need: int, total_ram: int, free_ram: int) -> bool:
    """Fits now, and leaves the machine room for everything else a candidate runs (see ROOM)."""
    return need <= free_ram and need <= ROOM * total_ram


def place(fp: Footprint, free_ram: int, free_vram: int | None, offload: bool) -> Placement:
    """Where `fp` runs best here: all on the GPU, else as many layers as fit with the rest in RAM, else
    the CPU, else nowhere. `free_vram` None: no GPU known."""
    n = len(fp.layers)
    if offload and free_vram:
        k = fp.layers_that_fit(free_vram)
        if k < 0:
            return Placement("GPU", -1, 1.0)
        if k > 0 and fp.split(k)[1] <= free_ram:
            return Placement("split", k, k / n)
    if fp.ram_only <= free_ram:
        return Placement("CPU", 0, 0.0)
    return Placement("does not fit", 0, 0.0)


def check_fits(info: GGUFInfo, n_ctx: int, slots: int, gpu_layers: int, free_vram: int | None) -> None:
    """Refuse before loading, counting each part where it lives. `gpu_layers` -1 means all; `free_vram`
    None means unknown (Metal, Vulkan: unified or unreported memory), and then only RAM is checked."""
    fp = Footprint.of(info, n_ctx, slots)
    free = available_ram()
    if fit(fp, free, free_vram, True, gpu_layers).where != "does not fit":
        return
    on_gpu, on_cpu = fp.split(gpu_layers)
    kv = f" with {slots} resident speakers" if slots > 1 else ""
    if gpu_layers and free_vram is not None and on_gpu > free_vram:
        raise InsufficientMemory(
            f"{info.path.name} needs about {on_gpu / 2**30:.1f} GiB of VRAM for {gpu_layers if gpu_layers > 0 else 'all'}"
            f" layers at context {n_ctx} but only {free_vram / 2**30:.1f} GiB is free; lower --gpu-layers "
            "(or leave it to auto), lower --ctx, or pick a smaller quant")
    if on_cpu > free:
        fix = ("pick a smaller quant, lower --ctx, or close other programs" if not gpu_layers
               else "offload more layers, pick a smaller quant, or lower --ctx")
        where = "of RAM" if not gpu_layers else "of RAM beside the GPU's share"
        raise InsufficientMemory(f"{info.path.name} needs about {on_cpu / 2**30:.1f} GiB {where} at context {n_ctx}{kv} "
                                 f"but only {free / 2**30:.1f} GiB is free; {fix}")


def gpu_layers_that_fit(info: GGUFInfo, n_ctx: int, slots: int, free_vram: int) -> int:
    return Footprint.of(info, n_ctx, slots).layers_that_fit(free_vram)


def ram_for(path: Path, n_ctx: int, slots: int = SLOTS) -> int:
    """RAM to run `path` on the CPU for a session: every speaker's starting cells (`session_cells`), as
    the engine allocates them (the file's size when its header cannot be read)."""
    try:
        info = read_header(path)
        return Footprint.of(info, session_cells(n_ctx, info.n_ctx_train), slots).ram_only
    except CoachError:
        return path.stat().st_size


def check_disk(directory: Path, needed: int) -> None:
    from coach.models.download import check_free

    directory.mkdir(parents=True, exist_ok=True)
    check_free(directory, needed)
