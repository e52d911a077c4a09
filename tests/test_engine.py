"""The real llama.cpp engine on the embedded GGUF."""

from pathlib import Path

import pytest

from coach.engine import LlamaBackend
from coach.errors import InsufficientMemory, InvalidModelFile
from tests.ggufgen import write_gguf

SYSTEM = {"role": "system", "content": "You are an interviewer. Ask short questions about product strategy."}


def thread(*user: str) -> list[dict[str, str]]:
    return [SYSTEM, *({"role": "user", "content": u} for u in user)]


def test_streams_several_chunks_and_reports_timings(backend):
    chunks = list(backend.stream("a", thread("Ask me a question about pricing."), max_tokens=24, temperature=0))
    assert len(chunks) > 3 and "".join(chunks).strip()
    t = backend.timings
    assert t.speaker == "a" and t.prompt_tokens > 10
    assert 0 < t.generated_tokens <= 24
    assert t.ttft_s > 0 and t.total_s >= t.ttft_s
    assert t.gen_tokens_per_s > 0 and t.prompt_eval_ms > 0


def test_same_seed_same_output_at_temperature_zero(backend):
    msgs = thread("What would you ask a PMM candidate first?")
    backend.forget()
    a = backend.complete("x", msgs, max_tokens=32, temperature=0, seed=3)
    backend.forget()
    b = backend.complete("x", msgs, max_tokens=32, temperature=0, seed=3)
    assert a == b and a.strip()


def test_per_speaker_cache_counts_from_llama_cpp(backend):
    backend.forget()
    a1 = thread("Ask about KV caches.")
    out_a1 = backend.complete("researcher", a1, max_tokens=16, temperature=0)
    first = backend.timings
    assert first.cached_tokens == 0 and first.prompt_eval_tokens == first.prompt_tokens
    # another speaker takes the context in between
    backend.complete("gtm", thread("Ask about pricing."), max_tokens=16, temperature=0)
    a2 = [*a1, {"role": "assistant", "content": out_a1}, {"role": "user", "content": "The candidate answered. Follow up."}]
    backend.complete("researcher", a2, max_tokens=16, temperature=0)
    second = backend.timings
    # llama.cpp evaluated only what was appended since the researcher's last turn
    assert second.cached_tokens >= first.prompt_tokens
    assert second.prompt_eval_tokens == second.prompt_tokens - second.cached_tokens
    assert second.prompt_eval_tokens < second.prompt_tokens / 2


def test_cache_does_not_change_the_output(embedded):
    """Restored KV state must be exactly the state a full re-evaluation produces."""
    outs = []
    for cache in (True, False):
        be = LlamaBackend(embedded.path, n_ctx=2048, n_threads=2, speaker_cache=cache)
        a1 = thread("Ask about quantization.")
        r1 = be.complete("r", a1, max_tokens=12, temperature=0)
        be.complete("g", thread("Ask about sales."), max_tokens=12, temperature=0)
        a2 = [*a1, {"role": "assistant", "content": r1}, {"role": "user", "content": "Follow up on that."}]
        outs.append(be.complete("r", a2, max_tokens=20, temperature=0))
        outs.append(be.timings.cached_tokens)
        be.close()
    assert outs[0] == outs[2]
    assert outs[1] > 0 and outs[3] == 0  # cache on reused tokens, cache off reused none


def test_a_q8_0_kv_cache_speaks_and_keeps_its_own_prefix_files(embedded, tmp_path):
    """The 8-bit KV cache (with flash attention) halves the cells' memory and writes; greedy text starts as
    with f16 cells (the 135M model's close logits part ways after two or three words, depending on the
    build's CPU kernels), and a card read into one kind
    of cells is never loaded into the other."""
    msgs = [{"role": "system", "content": "You are a terse interviewer."}, {"role": "user", "content": "Ask one question."}]
    said, paths = {}, {}
    for kv in ("f16", "q8_0"):
        be = LlamaBackend(embedded.path, n_ctx=1024, n_threads=2, kv_type=kv)
        said[kv] = be.complete("x", msgs, max_tokens=16, temperature=0)
        paths[kv] = be.prefixes.cache_path(tmp_path, [1, 2, 3])
        assert be.warm("y", msgs, tmp_path) > 0  # nothing of the other kind is loaded
        be.close()
    assert said["f16"].split()[:2] == said["q8_0"].split()[:2] and paths["f16"] != paths["q8_0"]
    with pytest.raises(Exception, match="KV cache type 'q4'"):
        LlamaBackend(embedded.path, n_ctx=1024, kv_type="q4")


def test_prefill_leaves_only_the_new_answer_to_evaluate(backend):
    backend.forget()
    a1 = thread("Ask your first question.")
    r1 = backend.complete("pm", a1, max_tokens=12, temperature=0)
    news = "The researcher asked about sparsity. The GTM lead asked about pricing tiers for enterprise."
    n = backend.prefill("pm", [*a1, {"role": "assistant", "content": r1}, {"role": "user", "content": news}])
    assert n > 10
    full = news + "\n\nThe candidate answered: I would lead with cost per thousand tokens.\n\nAsk your next question."
    backend.complete("pm", [*a1, {"role": "assistant", "content": r1}, {"role": "user", "content": full}],
                     max_tokens=8, temperature=0)
    t = backend.timings
    assert t.prompt_eval_tokens < 40 < t.cached_tokens


def test_a_cancelled_prefill_stops_between_batches_and_the_turn_still_matches(backend):
    """Ctrl-C while the candidate types cancels the prefill; the partial state must stay correct."""
    import threading

    long_news = " ".join(f"The GTM lead noted point {i} about enterprise pricing." for i in range(60))
    msgs = [*thread("Ask your first question."), {"role": "assistant", "content": "Why this role?"},
            {"role": "user", "content": long_news}]
    backend.forget()
    full = backend.prefill("p", msgs)
    assert full > 3 * 64  # several batches to cancel between
    cancel = threading.Event()
    cancel.set()
    backend.forget()
    assert backend.prefill("p", msgs, cancel=cancel) == 0  # cancelled before the first batch
    cancel.clear()
    done = []
    worker = threading.Thread(target=lambda: done.append(backend.prefill("p", msgs, cancel=cancel)))
    backend.forget()
    worker.start()
    cancel.set()
    worker.join(timeout=30)
    assert not worker.is_alive() and done and done[0] < full
    turn = [*msgs[:-1], {"role": "user", "content": long_news + "\n\nAsk your next question."}]
    after_cancel = backend.complete("p", turn, max_tokens=12, temperature=0)
    backend.forget()
    assert after_cancel == backend.complete("p", turn, max_tokens=12, temperature=0)


def test_a_turn_aborts_the_prefill_batch_in_flight_and_nothing_is_half_kept(backend, capfd):
    """A turn does not wait for a background batch: llama.cpp's abort callback stops it mid-graph and
    drops the unfinished cells. What stays resident must be exactly a prefix of the prompt, and the
    turn's output the same as on a model that never prefilled."""
    import threading

    assert backend.abortable  # libc's strlen is the callback on this platform
    long_news = " ".join(f"The researcher noted point {i} about sparse attention." for i in range(80))
    msgs = [*thread("Ask your first question."), {"role": "assistant", "content": "Why this role?"},
            {"role": "user", "content": long_news}]
    # the flag raised before a batch: llama.cpp aborts at its first graph node and keeps nothing of it
    backend.forget()
    backend._prefilling = True
    backend._interrupt()
    backend._prefilling = False
    assert backend.prefill("q", msgs) == 0 and backend.resident("q") == 0
    assert backend._abort_flag.raw[0] == 0  # cleared for the next batch
    assert "removing memory module entries" not in capfd.readouterr().err  # an abort is not an error to show
    # a turn arriving while another thread prefills: the turn gets the model, the prefill stops
    backend.forget()
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(backend.prefill("q", msgs)))
    worker.start()
    while backend.resident("q") == 0 and worker.is_alive():
        pass  # until the first batch has landed
    turn = [*msgs[:-1], {"role": "user", "content": long_news + "\n\nAsk your next question."}]
    during = backend.complete("q", turn, max_tokens=12, temperature=0)
    worker.join(timeout=30)
    assert not worker.is_alive() and done
    import llama_cpp

    slot = backend.kv.lru["q"]  # the engine's account of the cells matches llama.cpp's
    assert int(llama_cpp.llama_memory_seq_pos_max(backend.kv.ctx.memory, slot.seq)) + 1 == len(slot.tokens)
    backend.forget()
    assert during == backend.complete("q", turn, max_tokens=12, temperature=0)


def test_type_ahead_stopped_at_send_interrupts_its_batch_and_keeps_a_clean_prefix(backend):
    """At Send the draft being read is stale: TypeAhead.stop() interrupts the batch in flight instead of
    waiting for it, and what stays resident is exactly a prefix of the prompt (llama.cpp agrees)."""
    import llama_cpp

    from coach.interview.typeahead import TypeAhead

    long_news = " ".join(f"The researcher noted point {i} about sparse attention." for i in range(120))
    msgs = [*thread("Ask your first question."), {"role": "assistant", "content": "Why this role?"},
            {"role": "user", "content": long_news}]
    full = len(backend.layout.tokens(msgs, upto_last=True)) - 1
    backend.forget()
    ta = TypeAhead(lambda draft, cancel, newer: backend.prefill("q", msgs, cancel=cancel), lambda: False,
                   interrupt=backend.interrupt)
    ta.update("draft")
    while backend.resident("q") == 0:
        pass  # until the first batch has landed: the next one is in flight or about to be
    ta.stop()
    kept = backend.resident("q")
    assert 0 < kept < full
    slot = backend.kv.lru["q"]
    assert int(llama_cpp.llama_memory_seq_pos_max(backend.kv.ctx.memory, slot.seq)) + 1 == len(slot.tokens) == kept
    assert slot.tokens == backend.layout.tokens(msgs, upto_last=True)[:kept]
    assert backend._abort_flag.raw[0] == 0  # cleared for the next batch
    backend.forget()


def test_type_ahead_stop_interrupts_the_read_in_flight():
    """Pure logic: stop() asks the engine to interrupt the read in flight rather than waiting for it to end
    (here a read that only ends when interrupted: without the call, stop() would never return)."""
    import threading

    from coach.interview.typeahead import TypeAhead

    reading, interrupted = threading.Event(), threading.Event()

    def read(draft: str, cancel: threading.Event, newer: threading.Event) -> int:
        reading.set()
        interrupted.wait(timeout=600)
        return 1

    ta = TypeAhead(read, lambda: False, interrupt=interrupted.set)
    ta.update("a draft")
    assert reading.wait(timeout=600)
    ta.stop()
    assert interrupted.is_set() and not ta._thread.is_alive()


def test_stop_sequences_end_the_turn(backend):
    msgs = thread("Tell me about your favourite product launch.")
    backend.forget()
    free = backend.complete("s", msgs, max_tokens=40, temperature=0)
    words = free.split()
    assert len(words) > 4
    stop = " " + words[len(words) // 2]
    backend.forget()
    stopped = backend.complete("s", msgs, max_tokens=40, temperature=0, stop=[stop])
    assert stopped == free[: free.index(stop)]
    assert backend.timings.finish_reason == "stop"


def test_token_limit_is_respected(backend):
    backend.forget()
    backend.complete("s", thread("Write a long essay about databases."), max_tokens=5, temperature=0)
    assert backend.timings.generated_tokens <= 5 and backend.timings.finish_reason == "length"


def test_context_is_capped_at_the_model_maximum(embedded):
    be = LlamaBackend(embedded.path, n_ctx=1_000_000, n_threads=2)
    assert be.n_ctx == 8192 and be.n_gpu_layers == 0  # CPU-only build here
    be.close()


def test_model_larger_than_free_ram_is_refused_before_loading(embedded, monkeypatch):
    monkeypatch.setattr("coach.models.fit.available_ram", lambda: 50 * 2**20)
    with pytest.raises(InsufficientMemory, match=r"needs about .* GiB .* only 0.0 GiB is free"):
        LlamaBackend(embedded.path, n_ctx=2048)


def test_gguf_llama_cpp_cannot_load_gets_a_clear_error(tmp_path: Path):
    bad = write_gguf(tmp_path / "alien.gguf", arch="no-such-architecture")
    with pytest.raises(InvalidModelFile, match="llama.cpp could not load alien.gguf"):
        LlamaBackend(bad, n_ctx=256)


def test_a_conversation_longer_than_the_context_is_a_clear_error(embedded):
    from coach.errors import CoachError

    be = LlamaBackend(embedded.path, n_ctx=256, n_threads=2)
    with pytest.raises(CoachError, match=r"no longer fits the context \(256\); start a new session"):
        be.complete("x", thread("word " * 400), max_tokens=8)
    be.close()


def test_a_model_loads_and_speaks_after_every_module_the_front_ends_import_first(embedded):
    """A GPU machine with numpy 2.5 crashed (SIGSEGV) loading a model after numpy was imported. Here the
    load runs in a child after everything the CLI, the UI and the bench worker import before a model
    (numpy, torch through the grader, gradio): a crash shows as a negative return code."""
    import subprocess
    import sys

    code = ("import numpy, torch, gradio, coach.cli, coach.bench.run, coach.grading.grader, coach.interview.session, "
            "coach.models.doctor\n"
            "from coach.engine import LlamaBackend\n"
            f"be = LlamaBackend({str(embedded.path)!r}, n_ctx=512, n_threads=2)\n"
            "print(repr(be.complete('x', [{'role': 'user', 'content': 'Say hi.'}], max_tokens=4, temperature=0)))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert p.stdout.strip().startswith("'")


def test_kv_cells_start_at_a_sessions_need_and_grow_keeping_every_speaker(embedded, monkeypatch):
    """Each speaker starts with the cells a session needs (here forced to 256) and a longer thread grows
    them; the other speaker's cells survive the rebuild, and every output is what an engine that had the
    cells from the start says."""
    a = [{"role": "system", "content": "You are a terse interviewer."}, {"role": "user", "content": "Ask one question."}]
    a2 = [*a, {"role": "assistant", "content": "What?"}, {"role": "user", "content": "Go on, ask another."}]
    long = thread("the candidate talks about quantization and latency " * 60 + "Ask.")
    outs = []
    for start in (256, 2048):
        monkeypatch.setattr("coach.engine.llama.session_cells", lambda n_ctx, train, s=start: s)
        be = LlamaBackend(embedded.path, n_ctx=2048, n_threads=2, slots=2)
        assert be.cells == start
        first = be.complete("a", a, max_tokens=4, temperature=0)
        kept, prompt_a = be.resident("a"), be.timings.prompt_tokens if be.timings else 0
        second = be.complete("b", long, max_tokens=6, temperature=0)
        assert be.timings is not None and be.timings.prompt_tokens > 256
        assert be.cells == (512 if start == 256 else 2048) or be.cells >= be.timings.prompt_tokens
        assert be.resident("a") == kept  # the other speaker's cells came through the rebuild
        third = be.complete("a", a2, max_tokens=6, temperature=0)
        assert be.timings.cached_tokens >= prompt_a - 1  # its prompt still cached: only the new turn read
        outs.append((first, second, third))
        be.close()
    assert outs[0] == outs[1]


def test_a_model_the_ui_loads_reads_every_scenarios_cards_and_openings_before_start(settings, tmp_path, grader):
    """The UI's ModelHolder starts reading every opening card, then every session's whole opening prompt,
    into the disk cache as soon as it has loaded a model (a tiny file in Mistral Small 3's format here), so
    the first session on it, whatever its scenario and seed, reads nothing at Start."""
    import dataclasses
    import threading

    from coach.interview.loader import ModelHolder, opening_cards, openings, read_ahead
    from coach.interview.session import Interview
    from coach.models.shapes import Shape, write_shape
    from coach.store import Store

    tiny = write_shape(tmp_path / "tiny-v7.gguf", Shape(n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_ff=128,
                                                         n_vocab=32768, tokenizer="v7", chat_format="mistral-v7"), "F16")
    settings = dataclasses.replace(settings, model=str(tiny), prefix_cache=tmp_path / "prefix")  # its own: counted
    holder = ModelHolder(settings)
    reader = next(t for t in threading.enumerate() if t.name == "coach-read-cards")
    reader.join(timeout=600)
    assert not reader.is_alive()
    assert len(list(settings.kv_cache_dir.glob("*.kv"))) == len(opening_cards()) + len(openings()) == 20 + 9
    assert read_ahead(holder.backend, settings.kv_cache_dir) == 0  # all there: nothing read
    store = Store(tmp_path / "s.db")
    for scenario, seed in (("pmm_final_panel", 3), ("tpm_onsite", 11), ("pm_loop", 5)):
        holder.backend.forget()
        iv = Interview.start(scenario, backend=holder.backend, grader=grader, store=store, seed=seed,
                             cache_dir=settings.kv_cache_dir, max_tokens=4)
        "".join(iv.ask())
        assert holder.backend.timings.prompt_eval_tokens <= 1, scenario  # the opening came from disk
    holder.backend.close()
