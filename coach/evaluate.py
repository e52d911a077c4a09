"""How good is the grader? Agreement with a hand-labelled set, and a leave-one-exemplar-out check."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import spearmanr

from coach.config import DATA_DIR
from coach.grader import Grader
from coach.rubrics import Bank, find_question, load_all

LABELLED = DATA_DIR / "labelled.yaml"


@dataclass
class Agreement:
    n: int
    rho: float
    mae: float
    within_one: float


def agreement(human: list[float], model: list[float]) -> Agreement:
    h, m = np.asarray(human, float), np.asarray(model, float)
    rho = float(spearmanr(h, m).statistic) if len(h) > 2 and h.std() > 0 and m.std() > 0 else float("nan")
    return Agreement(len(h), rho, float(np.abs(h - m).mean()), float((np.abs(h - m) <= 1.0).mean()))


def evaluate(grader: Grader, labelled: Path = LABELLED, banks: dict[str, Bank] | None = None) -> dict[str, Any]:
    banks = banks or load_all()
    items = yaml.safe_load(labelled.read_text())["items"]
    rows = []
    for it in items:
        bank, q = find_question(it["q"], banks)
        g = grader.grade(bank, q, it["answer"])
        rows.append({"question": q.id, "kind": it["kind"], "human": float(it["score"]), "model": g.total})
    per_q: dict[str, list[dict[str, Any]]] = defaultdict(list)
    per_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        per_q[r["question"]].append(r)
        per_kind[r["kind"]].append(r)
    pooled = agreement([r["human"] for r in rows], [r["model"] for r in rows])
    return {
        "pooled": pooled,
        "per_question": {k: agreement([r["human"] for r in v], [r["model"] for r in v]) for k, v in per_q.items()},
        "per_kind": {k: (float(np.mean([r["human"] for r in v])), float(np.mean([r["model"] for r in v])))
                     for k, v in per_kind.items()},
        "rows": rows,
        "loeo": leave_one_exemplar_out(grader, banks),
    }


def leave_one_exemplar_out(grader: Grader, banks: dict[str, Bank]) -> dict[str, float]:
    """Grade each exemplar against its question with that exemplar removed: goods should beat bads."""
    good_scores, bad_scores, pairs_won, pairs = [], [], 0, 0
    for bank in banks.values():
        for q in bank.questions:
            g_s: list[float] = []
            b_s: list[float] = []
            for kind in ("good", "bad"):
                items = getattr(q, kind)
                for i, text in enumerate(items):
                    held = q.model_copy(update={kind: items[:i] + items[i + 1:]})
                    (g_s if kind == "good" else b_s).append(grader.grade(bank, held, text).total)
            good_scores += g_s
            bad_scores += b_s
            for a in g_s:
                for b in b_s:
                    pairs += 1
                    pairs_won += a > b
    return {"good_mean": float(np.mean(good_scores)), "bad_mean": float(np.mean(bad_scores)),
            "pairwise_accuracy": pairs_won / max(1, pairs), "n_good": len(good_scores), "n_bad": len(bad_scores)}


def report(result: dict[str, Any]) -> str:
    lines = [f"{'question':28} {'n':>3} {'rho':>6} {'MAE':>5} {'within 1':>8}"]
    for k, a in sorted(result["per_question"].items()):
        lines.append(f"{k:28} {a.n:3d} {a.rho:6.2f} {a.mae:5.2f} {a.within_one:8.0%}")
    p = result["pooled"]
    lines.append(f"{'POOLED':28} {p.n:3d} {p.rho:6.2f} {p.mae:5.2f} {p.within_one:8.0%}")
    lines.append("\nby kind of answer (mean human label -> mean grader score):")
    for k, (h, m) in sorted(result["per_kind"].items()):
        lines.append(f"  {k:10} {h:4.2f} -> {m:4.2f}")
    lo = result["loeo"]
    lines.append(f"\nleave-one-exemplar-out: held-out good {lo['good_mean']:.2f} (n={lo['n_good']}), held-out bad "
                 f"{lo['bad_mean']:.2f} (n={lo['n_bad']}), good beats bad in {lo['pairwise_accuracy']:.0%} of pairs")
    return "\n".join(lines)
