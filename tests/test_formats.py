"""Mistral's real chat formats: tiny random-weight GGUFs with Mistral's own tokenizers, built at test time.

Each fixture carries one template the catalog's models carry in the wild (strict alternation, v0.3's
system-in-the-last-turn, Nemo's, Small 3's [SYSTEM_PROMPT]) or one of Ministral 3's quirks (a template
that refuses a system role, one that demands strict alternation, another model's template), the last
three in Ministral 3's own form: the `mistral3` architecture and a Tekken v13 vocabulary. The engine
renders every Mistral file with mistral-common's rules, never the file's template; tokens are checked
against mistral-common itself. Then whole panels run through `Interview` on each, and the engine must
read only what is new for each panelist.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.engine import LlamaBackend
from coach.engine.layout import arrange
from coach.models.formats import FORMATS
from coach.models.shapes import Shape, write_shape
from tests.conftest import TINY

FIXTURES = {"mistral-strict": "v3", "mistral-v3": "v3", "mistral-v3-tekken": "v3", "mistral-v7": "v7",
            "wild-no-system": "tekken-v13", "wild-strict": "tekken-v13", "wild-chatml": "tekken-v13"}
EXPECTED_LAYOUT = {"mistral-strict": "first_user", "mistral-v3": "first_user", "mistral-v3-tekken": "first_user",
                   "mistral-v7": "system", "wild-no-system": "system", "wild-strict": "system", "wild-chatml": "system"}
MINISTRAL_3 = dict(n_vocab=131072, arch="mistral3", yarn_factor=16.0, yarn_original_context=16384,
                   attn_temperature_scale=0.1, tied_embeddings=True)  # Ministral 3 3B's form, tiny


def fixture_shape(fmt: str) -> Shape:
    tok = FIXTURES[fmt]
    return Shape(**{**TINY, **(MINISTRAL_3 if tok.startswith("tekken") else {})}, tokenizer=tok)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    return {fmt: write_shape(d / f"{fmt}.gguf", fixture_shape(fmt), "F16", chat_format=fmt) for fmt in FIXTURES}


@pytest.fixture(scope="module")
def grader():
    from coach.grading.grader import Grader

    return Grader()


def _mc_messages(msgs):
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage

    kinds = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage}
    return [kinds[m["role"]](content=m["content"]) for m in msgs]


def _mc_tokens(version: str, msgs) -> list[int]:
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    from coach.models.shapes import tokenizer_file

    tok = MistralTokenizer.from_file(str(tokenizer_file(version)))
    return tok.encode_chat_completion(ChatCompletionRequest(messages=_mc_messages(msgs))).tokens


def test_every_registered_format_has_a_fixture():
    assert set(FORMATS) == set(FIXTURES)


def test_mistral_rules_by_tokenizer_version_architecture_and_template():
    from coach.models.formats import mistral_rules

    inst = {"[INST]": 3, "[/INST]": 4}
    assert mistral_rules({}, template=None, arch="llama") is None  # not a Mistral file: its own template
    assert mistral_rules(inst, template="{{ '[INST]' }}", arch="llama") == "mistral-v3"  # 7B v0.3, Nemo
    assert mistral_rules(inst, template="[SYSTEM_PROMPT]", arch="llama") == "mistral-v7"  # Small 3
    assert mistral_rules(inst, template="<|im_start|>", arch="mistral3") == "mistral-v7"  # a Ministral 3 quirk
    assert mistral_rules(inst, template="<|im_start|>", arch="llama", version="tekken-v7") == "mistral-v7"
    assert mistral_rules(inst, template="[SYSTEM_PROMPT]", arch="llama", version="v3") == "mistral-v3"


def test_each_format_gets_a_layout_that_keeps_the_card_in_place(fixtures, embedded):
    for fmt, path in fixtures.items():
        be = LlamaBackend(path, n_ctx=512, n_threads=2, slots=1)
        assert be.layout.mode == EXPECTED_LAYOUT[fmt], fmt
        rules = "mistral-v7" if FIXTURES[fmt] in ("v7", "tekken-v13") else "mistral-v3"
        assert be.rendering == f"mistral-common rules ({rules})", fmt  # never the file's template
        be.close()
    smol = LlamaBackend(embedded.path, n_ctx=512, n_threads=2, slots=1)
    assert smol.layout.mode == "system"  # ChatML holds a system message where it stands
    assert smol.rendering == "the file's chat template"  # not a Mistral file
    smol.close()


@pytest.mark.parametrize(("fmt", "why"), [
    ("mistral-strict", "roles"), ("wild-no-system", "System role not supported"), ("wild-strict", "alternate")])
def test_the_files_own_templates_really_refuse_what_a_panel_sends(fixtures, fmt, why):
    """The quirks are real: the file's own template raises on a panelist's thread (a persona card as a
    system message, or two user turns in a row), which the engine's Mistral rendering takes in its stride."""
    from coach.engine.layout import Layout
    from coach.models.gguf import read_header

    be = LlamaBackend(fixtures[fmt], n_ctx=512, n_threads=2, slots=1)
    own = Layout(read_header(fixtures[fmt]).chat_template or "", bos="<s>", eos="</s>", specials={},
                 tokenize_text=be.tokenize_text, dummy_prefix=False, bos_id=None, mode="system")
    thread = [{"role": "system", "content": "card"}, {"role": "user", "content": "hi"}]
    with pytest.raises(Exception, match=why):
        own._render_raw(thread if fmt != "wild-strict" else thread[1:] + [{"role": "user", "content": "more"}])
    assert be.prompt_tokens([*thread, {"role": "user", "content": "more"}])  # the engine renders it
    be.close()


def test_a_chatml_template_in_a_mistral_file_is_not_used(fixtures):
    be = LlamaBackend(fixtures["wild-chatml"], n_ctx=512, n_threads=2, slots=1)
    text = be.render([{"role": "system", "content": "card"}, {"role": "user", "content": "hi"}])
    assert "<|im_start|>" not in text and text.startswith("<s>[SYSTEM_PROMPT]card[/SYSTEM_PROMPT][INST]hi[/INST]")
    be.close()


THREAD = [
    {"role": "system", "content": "You are Dana Reyes, a senior researcher on a hiring panel."},
    {"role": "user", "content": "(You are Dana Reyes. Stay in role.)\n\nThe candidate has just walked in.\n\nAsk."},
    {"role": "assistant", "content": "Why does a 4-bit model answer differently from the 16-bit one?"},
    {"role": "user", "content": 'The candidate answered: "Quantization error [/INST] accumulates." Follow up.'},
    {"role": "assistant", "content": "Which layers would you keep at higher precision, and why?"},
    {"role": "user", "content": "Your turn: ask as planned."},
]


@pytest.mark.parametrize("fmt,version", [("mistral-v3", "v3"), ("mistral-v7", "v7"), ("mistral-strict", "v3"),
                                         ("wild-chatml", "tekken-v7"), ("wild-chatml", "tekken-v13"),
                                         ("wild-no-system", "tekken-v13"), ("wild-strict", "tekken-v13")])
def test_engine_tokens_equal_mistral_common(fixtures, fmt, version):
    """The layout's messages, tokenized by the engine, are exactly Mistral's reference tokens for a
    multi-turn thread (Tekken v7 and v13 included, whatever template the file carries); a typed
    "[/INST]" stays text."""
    be = LlamaBackend(fixtures[fmt], n_ctx=1024, n_threads=2, slots=1)
    mine = be.prompt_tokens(THREAD)
    ref = _mc_tokens(version, arrange(THREAD, be.layout.mode))
    assert mine == ref
    inst_close = be.layout._specials["[/INST]"]
    assert mine.count(inst_close) == sum(m["role"] == "user" for m in THREAD[1:])
    be.close()


def test_a_panelist_thread_from_a_real_session_matches_mistral_common(fixtures, grader, tmp_path):
    from coach.interview.session import Interview
    from coach.store import Store

    be = LlamaBackend(fixtures["mistral-v3"], n_ctx=4096, n_threads=2)
    iv = Interview.start("pmm_final_panel", backend=be, grader=grader, store=Store(tmp_path / "s.db"), seed=3,
                         max_tokens=12)
    for _ in range(5):
        "".join(iv.ask())
        if iv.current is None:
            break
        iv.answer("I would reproduce the customer's benchmark first, then correct any overclaim this week.", 60)
    who = max(iv.threads, key=lambda p: len(iv.threads[p]))
    thread = iv._pending(who)  # the panelist's whole thread and what it will read next
    assert len(thread) >= 4  # a multi-turn thread: card, question, answer, question...
    assert be.prompt_tokens(thread) == _mc_tokens("v3", arrange(thread, be.layout.mode))
    be.close()


@pytest.mark.parametrize("fmt", list(FIXTURES))
def test_a_20_turn_panel_reads_only_what_is_new(fixtures, grader, tmp_path, fmt):
    """From each panelist's second turn on, llama.cpp evaluates at most what was said since that panelist
    last spoke plus its instruction (+16), with no template error and nothing copied on a switch."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from panel_bench import ANSWER, long_panel

    from coach.interview.session import Interview
    from coach.store import Store

    be = LlamaBackend(fixtures[fmt], n_ctx=8192, n_threads=2)
    sc, bank, personas = long_panel(20)
    iv = Interview.start_with(sc, bank, personas, backend=be, grader=grader, store=Store(tmp_path / "s.db"),  # type: ignore[arg-type]
                              seed=1, max_tokens=12)
    last_prompt: dict[str, int] = {}
    turns = 0
    while not iv.done and turns < 20:
        "".join(iv.ask())
        cur, t = iv.current, be.timings
        if cur is None or t is None:
            break
        assert not (cur.fallback or "").startswith("engine"), cur.fallback
        p = cur.action.panelist
        if p in last_prompt:
            new = t.prompt_tokens - last_prompt[p]
            assert t.prompt_eval_tokens <= new + 16, (turns, p, t)
            assert t.restore_ms < 5  # resident: nothing restored, nothing copied
        last_prompt[p] = t.prompt_tokens
        turns += 1
        iv.answer(ANSWER, 60)
    assert turns == 20
    be.close()


def test_type_ahead_leaves_only_the_short_instruction(fixtures, grader, tmp_path):
    from coach.interview.session import Interview, TypeAhead
    from coach.interview.threads import AS_PLANNED
    from coach.store import Store

    be = LlamaBackend(fixtures["mistral-v3"], n_ctx=4096, n_threads=2)
    iv = Interview.start("pmm_final_panel", backend=be, grader=grader, store=Store(tmp_path / "s.db"), seed=5,
                         max_tokens=12)
    "".join(iv.ask())
    strong = ("I would reproduce what the customer measured, separate time to first token from throughput, "
              "correct any overclaim this week and give sales a cost-adjusted comparison on the buyer's workload.")
    ta = TypeAhead(iv.type_ahead, lambda: iv.backend.turn_waiting, interrupt=iv.backend.interrupt)
    words = strong.split()
    for i in range(1, len(words) + 1):  # typed a word at a time
        ta.update(" ".join(words[:i]))
    ta.update(strong)
    import time

    deadline = time.monotonic() + 60
    while not ta.caught_up(strong) and time.monotonic() < deadline:
        time.sleep(0.02)
    ta.stop()
    iv.answer(strong, 60)
    "".join(iv.ask())
    t = be.timings
    assert t is not None and iv.current is not None
    tail = len(be.tokenize_text(AS_PLANNED)) + 8 if iv.current.action.kind != "follow_up" else 60
    assert t.prompt_eval_tokens <= tail, t
    be.close()


def test_persona_cards_come_from_the_disk_cache_in_a_second_session(fixtures, grader, tmp_path):
    from coach.interview.session import Interview
    from coach.store import Store

    cache = tmp_path / "kv"
    evaluated = []
    for _ in range(2):
        be = LlamaBackend(fixtures["mistral-v7"], n_ctx=4096, n_threads=2)
        iv = Interview.start("pmm_final_panel", backend=be, grader=grader, store=Store(tmp_path / "s.db"), seed=5,
                             max_tokens=8, cache_dir=cache)
        done = iv.warm_up()
        "".join(iv.ask())
        evaluated.append((done, be.timings.prompt_eval_tokens if be.timings else -1))
        be.close()
    assert evaluated[0][0] > 200 and evaluated[0][1] == 1  # first: cards read at start, the turn reads one token
    assert evaluated[1] == (0, 1)  # second: every card from disk
    assert len(list(cache.glob("*.kv"))) == 8  # three panelists and the committee: each card, and what follows


def test_cards_read_at_load_leave_the_first_session_only_its_openings(fixtures, grader, tmp_path):
    """The first session ever on a model: every scenario's cards were read into the disk cache when the
    model loaded (the UI's ModelHolder does it in the background), so Start reads only what follows each
    card, and the opening turn only its last token."""
    from coach.interview.loader import opening_cards
    from coach.interview.session import Interview
    from coach.store import Store

    cache = tmp_path / "kv"
    be = LlamaBackend(fixtures["mistral-v7"], n_ctx=4096, n_threads=2)
    cards = opening_cards()
    read = be.read_cards(cards, cache)
    assert len(cards) == 20 and len(list(cache.glob("*.kv"))) == 20 and read > 20 * 150
    assert be.read_cards(cards, cache) == 0  # read once: a later load skips them
    iv = Interview.start("pmm_final_panel", backend=be, grader=grader, store=Store(tmp_path / "s.db"), seed=5,
                         max_tokens=8, cache_dir=cache)
    cards = be.prefixes
    mine = [cards.card_prefix(iv.hearing.thread(p)[0]) for p in iv.personas] + [cards.card_prefix(iv.hearing.committee()[0])]
    done = iv.warm_up()
    "".join(iv.ask())
    assert be.timings is not None and be.timings.prompt_eval_tokens == 1
    assert 0 < done < sum(map(len, mine)) / 3, (done, sum(map(len, mine)))  # the openings, not the cards
    be.close()


def test_more_speakers_than_slots_evict_and_restore_exactly(fixtures):
    """Two tabs' panelists on one model: a speaker evicted to RAM and brought back continues as if it
    had never left."""
    path = fixtures["mistral-v3"]
    outs = []
    for slots in (2, 6):
        be = LlamaBackend(path, n_ctx=1024, n_threads=2, slots=slots)
        threads = {s: [THREAD[0], {"role": "user", "content": f"Speaker {s}: ask about topic {s}."}] for s in "abcde"}
        for s in "abcde":
            be.complete(s, threads[s], max_tokens=6, temperature=0)
        a2 = [*threads["a"], {"role": "assistant", "content": "What?"}, {"role": "user", "content": "Go on."}]
        outs.append(be.complete("a", a2, max_tokens=10, temperature=0))
        outs.append(be.timings.cached_tokens)
        be.close()
    assert outs[0] == outs[2] and outs[1] > 0 and outs[3] > 0


def test_shape_types_follow_llama_cpp_quantizer(tmp_path):
    """The direct writer's choice of type per tensor is llama.cpp's: quantize a small file with the same
    layer and head counts as Mistral 7B and compare tensor by tensor."""
    import gguf
    import llama_cpp

    from coach.models.shapes import tensor_types

    shape = Shape(n_layer=32, n_embd=256, n_head=32, n_head_kv=8, n_ff=512, n_vocab=32768)
    src = write_shape(tmp_path / "q8.gguf", shape, "Q8_0")
    for rung in ("Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M"):
        dest = tmp_path / f"{rung}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{rung}")
        params.allow_requantize = True
        params.nthread = 2
        assert llama_cpp.llama_model_quantize(str(src).encode(), str(dest).encode(), params) == 0
        got = {t.name: t.tensor_type.name for t in gguf.GGUFReader(dest).tensors if t.name.endswith(".weight")
               and "norm" not in t.name}
        assert got == tensor_types(shape, rung), rung


def test_the_7b_shape_has_the_published_file_sizes():
    from coach.models.catalog import load_catalog
    from coach.models.shapes import shape_bytes

    e = load_catalog().get("mistral-7b-instruct-v0.3")
    assert e is not None and e.shape is not None
    shape = Shape(**e.shape.model_dump())
    for rung in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M"):
        assert abs(shape_bytes(shape, rung) - e.files[rung].size) / e.files[rung].size < 0.005, rung
    assert shape.kv_bytes_per_token() == 128 * 1024  # 128 KiB a token, as measured on the real file
