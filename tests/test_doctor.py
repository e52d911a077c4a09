"""`coach doctor`: the real report on this machine, and the GPU parts from a faked nvidia-smi."""

from __future__ import annotations

import subprocess

from coach.cli import main
from coach.models.doctor import Gpu, nvidia_gpus, report

GiB = 2**30
SMI = "NVIDIA H100 80GB HBM3, 81559, 80500\nNVIDIA L4, 23034, 1200\n"


def fake_smi(out: str, rc: int = 0):
    def run(cmd, **kw):
        if rc:
            raise subprocess.CalledProcessError(rc, cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")
    return run


def test_doctor_on_this_machine_names_the_build_ram_disk_bandwidth_and_every_catalog_model(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("llama.cpp: ") and "RAM: " in out and "disk: " in out and "GB/s" in out
    assert "mistral-7b-instruct-v0.3:Q4_K_M" in out and "smollm2-135m-instruct:Q4_1" in out
    row = next(x for x in out.splitlines() if x.startswith("smollm2-135m-instruct:Q4_1"))
    assert row.split()[-3] == "CPU" and float(row.split()[-2]) > 1  # the embedded model runs anywhere
    assert row.split()[-1] == "Apache-2.0" and "Recommended here: " in out


def test_nvidia_smi_output_is_parsed_and_a_failure_means_no_gpu():
    gpus = nvidia_gpus(fake_smi(SMI))
    assert gpus == [Gpu("NVIDIA H100 80GB HBM3", 81559 * 2**20, 80500 * 2**20),
                    Gpu("NVIDIA L4", 23034 * 2**20, 1200 * 2**20)]
    assert nvidia_gpus(fake_smi("", rc=9)) == [] and nvidia_gpus(fake_smi("garbage line\n")) == []


def test_a_gpu_with_a_cpu_only_build_gets_the_one_line_fix(settings):
    text = report(settings, gpus=nvidia_gpus(fake_smi(SMI)), offload=False, bandwidth=40.0)
    assert "GPU 0: NVIDIA H100 80GB HBM3, 78.6 GiB free" in text
    assert "fix: an NVIDIA GPU is here but llama.cpp was built for the CPU" in text
    text = report(settings, gpus=nvidia_gpus(fake_smi(SMI)), offload=True, bandwidth=40.0)
    assert "fix:" not in text
    row = next(x for x in text.splitlines() if x.startswith("mistral-small-24b-instruct-2501:Q4_K_M"))
    assert " GPU " in row  # 14 GB of weights and its KV fit the H100's free VRAM


def test_layer_sizes_come_from_the_gguf_tensor_table(embedded):
    from coach.models.gguf import read_header

    info = read_header(embedded.path)
    assert sorted(info.layer_bytes) == list(range(info.n_layer))
    # the rest is the token embeddings (49,152 x 576 here, a third of this small model) and the output norm
    assert 0.5 * info.size_bytes < sum(info.layer_bytes.values()) < info.size_bytes
    assert len(set(info.layer_bytes.values())) == 1
