"""The benchmark's plot: speed against memory per quantization, as a PNG and a self-contained page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coach.bench.rows import BenchRow


def _label_offsets(ok: list[BenchRow], gb: list[float], width: float = 400, height: float = 245) -> list[tuple[int, int]]:
    """Where each point's label goes (offset in points): right-above, right-below, left-above or
    left-below, whichever first clears the labels already placed and the other points."""
    def span(vs: list[float]) -> tuple[float, float]:
        return min(vs), (max(vs) - min(vs)) or 1.0

    (x0, dx), (y0, dy) = span(gb), span([r.gen_tps for r in ok])
    pts = [((x - x0) / dx * width, (r.gen_tps - y0) / dy * height) for r, x in zip(ok, gb, strict=True)]
    boxes: list[tuple[float, float, float, float]] = []
    offsets = []
    for i, (r, (px, py)) in enumerate(zip(ok, pts, strict=True)):
        w = 5.2 * len(r.quant)
        choice = (7, 5)
        for ox, oy in ((7, 5), (7, -13), (-7 - w, 5), (-7 - w, -13)):
            box = (px + ox, py + oy, px + ox + w, py + oy + 9)
            clear = all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in boxes)
            clear = clear and all(not (box[0] - 5 < qx < box[2] + 5 and box[1] - 5 < qy < box[3] + 5)
                                  for j, (qx, qy) in enumerate(pts) if j != i)
            if clear:
                choice = (round(ox), oy)
                break
        boxes.append((px + choice[0], py + choice[1], px + choice[0] + w, py + choice[1] + 9))
        offsets.append(choice)
    return offsets


def bench_plot(rows: list[BenchRow], out: Path, recommendation: str) -> None:
    """Speed against size, coloured by quality: a PNG and a self-contained interactive HTML page."""
    from matplotlib.figure import Figure  # no pyplot: its global state is not safe across UI worker threads

    ok = [r for r in rows if r.status == "ok"]
    fig = Figure(figsize=(7, 4.2), dpi=120)
    ax = fig.subplots()
    gb = [r.size_mb * 2**20 / 1e9 for r in ok]
    sc = ax.scatter(gb, [r.gen_tps for r in ok], c=[(r.top1 or 0) * 100 for r in ok],
                    cmap="viridis", vmin=min(80.0, min((r.top1 or 0) * 100 for r in ok)), vmax=100, s=70)
    for r, x, off in zip(ok, gb, _label_offsets(ok, gb), strict=True):
        ax.annotate(r.quant, (x, r.gen_tps), textcoords="offset points", xytext=off, fontsize=8)
    ax.set_xlabel("file size (GB)")
    ax.set_ylabel("generation (tokens/s)")
    ax.set_title("Speed against size; colour = top-1 agreement with the reference (%)")
    fig.colorbar(sc, ax=ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "plot.png")
    # Interactive HTML: inline SVG, hover titles, no scripts or fonts from anywhere else.
    w, h, pad = 640, 360, 50
    xs, ys = gb, [r.gen_tps for r in ok]
    x0, x1 = 0.0, max(xs) * 1.1 or 1
    y0, y1 = 0.0, max(ys) * 1.15 or 1
    dots = []
    for r, x, y in zip(ok, xs, ys, strict=True):
        cx = pad + (x - x0) / (x1 - x0) * (w - 2 * pad)
        cy = h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad)
        g = int(80 + 175 * (r.top1 or 0))
        tip = (f"{r.quant}: {r.gen_tps:.1f} tok/s, prompt {r.pp_tps:.0f} tok/s, {x:.2f} GB, top-1 "
               f"{(r.top1 or 0):.1%}, KL {(r.kl or 0):.4f}, TTFT {r.ttft_open_ms:.0f} ms, RSS {r.peak_rss_mb:.0f} MB")
        dots.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='7' fill='rgb(40,{g},120)'><title>{html.escape(tip)}"
                    f"</title></circle><text x='{cx + 9:.1f}' y='{cy - 6:.1f}' font-size='11'>{html.escape(r.quant)}</text>")
    page = (f"<!doctype html><meta charset='utf-8'><title>coach bench</title><body style='font-family:system-ui'>"
            f"<h2>Speed against size</h2><p>{html.escape(recommendation)}</p>"
            f"<svg width='{w}' height='{h}' style='border:1px solid #ddd'>"
            f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#333'/>"
            f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{h - pad}' stroke='#333'/>"
            f"<text x='{w / 2}' y='{h - 12}' font-size='12'>file size (GB), 0 to {x1:.2f}</text>"
            f"<text x='8' y='{pad - 12}' font-size='12'>tokens/s, 0 to {y1:.1f}</text>{''.join(dots)}</svg>"
            f"<p>Hover a point for its numbers.</p></body>")
    (out / "plot.html").write_text(page)
