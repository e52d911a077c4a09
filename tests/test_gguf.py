from pathlib import Path

import pytest

from coach.errors import InvalidModelFile, ModelNotFound
from coach.models.gguf import read_header
from tests.ggufgen import write_gguf


def test_embedded_header_is_read(embedded):
    info = read_header(embedded.path)
    assert info.architecture == "llama"
    assert info.quant == "Q4_1"
    assert info.n_ctx_train == 8192
    assert info.n_layer == 30
    assert info.chat_template and "<|im_start|>" in info.chat_template
    # 30 layers x 3 KV heads x (64 + 64) dims x 2 bytes
    assert info.kv_bytes_per_token() == 30 * 3 * 128 * 2
    assert info.estimate_ram(8192) > info.size_bytes


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda p: p, ModelNotFound, "no such file"),
        (lambda p: p.write_text("hello, I am not a model") or p, InvalidModelFile, "not a GGUF"),
        (lambda p: p.write_bytes(b"GGUF\x03\x00") or p, InvalidModelFile, "truncated"),
        (lambda p: p.write_bytes(b"GGUF" + (9).to_bytes(4, "little") + bytes(16)) or p, InvalidModelFile, "version 9"),
    ],
)
def test_bad_files_are_refused_with_the_fix(tmp_path: Path, make, error, words):
    p = tmp_path / "m.gguf"
    make(p)
    with pytest.raises(error, match=words):
        read_header(p)


def test_truncated_tensor_data_is_caught(tmp_path: Path, embedded):
    cut = tmp_path / "cut.gguf"
    data = embedded.path.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(InvalidModelFile, match="tensor data missing"):
        read_header(cut)


def test_small_generated_file_round_trips(tmp_path: Path):
    info = read_header(write_gguf(tmp_path / "t.gguf", tensor_bytes=8192))
    assert info.tensor_count == 1 and info.name == "tiny test model"
