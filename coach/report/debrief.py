"""The debrief as the candidate sees it and keeps it, rendered in one place: the report as Markdown, JSON or
one self-contained HTML file (`coach debrief`, `coach sessions export`, the Debrief tab's downloads), and the
Debrief tab's summary and question-by-question details."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from coach.grading.debrief import Debrief
from coach.grading.rubrics import LABELS
from coach.report.views import clip, criteria_png


def render(d: Debrief, fmt: str, chart_png: bytes | None = None) -> str:
    """The report as `md`, `json` or `html` (the HTML with `chart_png` inlined when given)."""
    if fmt == "html":
        return as_html(d, chart_png)
    return as_markdown(d) if fmt == "md" else as_json(d)

def as_json(d: Debrief) -> str:
    """The report as JSON: the decision, the verdicts, every turn with its grade, the gaps to fix first."""
    return json.dumps({
        "decision": d.decision, "reason": d.reason, "lost": d.lost, "session": d.meta,
        "verdicts": [v.__dict__ for v in d.verdicts], "weak_answers": d.weak_answers,
        "turns": [{"panelist": t.panelist, "question_id": t.question_id, "question": t.question,
                   "answer": t.answer, "grade": t.grade.as_dict(),
                   "retry": t.retry.as_dict() if t.retry is not None else None} for t in d.turns],
        "fix_first": [{k: g[k] for k in ("n", "who", "question", "score", "improvement")} for g in d.costliest()],
        "reveal": [r.as_dict() for r in d.reveal],
        "placement": d.placement.as_dict() if d.placement is not None else None,
        "stories": [{"answer": n, "story": title} for n, title in d.stories],
    }, indent=2, ensure_ascii=False)


def reveal_markdown(d: Debrief, heading: str = "##") -> str:
    """What each panelist was really testing: agenda, hidden priorities, and the sentence that spoke to each."""
    if not d.reveal:
        return ""
    out = [f"{heading} What they were really testing", ""]
    for r in d.reveal:
        out += [f"**{r.name}** wanted to find out: {r.agenda}", ""]
        out += [f"- {s.line}" for s in r.priorities]
        out += [""]
    return "\n".join(out)


def stories_markdown(d: Debrief, heading: str = "##") -> str:
    """Which of your stories each answer told (from your story bank)."""
    if not d.stories:
        return ""
    return f"{heading} Your stories\n\n" + "\n".join(f"- Answer {n} told “{title}”" for n, title in d.stories) + "\n"


def level_markdown(d: Debrief, heading: str = "##") -> str:
    """The estimated level band, its evidence and what would move it up."""
    if d.placement is None:
        return ""
    return f"{heading} Level (an estimate)\n\n{d.placement.summary()}\n"

def as_markdown(d: Debrief) -> str:
    """The report to keep, as Markdown."""
    out = [f"# Debrief: {d.decision}", "", f"*{d.heading}*" if d.heading else "", "", d.reason, ""]
    if d.costliest():
        out += ["## Fix these first", ""]
        out += [f"{i}. **Question {g['n']}** ({g['who']}, {g['score']:.1f}/5): {g['improvement']}"
                for i, g in enumerate(d.costliest(), 1)]
        out += [""]
    if d.placement is not None:
        out += [level_markdown(d), ""]
    out += ["## Panelists", ""]
    for v in d.verdicts:
        out += [f"### {v.name}: {v.verdict} ({v.score:.2f}/5 over {v.turns} answer(s))", "",
                "| criterion | score |", "| --- | --- |"]
        out += [f"| {LABELS.get(c, c)} | {s:.2f} |" for c, s in v.criteria.items()]
        out += ["", f"- For: \"{v.evidence_for}\"", f"- Against: \"{v.evidence_against}\"",
                f"- Weakest: {LABELS.get(v.weakest, v.weakest)}", ""]
    if d.turns:
        out += ["## Question by question", ""]
        for q in d.questions():
            crit = ", ".join(f"{LABELS.get(c, c)} {v:.1f}" for c, v in q["criteria"].items())
            again = f" → {q['retry']:.2f} when answered again" if q["retry"] is not None else ""
            out += [f"**{q['n']}. {q['who']}: {q['question']}** ({q['score']:.2f}/5{again})", "",
                    f"> {q['answer']}", "",
                    f"- {crit}", f"- Delivery: {q['delivery']}", f"- Next time: {q['improvement']}", ""]
    if d.reveal:
        out += [reveal_markdown(d), ""]
    if d.stories:
        out += [stories_markdown(d), ""]
    if d.weak_answers:
        out += ["## Weak answers and what good looks like", ""]
        for w in d.weak_answers:
            out += [f"**{w['question']}** ({w['score']:.2f}/5)", "", f"> {w['answer']}", "",
                    f"Better: {w['exemplar']}", "", f"Next time: {w['improvement']}", ""]
    return "\n".join(out)

def as_html(d: Debrief, chart_png: bytes | None = None) -> str:
    """One self-contained file: inline CSS, the chart inlined as data, no scripts, no external fonts."""
    e = html.escape
    chart = (f"<img alt='Per-criterion scores by panelist' style='max-width:100%' src='data:image/png;base64,"
             f"{base64.b64encode(chart_png).decode()}'>" if chart_png else "")
    rows = "".join(
        f"<tr><td class='n'>{q['n']}</td><td><b>{e(q['who'])}</b>: {e(q['question'])}<blockquote>"
        f"{e(q['answer'])}</blockquote><small>{e(q['delivery'])}</small><p><b>Next time:</b> "
        f"{e(q['improvement'])}</p></td><td><b>{q['score']:.2f}</b>"
        + (f" → <b>{q['retry']:.2f}</b> <small>answered again</small>" if q["retry"] is not None else "")
        + "".join(
            f"<div class='row mini'><span>{e(LABELS.get(c, c))}</span><div class='bar'><i style='width:"
            f"{(v - 1) / 4 * 100:.0f}%'></i></div><b>{v:.1f}</b></div>" for c, v in q["criteria"].items())
        + "</td></tr>" for q in d.questions())
    table = (f"<h2>Question by question</h2><table><tr><th>#</th><th>Question and answer</th><th>Score</th></tr>"
             f"{rows}</table>" if rows else "")
    colour = {"Strong Yes": "#1b7f3b", "Yes": "#5a8f29", "No": "#b86e00", "Strong No": "#b3261e"}
    cards = []
    for v in d.verdicts:
        bars = "".join(
            f"<div class='row'><span>{e(LABELS.get(c, c))}</span><div class='bar'>"
            f"<i style='width:{(s - 1) / 4 * 100:.0f}%'></i></div><b>{s:.1f}</b></div>" for c, s in v.criteria.items())
        cards.append(
            f"<section class='card'><h2>{e(v.name)} <span class='pill' style='background:{colour[v.verdict]}'>"
            f"{e(v.verdict)}</span></h2><p class='score'>{v.score:.2f} / 5 over {v.turns} answer(s)</p>{bars}"
            f"<p><b>For:</b> “{e(v.evidence_for)}”</p><p><b>Against:</b> “{e(v.evidence_against)}”</p></section>")
    first = "".join(f"<li><b>Question {g['n']}</b> ({e(g['who'])}, {g['score']:.1f}/5): {e(g['improvement'])}</li>"
                    for g in d.costliest())
    first = f"<section class='card'><h2>Fix these first</h2><ol>{first}</ol></section>" if first else ""
    level = (f"<section class='card'><h2>Level <small>(an estimate)</small></h2><p>{e(d.placement.summary())}</p>"
             f"</section>" if d.placement is not None else "")
    hidden = "".join(
        f"<section class='card'><h3>{e(r.name)}</h3><p><b>Wanted to find out:</b> {e(r.agenda)}</p><ul>"
        + "".join(f"<li>{e(x.priority)} — " + (f"answer {x.n} (to {e(x.asked_by)}, {x.score:.1f}/5): "
                                               f"<q>{e(x.quote)}</q>" if x.quote is not None else "<i>not shown</i>")
                  + "</li>" for x in r.priorities) + "</ul></section>" for r in d.reveal)
    hidden = f"<h2>What they were really testing</h2>{hidden}" if hidden else ""
    if d.stories:
        hidden += ("<section class='card'><h2>Your stories</h2><ul>"
                   + "".join(f"<li>Answer {n} told “{e(t)}”</li>" for n, t in d.stories) + "</ul></section>")
    weak = "".join(
        f"<section class='card'><h3>{e(w['question'])} <small>{w['score']:.2f}/5</small></h3>"
        f"<blockquote>{e(w['answer'])}</blockquote><p><b>Better:</b> {e(w['exemplar'])}</p>"
        f"<p><b>Next time:</b> {e(w['improvement'])}</p></section>" for w in d.weak_answers)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Debrief: {e(d.decision)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#1d1d1f;padding:0 1em}}
.card{{border:1px solid #ddd;border-radius:10px;padding:1em 1.2em;margin:1em 0}}
.pill{{color:#fff;border-radius:999px;padding:.15em .7em;font-size:.8em;vertical-align:middle}}
.row{{display:grid;grid-template-columns:12em 1fr 3em;gap:.6em;align-items:center;margin:.3em 0}}
.bar{{background:#eee;border-radius:4px;height:.8em}}.bar i{{display:block;height:100%;background:#4062bb;border-radius:4px}}
blockquote{{border-left:3px solid #ccc;margin:.5em 0;padding-left:.8em;color:#444}}.score{{color:#555}}
table{{border-collapse:collapse;width:100%}}
td,th{{border-top:1px solid #ddd;padding:.6em;vertical-align:top;text-align:left}}
.mini{{grid-template-columns:9em 6em 2em;font-size:.8em}}.meta{{color:#555}}td.n{{white-space:nowrap}}</style></head>
<body><h1>Debrief: {e(d.decision)}</h1><p class='meta'>{e(d.heading)}</p><p>{e(d.reason)}</p>{first}{level}{chart}
{''.join(cards)}{hidden}{table}
{'<h2>Weak answers and what good looks like</h2>' + weak if weak else ''}</body></html>"""


def debrief_files(d: Debrief, out_dir: Path, colours: dict[str, str]) -> dict[str, Path]:
    """The debrief's chart (png) and its report as Markdown, JSON and one self-contained HTML file (the
    chart inside), each named after the session, in `out_dir`, by extension."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"debrief-{d.meta['session']}" if d.meta.get("session") else "debrief"
    png = criteria_png(d, colours)
    paths = {"png": out_dir / f"{stem}.png"}
    paths["png"].write_bytes(png)
    for ext in ("md", "json", "html"):
        paths[ext] = out_dir / f"{stem}.{ext}"
        paths[ext].write_text(render(d, ext, png), encoding="utf-8")
    return paths


def fix_first(d: Debrief) -> str:
    """The three costliest gaps across the panel, each with its question, who asked it and its fix."""
    gaps = d.costliest()
    if not gaps:
        return ""
    items = "\n".join(f"{i}. **Question {g['n']}** — {g['who']} asked “{clip(g['question'], 110)}” ({_score(g)}/5). "
                      f"{g['improvement']}" for i, g in enumerate(gaps, 1))
    head = "Fix this one first" if len(gaps) == 1 else f"Fix these {['two', 'three'][len(gaps) - 2]} first"
    return f"### {head}\n\n{items}"


def debrief_markdown(d: Debrief) -> str:
    """The decision with the session's heading, the three gaps to fix first, and each panelist's verdict
    with its evidence."""
    verdicts = "\n".join(f"- **{v.name}**: {v.verdict} ({v.score:.2f}/5) — for: “{v.evidence_for}” · "
                         f"against: “{v.evidence_against}”" for v in d.verdicts)
    head = f"*{d.heading}*\n\n" if d.heading else ""
    first = fix_first(d)
    level = level_markdown(d, "###")
    hidden = reveal_markdown(d, "###") + (f"\n\n{stories_markdown(d, '###')}" if d.stories else "")
    return (f"## {d.decision}\n\n{head}{d.reason}\n\n" + (f"{first}\n\n" if first else "")
            + (f"### The panel\n\n{verdicts}" if first and verdicts else verdicts)
            + (f"\n\n{level}" if level else "") + (f"\n\n{hidden}" if hidden else ""))


def _score(q: dict[str, Any]) -> str:
    return f"{q['score']:.1f}" + (f" → {q['retry']:.1f}" if q["retry"] is not None else "")


def debrief_details(d: Debrief) -> str:
    """Question by question (who asked, score, before -> after for a retried one, and the fix), then the
    weak answers next to what good looks like."""
    rows = "\n".join(f"| {q['n']} | {q['who']} | {clip(q['question'], 160)} | {_score(q)} | "
                     f"{clip(q['improvement'], 160)} | {q['delivery'].replace('|', '/')} |" for q in d.questions())
    table = (f"### Question by question\n\n| # | asked by | question | /5 | next time | delivery |\n"
             f"|---|---|---|---|---|---|\n{rows}" if rows else "")
    weak = "\n\n".join(f"**{w['question']}** ({w['score']:.2f}/5)\n\n> {w['answer']}\n\nBetter: {w['exemplar']}\n\n"
                       f"Next time: {w['improvement']}" for w in d.weak_answers)
    return table + (f"\n\n### Weak answers\n\n{weak}" if weak else "")
