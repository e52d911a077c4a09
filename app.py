"""The Gradio UI: `build_demo(settings)` builds the page from coach/; `launch` serves it on 127.0.0.1.

Private by default: bound to loopback, no share link, analytics off, no fonts or scripts from a CDN.
Each browser tab holds its own `Interview` in a `gr.State`; all tabs share one loaded model, whose
lock makes them take turns. Every turn is stored as it happens, so a closed tab loses nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import functools  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from coach.config import Settings  # noqa: E402
from coach.debrief import LABELS, Debrief  # noqa: E402
from coach.doctor import report as doctor_report  # noqa: E402
from coach.engine import LlamaBackend  # noqa: E402
from coach.errors import CoachError, log_crash  # noqa: E402
from coach.grader import Grader  # noqa: E402
from coach.models import QUANT_TYPES, ModelRef, add, list_models, pull, quantize, resolve  # noqa: E402
from coach.models import Row as ModelRow  # noqa: E402
from coach.prompts import load_personas, load_scenarios  # noqa: E402
from coach.rubrics import load_all  # noqa: E402
from coach.session import Interview, TypeAhead, debrief_for  # noqa: E402
from coach.store import Store  # noqa: E402

log = logging.getLogger("coach.ui")

# System fonts only: the default theme would fetch web fonts from a CDN.
THEME = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = """
#model-banner {font-size: .92em}
#timer.warn {color: #b3261e; font-weight: 600}
"""


class Engine:
    """The one loaded model all tabs share; switching it swaps the backend under a lock."""

    def __init__(self, settings: Settings, backend: LlamaBackend | None = None) -> None:
        self.settings = settings
        self.ref: ModelRef = resolve(settings.model, settings)
        self.backend = backend or self._load(self.ref)
        self._lock = threading.Lock()

    def _load(self, ref: ModelRef) -> LlamaBackend:
        s = self.settings
        return LlamaBackend(ref.path, n_ctx=s.n_ctx, n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers, seed=s.seed)

    def use(self, name: str) -> None:
        if not name or name == self.ref.name:
            return
        with self._lock:
            ref = resolve(name, self.settings)
            backend = self._load(ref)
            old, self.backend, self.ref = self.backend, backend, ref
            old.close()

    def banner(self) -> str:
        return f"**Model running:** {self.ref.describe()}"


def _panelist_message(iv: Interview, panelist: str, text: str) -> dict[str, Any]:
    p = iv.persona(panelist)
    return {"role": "assistant", "content": f"{p.mark} **{p.name}** · *{p.role}*\n\n{text}"}


def _clock(iv: Interview | None, asked_at: float | None) -> str:
    if iv is None or iv.done:
        return ""
    used, box = iv.panel.time_left(iv.state)
    if asked_at:
        used += int(time.time() - asked_at)
    warn = box and used >= 0.8 * box
    note = " — nearly out of time, wrap up" if warn and used < box else " — time is up for this segment" if warn else ""
    return f"Segment time **{used // 60}:{used % 60:02d}** of {box // 60}:{box % 60:02d}{note}"


def _criteria_chart(d: Debrief, colours: dict[str, str], path: Path) -> Path:
    """Per-criterion scores, one bar per panelist in that panelist's colour, criteria down the side."""
    from matplotlib.figure import Figure  # no pyplot: its global state is not safe across UI worker threads

    criteria = list(dict.fromkeys(c for v in d.verdicts for c in v.criteria))
    fig = Figure(figsize=(8, 0.9 + 0.75 * max(1, len(criteria))), dpi=110)
    ax = fig.subplots()
    height = 0.8 / max(1, len(d.verdicts))
    for i, v in enumerate(d.verdicts):
        ys = [k + (i - (len(d.verdicts) - 1) / 2) * height for k in range(len(criteria))]
        xs = [v.criteria.get(c) for c in criteria]  # None: this panelist never tested that criterion
        ax.barh(ys, [x or 0.0 for x in xs], height=height * 0.92, color=colours.get(v.panelist, "#777"),
                label=v.name.split(" (")[0])
        for y, x in zip(ys, xs, strict=True):
            ax.text((x or 0.0) + 0.05, y, f"{x:.1f}" if x is not None else "not tested", va="center", fontsize=8,
                    color="#222" if x is not None else "#888")
    ax.set_yticks(range(len(criteria)), [LABELS.get(c, c) for c in criteria])
    ax.invert_yaxis()
    ax.set_xlim(0, 5.4)
    ax.axvline(3.4, color="#999", linestyle="--", linewidth=1)
    ax.text(3.42, -0.6, "Yes", color="#666", fontsize=8)
    ax.set_xlabel("score (1 to 5)")
    ax.set_title("Per-criterion scores by panelist", fontsize=10, loc="left")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _trend_chart(rows: list[dict[str, Any]], path: Path) -> str:
    """Mean score per session over time, one colour per scenario, with the hiring bar marked."""
    from datetime import datetime

    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    def when(r: dict[str, Any]) -> float:
        return float(date2num(datetime.fromtimestamp(r["created"])))

    fig = Figure(figsize=(8, 3.2), dpi=110)
    ax = fig.subplots()
    rows = sorted(rows, key=lambda r: r["created"])
    ax.plot([when(r) for r in rows], [r["mean_total"] for r in rows], color="#bbb",
            linewidth=1, zorder=1)
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == scenario]
        ax.scatter([when(r) for r in mine], [r["mean_total"] for r in mine], s=36,
                   label=scenario.replace("_", " "), zorder=2)
    first, last = when(rows[0]), when(rows[-1])
    if last - first < 1.0:  # one day or less: show that day, not years of empty axis
        ax.set_xlim(first - 0.5, last + 0.5)
    ax.xaxis_date()
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylim(1, 5)
    ax.axhline(3.4, color="#999", linestyle="--", linewidth=1)
    ax.text(1.0, 3.45, "Yes ", color="#666", fontsize=8, ha="right", transform=ax.get_yaxis_transform())
    ax.set_ylabel("mean score (1 to 5)")
    ax.set_title("Your scores over time (mean per session)", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    return str(path)


def _debrief_outputs(d: Debrief, out_dir: Path, colours: dict[str, str]) -> tuple[str, str, str, str, str]:
    verdicts = "\n".join(f"- **{v.name}**: {v.verdict} ({v.score:.2f}/5) — for: “{v.evidence_for}” · "
                         f"against: “{v.evidence_against}”" for v in d.verdicts)
    weak = "\n\n".join(f"**{w['question']}** ({w['score']:.2f}/5)\n\n> {w['answer']}\n\nBetter: {w['exemplar']}\n\n"
                       f"Next time: {w['improvement']}" for w in d.weak_answers)
    md = f"## {d.decision}\n\n{d.reason}\n\n{verdicts}" + (f"\n\n### Weak answers\n\n{weak}" if weak else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, text in (("md", d.to_markdown()), ("json", d.to_json()), ("html", d.to_html())):
        p = out_dir / f"debrief.{ext}"
        p.write_text(text, encoding="utf-8")
        paths.append(str(p))
    chart = _criteria_chart(d, colours, out_dir / "criteria.png")
    return md, str(chart), paths[0], paths[1], paths[2]


def _mirror(handler: Callable[..., Iterator[tuple]]) -> Callable[..., Iterator[tuple]]:
    """Panel handlers yield the transcript first: the UI shows it and keeps a copy in a State. The Send
    button is appended last and stays disabled until the handler's final update (a panelist speaking)."""

    @functools.wraps(handler)
    def wrapped(*args: Any) -> Iterator[tuple]:
        prev: tuple | None = None
        try:
            for out in handler(*args):
                if prev is not None:
                    yield (*prev, gr.update(interactive=False))
                prev = (out[0], *out)
        except Exception as exc:
            if prev is not None:  # Send comes back before the error is shown: nothing is left locked
                yield (*prev, gr.update(interactive=True))
            raise _ui_error(exc) from None
        if prev is not None:
            yield (*prev, gr.update(interactive=True))

    return wrapped


def _ui_error(exc: Exception) -> gr.Error:
    """One line for the page: a CoachError says its fix; anything else is logged whole and named."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, CoachError):
        return gr.Error(str(exc))
    where = log_crash(exc)
    log.error("unexpected %s in a UI handler (trace in %s)", type(exc).__name__, where)
    return gr.Error(f"Unexpected {type(exc).__name__}: {str(exc)[:300]} (full trace in {where}; please report it)")


def _guard(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Every UI handler's error boundary (plain functions; panel handlers go through `_mirror`)."""

    @functools.wraps(handler)
    def wrapped(*args: Any) -> Any:
        try:
            return handler(*args)
        except Exception as exc:
            raise _ui_error(exc) from None

    return wrapped


def _models_table(rows: list[ModelRow]) -> pd.DataFrame:
    return pd.DataFrame([{"name": r.name, "installed": "yes" if r.installed else "no", "size GB": round(r.size / 1e9, 2),
                          "RAM needed GB": round(r.ram_needed / 1e9, 2), "fits": "yes" if r.fits else "NO"}
                         for r in rows])


def _model_choices(rows: list[ModelRow]) -> list[tuple[str, str]]:
    """The panel's model picker: each installed file with its quant, size and RAM estimate (the value is the name)."""
    return [(f"{r.name} · {r.quant} · {r.size / 1e9:.2f} GB · needs ~{r.ram_needed / 1e9:.1f} GB RAM"
             + ("" if r.fits else " (more than free RAM)"), r.name) for r in rows if r.installed]


def _installed(rows: list[ModelRow]) -> list[str]:
    return [r.name for r in rows if r.installed]


def build_demo(settings: Settings, *, backend: LlamaBackend | None = None, grader: Grader | None = None,
               store: Store | None = None) -> gr.Blocks:
    store = store or Store.open_default(settings.home)  # a damaged database is said before minutes of loading
    engine = Engine(settings, backend)
    grader = grader or Grader.from_settings(settings)
    personas, banks = load_personas(), load_all()
    scenarios = load_scenarios(personas=personas, banks=banks)
    colours = {k: p.colour for k, p in personas.items()}
    catalog = list_models(settings)  # what the pickers list when the page is built; refreshed on each load
    titles = {s.title: s.id for s in scenarios.values()}
    exports = Path(tempfile.mkdtemp(prefix="coach-exports-"))
    # The grader's model loads in the background so the page is usable at once.
    def warm_grader() -> None:
        for b in banks.values():
            grader.warm(b)

    threading.Thread(target=warm_grader, daemon=True).start()

    # ------------------------------------------------------------------ panel handlers

    def start(title: str, model: str, seed: float | None, coach_mode: bool) -> Iterator[tuple]:
        try:
            engine.use(model)
            sid = titles.get(title, "pmm_final_panel")
            iv = Interview.start(sid, backend=engine.backend, grader=grader, store=store,
                                 seed=int(seed) if seed is not None else settings.seed, model=engine.ref.name,
                                 cache_dir=settings.kv_cache_dir)
            threading.Thread(target=iv.warm_up, daemon=True).start()  # every persona card, in the background
        except CoachError as exc:
            yield [], None, None, f"**Could not start:** {exc}", "", engine.banner()
            return
        yield from _ask(iv, [], "", engine.banner())

    def _ask(iv: Interview, chat: list[dict], coach_md: str, banner: str) -> Iterator[tuple]:
        action = iv.current.action if iv.current else iv.panel.next_action(iv.state)
        chat = [*chat, _panelist_message(iv, action.panelist, "")]
        text = ""
        for chunk in iv.ask():
            text += chunk
            chat[-1] = _panelist_message(iv, action.panelist, text)
            yield chat, iv, None, "", coach_md, banner
        final = iv.current.text if iv.current else text.strip()
        chat[-1] = _panelist_message(iv, action.panelist, final)
        if iv.current is not None:
            typing[iv.session_id] = TypeAhead(iv)  # the next speakers read the answer as it is typed
        yield chat, iv, time.time(), "", coach_md, banner

    typing: dict[str, TypeAhead] = {}  # session id -> its type-ahead worker, while the candidate types

    def draft(text: str, iv: Interview | None) -> None:
        ta = typing.get(iv.session_id) if iv is not None else None
        if ta is not None:
            ta.update(text or "")

    def answer(text: str, chat: list[dict], iv: Interview | None, asked_at: float | None,
               coach_mode: bool) -> Iterator[tuple]:
        if iv is None or iv.current is None:
            yield chat, iv, asked_at, "Start a panel first.", "", engine.banner(), gr.update(), *_no_debrief()
            return
        if not (text or "").strip():
            yield chat, iv, asked_at, "Type an answer first (an empty answer scores 1).", "", engine.banner(), \
                gr.update(), *_no_debrief()
            return
        spent = time.time() - asked_at if asked_at else 0.0
        ta = typing.pop(iv.session_id, None)
        if ta is not None:
            ta.stop()  # the turn reads what is left; nothing evaluates the old draft behind it
        try:
            grade = iv.answer(text, spent_s=spent)
        except CoachError as exc:  # e.g. another tab took the session over: the answer stays in the box
            yield chat, iv, asked_at, f"**Not saved:** {exc}", "", engine.banner(), gr.update(), *_no_debrief()
            return
        chat = [*chat, {"role": "user", "content": text}]
        coach_md = ""
        if coach_mode and grade is not None:
            crit = " · ".join(f"{LABELS[c]} {s:.1f}" for c, s in grade.criteria.items())
            coach_md = (f"**Score {grade.total:.2f}/5** — {crit}\n\n**Next time:** {grade.improvement}\n\n"
                        f"**Closest strong answer** ({grade.nearest_good[1]:.2f}): {grade.nearest_good[0]}"
                        + "".join(f"\n\n*Note: {n}*" for n in grade.notes))
        yield chat, iv, None, "", coach_md, engine.banner(), "", *_no_debrief()
        try:
            for out in _ask(iv, chat, coach_md, engine.banner()):
                chat = out[0]
                yield *out, "", *_no_debrief()
        except CoachError as exc:  # the answer is already saved; say why the panel stopped
            yield (chat, iv, None, f"**The panel could not go on:** {exc} (your answers are saved: History → Resume)",
                   coach_md, engine.banner(), "", *_no_debrief())
            return
        if iv.done:
            outs = _debrief_outputs(iv.debrief(), exports / iv.session_id, colours)
            done_md = "The panel has finished — see the **Debrief** tab."
            yield chat, iv, None, done_md, coach_md, engine.banner(), "", *outs
            note = ""
            try:
                for chunk in iv.committee_note():  # the chair's summary, read turn by turn during the session
                    note += chunk
                    yield (chat, iv, None, done_md, coach_md, engine.banner(), "",
                           f"### The committee chair\n\n{note.strip()}\n\n{outs[0]}", *outs[1:])
            except CoachError as exc:
                log.info("no committee summary: %s", exc)

    def _no_debrief() -> tuple:
        return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()

    def tick(iv: Interview | None, asked_at: float | None) -> str:
        return _clock(iv, asked_at)

    # ------------------------------------------------------------------ history handlers

    def sessions() -> tuple[pd.DataFrame, Any, str | None]:
        rows = store.sessions()
        table = pd.DataFrame([{"id": r["id"], "scenario": r["scenario"], "status": r["status"], "answers": r["answered"],
                               "mean score": round(r["mean_total"], 2) if r["mean_total"] is not None else None,
                               "model": r["model"]} for r in rows],
                             columns=["id", "scenario", "status", "answers", "mean score", "model"])
        scored = [r for r in rows if r["mean_total"] is not None]
        trend = _trend_chart(scored, exports / f"trend-{time.time_ns()}.png") if scored else None
        return table, gr.update(choices=[r["id"] for r in rows]), trend

    def turns_of(sid: str) -> Any:
        if not sid:
            return gr.update(choices=[])
        return gr.update(choices=[(f"{t['idx']}: {t['spoken'][:70]}", t["idx"]) for t in store.turns(sid) if t["grade"]],
                         value=None)

    def resume(sid: str, chat: list[dict], take_over: bool = False) -> Iterator[tuple]:
        if not sid:
            yield chat, None, None, "Pick a session first.", "", engine.banner(), gr.update()
            return
        try:
            iv = Interview.resume(sid, backend=engine.backend, grader=grader, store=store, take_over=bool(take_over))
        except CoachError as exc:  # said where the user is (History) and in the panel's status line
            gr.Warning(f"Could not resume: {exc}", duration=None)
            yield chat, None, None, f"**Could not resume:** {exc}", "", engine.banner(), gr.update()
            return
        history: list[dict] = []
        for t in store.turns(sid):
            if t["answer"] is not None or t["kind"] == "close":
                history.append(_panelist_message(iv, t["panelist"], t["spoken"]))
                if t["answer"]:
                    history.append({"role": "user", "content": t["answer"]})
        if iv.done:
            yield history, iv, None, "That session is finished: its debrief is below in History.", "", engine.banner(), \
                gr.update(selected="panel")
            return
        for out in _ask(iv, history, "", engine.banner()):
            yield *out, gr.update(selected="panel")

    def session_debrief(sid: str) -> tuple:
        if not sid:
            return "Pick a session first.", None, None, None, None
        return _debrief_outputs(debrief_for(store, sid, personas), exports / sid, colours)

    def retry(sid: str, idx: int | None, text: str) -> str:
        if not sid or idx is None:
            return "Pick a session and one of its questions."
        t = next((t for t in store.turns(sid) if t["idx"] == idx), None)
        if t is None or not t["question_id"]:
            return "That turn has no question to retry."
        bank = banks[scenarios[store.session(sid)["scenario"]].rubric]  # type: ignore[index]
        g = grader.grade(bank, bank.get(t["question_id"]), text)
        before = t["grade"]["total"]
        arrow = "better" if g.total > before else "worse" if g.total < before else "the same"
        crit = " · ".join(f"{LABELS[c]} {s:.1f}" for c, s in g.criteria.items())
        return (f"**Before {before:.2f} → now {g.total:.2f}** ({arrow})\n\n{crit}\n\n**Next time:** {g.improvement}")

    # ------------------------------------------------------------------ model handlers

    def models_refresh() -> tuple[pd.DataFrame, Any, Any, Any, Any]:
        """Every model picker lists what is installed now (after a pull, add or quantize, or in a new tab)."""
        rows = list_models(settings)  # reads each installed file's header: once per refresh
        names = _installed(rows)
        return (_models_table(rows), gr.update(choices=_model_choices(rows), value=engine.ref.name),
                gr.update(choices=names),
                gr.update(choices=names), gr.update(choices=["", *names]))

    def do_pull(name: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> str:  # noqa: B008
        try:
            return f"Ready: `{pull(name.strip(), settings)}`"
        except CoachError as exc:
            return f"**Pull failed:** {exc}"

    def do_add(path: str, name: str) -> str:
        try:
            ref = add(path.strip(), settings, name=name.strip() or None)
            return f"Registered **{ref.name}** ({ref.quant})"
        except CoachError as exc:
            return f"**Could not add:** {exc}"

    def do_quantize(src: str, qtype: str, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        try:
            progress(0.1, desc=f"quantizing to {qtype}")
            ref = quantize(src, qtype, settings)
            return f"Made **{ref.name}** at `{ref.path}`"
        except CoachError as exc:
            return f"**Could not quantize:** {exc}"

    # ------------------------------------------------------------------ benchmark handler

    def do_bench(names: list[str], ladder_src: str, rungs: list[str], reps: float,
                 progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        from coach.bench import Options, build_ladder, recommend, run

        try:
            files = [resolve(n, settings) for n in names or []]
            if ladder_src:
                chosen = tuple(rungs or ["Q8_0", "Q4_K_M"])
                progress(0.0, desc=f"building the ladder: {', '.join(chosen)} (cached after the first time)")
                files += build_ladder(ladder_src, settings, chosen)
            if not files:
                return pd.DataFrame(), None, "Pick at least one model or a ladder source.", None
            rows, out = run(files, settings, Options(reps=int(reps or 1), threads=settings.n_threads,
                                                     gpu_layers=settings.n_gpu_layers), progress=True)
        except CoachError as exc:
            return pd.DataFrame(), None, f"**Benchmark failed:** {exc}", None
        # what a user compares first (speed, quality, size) on the left; where the file is and any error last
        cols = ["quant", "gen_tps", "top1", "kl", "size_mb", "pp_tps", "ttft_open_ms", "ttft_follow_ms", "peak_rss_mb",
                "bandwidth_share", "status", "name", "error"]
        df = pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols).round(3)
        plot_png = out / "plot.png"
        results = [str(f) for f in sorted(out.iterdir()) if f.suffix in {".csv", ".json", ".html"}]
        return (df, str(plot_png) if plot_png.exists() else None, f"**{recommend(rows)}**\n\nFiles in `{out}`",
                results or None)

    # ------------------------------------------------------------------ layout

    with gr.Blocks(title="Interview coach") as demo:
        iv_state = gr.State(None)
        asked_at = gr.State(None)
        gr.Markdown("# Interview coach")
        banner = gr.Markdown(engine.banner(), elem_id="model-banner")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Panel", id="panel"):
                with gr.Row():
                    scenario = gr.Dropdown(list(titles), value=scenarios["pmm_final_panel"].title, label="Scenario",
                                           elem_id="scenario")
                    model = gr.Dropdown(_model_choices(catalog), value=engine.ref.name, label="Model", elem_id="model",
                                        allow_custom_value=True, scale=2)
                    seed = gr.Number(value=settings.seed, precision=0, label="Seed", elem_id="seed")
                    coach_mode = gr.Checkbox(False, label="Coach mode (show scores after each answer)",
                                             elem_id="coach-mode")
                start_btn = gr.Button("Start the panel", variant="primary", elem_id="start")
                chatbot = gr.Chatbot(elem_id="panel-chat", height=460, buttons=["copy"], label="The panel",
                                     show_label=False)
                clock = gr.Markdown("", elem_id="timer")
                status = gr.Markdown("", elem_id="status")
                answer_box = gr.Textbox(lines=4, placeholder="Your answer…", label="Your answer", elem_id="answer")
                send = gr.Button("Send answer", elem_id="send")
                coach_md = gr.Markdown("", elem_id="coach-feedback")
            with gr.Tab("Debrief", id="debrief"):
                debrief_md = gr.Markdown("Finish a panel to see the committee's decision.", elem_id="debrief")
                debrief_plot = gr.Image(label="Per-criterion scores by panelist", elem_id="debrief-plot",
                                        buttons=["download", "fullscreen"], interactive=False, show_label=False)
                with gr.Row():
                    dl_md = gr.DownloadButton("Markdown", elem_id="dl-md")
                    dl_json = gr.DownloadButton("JSON", elem_id="dl-json")
                    dl_html = gr.DownloadButton("HTML report", elem_id="dl-html")
            with gr.Tab("History", id="history"):
                refresh = gr.Button("Refresh", elem_id="history-refresh")
                table = gr.Dataframe(interactive=False, elem_id="history-table")
                trend = gr.Image(label="Scores over time", elem_id="trend", interactive=False, show_label=False,
                                 buttons=["download", "fullscreen"])
                pick = gr.Dropdown([], label="Session", elem_id="history-session", allow_custom_value=True)
                with gr.Row():
                    resume_btn = gr.Button("Resume", elem_id="resume")
                    show_btn = gr.Button("Show its debrief", elem_id="show-debrief")
                take_over = gr.Checkbox(False, label="Take over if it is open in another window or tab",
                                        elem_id="take-over")
                pick_turn = gr.Dropdown([], label="Retry one question", elem_id="retry-turn", allow_custom_value=True)
                retry_box = gr.Textbox(lines=3, label="New answer", elem_id="retry-answer")
                retry_btn = gr.Button("Grade the new answer", elem_id="retry")
                retry_md = gr.Markdown("", elem_id="retry-result")
            with gr.Tab("Models", id="models"):
                models_df = gr.Dataframe(_models_table(catalog), interactive=False, elem_id="models-table")
                with gr.Row():
                    pull_name = gr.Textbox(label="Pull NAME:QUANT", value="mistral-7b-instruct-v0.3:Q4_K_M")
                    pull_btn = gr.Button("Pull")
                with gr.Row():
                    add_path = gr.Textbox(label="Add a local .gguf (path)")
                    add_name = gr.Textbox(label="Name (optional)")
                    add_btn = gr.Button("Add")
                with gr.Row():
                    q_src = gr.Dropdown(_installed(catalog), label="Quantize from", allow_custom_value=True)
                    q_type = gr.Dropdown(list(QUANT_TYPES), value="Q8_0", label="To")
                    q_btn = gr.Button("Quantize")
                models_md = gr.Markdown("", elem_id="models-status")
                doctor_btn = gr.Button("What can this machine run?", elem_id="doctor")
                doctor_md = gr.Markdown("", elem_id="doctor-report")
            with gr.Tab("Benchmark", id="bench"):
                gr.Markdown("Speed, memory and quality per quantization level, measured on this machine. A ladder "
                            "is built locally from one file, so this works offline on the embedded model.")
                with gr.Row():
                    b_models = gr.Dropdown(_installed(catalog), multiselect=True, label="Installed models",
                                           elem_id="bench-models", allow_custom_value=True)
                    b_src = gr.Dropdown(["", *_installed(catalog)], value="", label="Or build a ladder from",
                                        elem_id="bench-ladder", allow_custom_value=True, scale=2)
                    b_rungs = gr.CheckboxGroup(["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"],
                                               value=["Q8_0", "Q4_K_M"], label="Rungs", elem_id="bench-rungs", scale=2)
                    b_reps = gr.Number(1, precision=0, minimum=1, maximum=10, label="Repetitions", elem_id="bench-reps")
                b_btn = gr.Button("Run the benchmark", variant="primary", elem_id="bench-run")
                b_rec = gr.Markdown("", elem_id="bench-recommendation")
                b_table = gr.Dataframe(interactive=False, elem_id="bench-table")
                b_plot = gr.Image(label="Speed against size (colour: agreement with the reference)", elem_id="bench-plot",
                                  show_label=False, buttons=["download", "fullscreen"])
                b_files = gr.File(file_count="multiple", elem_id="bench-files",
                                  label="Results: CSV, JSON (with the machine manifest), interactive plot")

        # The transcript also lives in a State (each handler writes both), so API clients need not send it back.
        chat_state = gr.State([])
        panel_outs = [chatbot, chat_state, iv_state, asked_at, status, coach_md, banner]
        debrief_outs = [debrief_md, debrief_plot, dl_md, dl_json, dl_html]
        start_btn.click(_mirror(start), [scenario, model, seed, coach_mode], [*panel_outs, send], api_name="start")
        answer_io = ([answer_box, chat_state, iv_state, asked_at, coach_mode],
                     [*panel_outs, answer_box, *debrief_outs, send])
        send.click(_mirror(answer), *answer_io, api_name="answer")
        answer_box.submit(_mirror(answer), *answer_io, api_visibility="private")
        answer_box.change(_guard(draft), [answer_box, iv_state], None, api_visibility="private", show_progress="hidden",
                          trigger_mode="always_last", queue=False)
        gr.Timer(1.0).tick(_guard(tick), [iv_state, asked_at], clock, api_visibility="private", show_progress="hidden")
        refresh.click(_guard(sessions), None, [table, pick, trend], api_name="sessions")
        pick.change(_guard(turns_of), pick, pick_turn, api_visibility="private")
        resume_btn.click(_mirror(resume), [pick, chat_state, take_over], [*panel_outs, tabs, send], api_name="resume")
        show_btn.click(_guard(session_debrief), pick, debrief_outs, api_name="session_debrief")
        retry_btn.click(_guard(retry), [pick, pick_turn, retry_box], retry_md, api_name="retry")
        pickers = [models_df, model, q_src, b_models, b_src]
        doctor_btn.click(_guard(lambda: f"```\n{doctor_report(settings)}\n```"), None, doctor_md, api_name="doctor")
        pull_btn.click(_guard(do_pull), pull_name, models_md, api_name="models_pull").then(
            _guard(models_refresh), None, pickers)
        add_btn.click(_guard(do_add), [add_path, add_name], models_md, api_name="models_add").then(
            _guard(models_refresh), None, pickers)
        q_btn.click(_guard(do_quantize), [q_src, q_type], models_md, api_name="models_quantize").then(
            _guard(models_refresh), None, pickers)
        b_btn.click(_guard(do_bench), [b_models, b_src, b_rungs, b_reps], [b_table, b_plot, b_rec, b_files],
                    api_name="bench")
        demo.load(_guard(sessions), None, [table, pick, trend], api_visibility="private")
        demo.load(_guard(models_refresh), None, pickers, api_visibility="private")
    return demo


def launch(settings: Settings) -> None:
    t0 = time.perf_counter()
    demo = build_demo(settings)
    print(f"coach: open http://{settings.host}:{settings.port} (built in {time.perf_counter() - t0:.1f} s)", flush=True)
    demo.queue(default_concurrency_limit=4).launch(
        server_name=settings.host, server_port=settings.port, share=False, inbrowser=False, theme=THEME, css=CSS,
        footer_links=[], show_error=True,
    )


if __name__ == "__main__":
    launch(Settings.from_env())
