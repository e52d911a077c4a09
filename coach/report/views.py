"""What the UI and the CLI both show: charts and tables, drawn from the data the rest of `coach/` computes
(the debrief's own renderings: `coach.report.debrief`). Charts use matplotlib's object API (no pyplot: its
global state is not safe across UI worker threads) and are written as PNG files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coach.grading.debrief import YES, Debrief
from coach.grading.rubrics import LABELS

if TYPE_CHECKING:
    from coach.bench.rows import BenchRow
    from coach.interview.panel import Clock
    from coach.models.catalog import ModelRow


def segment_note(clock: Clock) -> str:
    """What follows the segment's time: how it stands, and how many questions the segment still has, by
    the rule that ends segments (so a "1 more question" is the question that comes)."""
    note = " — time is up for this segment" if clock.over else " — nearly out of time, wrap up" if clock.warn else ""
    n = clock.questions_left
    left = "last question of this segment" if n == 0 else f"{'up to ' if clock.up_to else ''}{n} more question" + (
        "s" if n > 1 else "")
    return f"{note} · {left}"



def bench_table(rows: list[BenchRow]) -> str:
    gpu = any(r.gpu_layers for r in rows)  # GPU columns only where something was offloaded
    head = (f"{'file':30} {'quant':7} {'size MB':>8} {'load s':>6} {'pp t/s':>8} {'gen t/s':>12} "
            f"{'TTFT open/follow/debrief ms':>28} {'RSS MB':>7} {'KV MB':>6} {'KL':>7} {'top-1':>6} {'BW %':>5}"
            + (f" {'GPU L':>5} {'VRAM MB':>7}" if gpu else "") + "  status")
    lines = [head]
    for r in rows:
        if r.status != "ok":
            lines.append(f"{r.name[:30]:30} {r.quant:7} {r.size_mb:8.0f} {'':>6} {'':>8} {'':>12} {'':>28} {'':>7} "
                         f"{'':>6} {'':>7} {'':>6} {'':>5}" + (f" {'':>5} {'':>7}" if gpu else "")
                         + f"  {r.status}: {r.error}")
            continue
        ttft = f"{r.ttft_open_ms:.0f}/{r.ttft_follow_ms:.0f}/{r.ttft_debrief_ms:.0f}"
        lines.append(f"{r.name[:30]:30} {r.quant:7} {r.size_mb:8.0f} {r.load_s:6.2f} {r.pp_tps:8.0f} "
                     f"{r.gen_tps:6.1f}±{r.gen_spread:<5.1f} {ttft:>28} {r.peak_rss_mb:7.0f} {r.kv_mb:6.0f} "
                     + (f"{r.kl:7.4f} {r.top1:6.1%}" if r.kl is not None and r.top1 is not None else f"{'—':>7} {'—':>6}")
                     + f" {r.bandwidth_share:5.0%}"
                     + (f" {r.gpu_layers:5d} {r.vram_mb:7.0f}" if gpu else "") + "  ok")
    return "\n".join(lines)


# ---------------------------------------------------------------- the debrief and the history

def criteria_png(d: Debrief, colours: dict[str, str] | None = None) -> bytes:
    """Per-criterion scores, one bar per panelist in that panelist's colour, criteria down the side."""
    import io

    from matplotlib.figure import Figure

    if colours is None:
        from coach.interview.prompts import load_personas

        colours = {k: p.colour for k, p in load_personas().items()}

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
    ax.axvline(YES, color="#999", linestyle="--", linewidth=1)
    ax.text(YES + 0.02, -0.6, "Yes", color="#666", fontsize=8)
    ax.set_xlabel("score (1 to 5)")
    ax.set_title("Per-criterion scores by panelist", fontsize=10, loc="left")
    # beside the axes, never over a bar's label
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


PALETTE = ["#4062bb", "#d9822b", "#2e8b57", "#8e44ad", "#b3261e"]  # one colour per scenario


def trend_chart(rows: list[dict[str, Any]], path: Path) -> Path:
    """Mean score per session over time, one colour per scenario, the marker the committee's decision:
    filled for an offer, a cross for no offer, hollow for an unfinished session."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    def when(r: dict[str, Any]) -> float:
        return float(date2num(datetime.fromtimestamp(r["created"])))

    fig = Figure(figsize=(8, 3.4), dpi=110)
    ax = fig.subplots()
    rows = sorted(rows, key=lambda r: r["created"])
    ax.plot([when(r) for r in rows], [r["mean_total"] for r in rows], color="#ccc", linewidth=1, zorder=1)
    handles = []
    for i, scenario in enumerate(dict.fromkeys(r["scenario"] for r in rows)):
        colour = PALETTE[i % len(PALETTE)]
        title = next((r.get("title") for r in rows if r["scenario"] == scenario and r.get("title")), None)
        for r in (r for r in rows if r["scenario"] == scenario):
            decision = r.get("decision", "")
            marker = "x" if decision == "No offer" else "o"
            face = colour if decision == "Offer" or marker == "x" else "none"
            ax.scatter([when(r)], [r["mean_total"]], s=46, marker=marker, facecolors=face, edgecolors=colour,
                       color=colour if marker == "x" else None, linewidths=1.6, zorder=2)
        handles.append(Line2D([], [], color=colour, linewidth=3, label=title or scenario.replace("_", " ")))
    handles += [Line2D([], [], marker="o", color="#555", linestyle="", label="offer"),
                Line2D([], [], marker="x", color="#555", linestyle="", label="no offer"),
                Line2D([], [], marker="o", markerfacecolor="none", color="#555", linestyle="", label="incomplete")]
    first, last = when(rows[0]), when(rows[-1])
    if last - first < 1.0:  # one day or less: show that day, not years of empty axis
        ax.set_xlim(first - 0.5, last + 0.5)
    ax.xaxis_date()
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylim(1, 5)
    ax.set_ylabel("mean score (1 to 5)")
    ax.set_title("Your sessions over time: mean score, and the committee's decision", fontsize=10, loc="left")
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def criteria_chart(trend: list[tuple[float, dict[str, float]]], path: Path) -> Path:
    """Each criterion's mean score per session over time (the plan's trend): one line per criterion."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=110)
    ax = fig.subplots()
    xs = list(range(1, len(trend) + 1))
    for i, c in enumerate(dict.fromkeys(c for _, crit in trend for c in crit)):
        pts = [(x, crit[c]) for x, (_, crit) in zip(xs, trend, strict=True) if c in crit]
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", color=PALETTE[i % len(PALETTE)],
                label=LABELS.get(c, c), linewidth=1.8)
    ax.set_xticks(xs, [datetime.fromtimestamp(t).strftime("%d %b\n%H:%M") for t, _ in trend], fontsize=7)
    ax.set_ylim(1, 5)
    ax.axhline(3.5, color="#bbb", linewidth=1, linestyle="--")
    ax.set_ylabel("mean score (1 to 5)")
    ax.set_title("Each criterion by session (the dashed line: the bar a good answer clears)", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis (never mid-word)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut} …"



def session_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history table: one row per stored session, named as a person names it (its id last)."""
    return [{"session": r.get("label", r["scenario"]), "status": r["status"], "answers": r["answered"],
             "mean score": round(r["mean_total"], 2) if r["mean_total"] is not None else None,
             "decision": r.get("decision", ""), "retried": r.get("retries", ""), "model": r["model"], "id": r["id"]}
            for r in rows]


SESSION_COLUMNS = ["session", "status", "answers", "mean score", "decision", "retried", "model", "id"]


# ---------------------------------------------------------------- models

QUESTION_TOKENS = 45  # a panelist's question, about 35 words: what the candidate waits for before reading it


def feels_like(size_bytes: int, fits: bool, bandwidth_gbps: float | None) -> str:
    """What a file will feel like here: about how long each question takes to appear, from the estimated
    writing speed (decoding reads every weight once a token; half the copy bandwidth, as `coach doctor`)."""
    if not fits:
        return "does not fit"
    if not bandwidth_gbps or size_bytes <= 0:
        return "—"
    tps = bandwidth_gbps * 1e9 / 2 / size_bytes
    s = QUESTION_TOKENS / tps
    return f"about {max(1, round(s))} s before each question (~{tps:.0f} tokens/s, estimated)"


def model_rows(rows: list[ModelRow], bandwidth_gbps: float | None = None) -> list[dict[str, Any]]:
    """The models table: every catalog file and registered file, with its size, whether it fits, and
    (given this machine's memory bandwidth) what a panel on it will feel like here."""
    return [{"name": r.name, "installed": "yes" if r.installed else "no", "size GB": round(r.size / 1e9, 2),
             "RAM needed GB": round(r.ram_needed / 1e9, 2), "fits": "yes" if r.fits else "NO",
             **({"what it will feel like here": feels_like(r.size, r.fits, bandwidth_gbps)} if bandwidth_gbps else {}),
             "licence": r.licence + (" (older)" if r.older else "")} for r in rows]


def model_choices(rows: list[ModelRow]) -> list[tuple[str, str]]:
    """A model picker: each installed file with its quant, size and RAM estimate (the value is the name)."""
    return [(f"{r.name} · {r.quant} · {r.size / 1e9:.2f} GB · needs ~{r.ram_needed / 1e9:.1f} GB RAM"
             + ("" if r.fits else " (more than free RAM)"), r.name) for r in rows if r.installed]


BENCH_COLUMNS = ["quant", "gen_tps", "top1", "kl", "size_mb", "pp_tps", "ttft_open_ms", "ttft_follow_ms", "peak_rss_mb",
                 "bandwidth_share", "status", "name", "error"]  # what a user compares first on the left
# what the Benchmark tab calls them (the CSV and JSON keep the field names)
BENCH_LABELS = {"quant": "quantization", "gen_tps": "writing speed (tokens/s)",
                "top1": "same next word as the reference", "kl": "drift from the reference (KL)",
                "size_mb": "file size (MB)", "pp_tps": "reading speed (prompt tokens/s)",
                "ttft_open_ms": "first word, opening question (ms)", "ttft_follow_ms": "first word, follow-up (ms)",
                "peak_rss_mb": "peak memory (MB)", "bandwidth_share": "share of memory bandwidth",
                "status": "status", "name": "file", "error": "why not measured"}
