"""How good is the grader? Agreement with hand-labelled sets, against a plain-similarity baseline.

Two sets in different styles: the built-in one (interview answers on the project's own rubrics, labelled
1-5) and a technical one (short answers on a user-style bank with reference answers, labelled 0-5). For
each the report gives the grader's Pearson r, Spearman rho and MAE, and the same for the baseline every
grader must beat: the answer's maximum cosine to a good exemplar (or the reference), nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import pearsonr, spearmanr

from coach.config import DATA_DIR
from coach.grading.grader import Grader
from coach.grading.rubrics import Bank, find_question, load_all, load_bank
from coach.textfiles import read_text

LABELLED = DATA_DIR / "labelled.yaml"
TECHNICAL_BANK = DATA_DIR / "eval" / "technical.yaml"
TECHNICAL_LABELLED = DATA_DIR / "eval" / "technical_labelled.yaml"


@dataclass
class Agreement:
    n: int
    r: float  # Pearson
    rho: float  # Spearman
    mae: float  # on the grader's 1-5 scale (labels on another scale are mapped onto it linearly)
    within_one: float


def agreement(human: list[float], model: list[float], scale: tuple[float, float] = (1, 5)) -> Agreement:
    h, m = np.asarray(human, float), np.asarray(model, float)
    h15 = 1 + 4 * (h - scale[0]) / (scale[1] - scale[0])
    ok = len(h) > 2 and h.std() > 0 and m.std() > 0
    rho = float(spearmanr(h, m).statistic) if ok else float("nan")
    r = float(pearsonr(h, m).statistic) if ok else float("nan")
    return Agreement(len(h), r, rho, float(np.abs(h15 - m).mean()), float((np.abs(h15 - m) <= 1.0).mean()))


@dataclass
class EvalSet:
    name: str
    banks: dict[str, Bank]
    labelled: Path

    @classmethod
    def builtin(cls, labelled: Path = LABELLED) -> EvalSet:
        return cls("built-in interview set", load_all(), labelled)

    @classmethod
    def technical(cls) -> EvalSet:
        b = load_bank(TECHNICAL_BANK)
        return cls("technical short answers", {b.bank: b}, TECHNICAL_LABELLED)


def evaluate(grader: Grader, labelled: Path = LABELLED, banks: dict[str, Bank] | None = None) -> dict[str, Any]:
    """The grader and the baseline on one labelled set (the built-in one by default)."""
    banks = banks or load_all()
    data = yaml.safe_load(read_text(labelled, "labelled set"))
    lo, hi = data.get("scale", (1, 5))
    scale = (float(lo), float(hi))
    rows = []
    for it in data["items"]:
        bank, q = find_question(it["q"], banks)
        g = grader.grade(bank, q, it["answer"])
        rows.append({"question": q.id, "kind": it["kind"], "human": float(it["score"]), "model": g.total,
                     "baseline": grader.max_good_cosine(q, it["answer"])})
    per_q: dict[str, list[dict[str, Any]]] = defaultdict(list)
    per_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        per_q[r["question"]].append(r)
        per_kind[r["kind"]].append(r)
    hum = [r["human"] for r in rows]
    return {
        "scale": scale,
        "pooled": agreement(hum, [r["model"] for r in rows], scale),
        "baseline": agreement(hum, [r["baseline"] for r in rows], scale),
        "per_question": {k: agreement([r["human"] for r in v], [r["model"] for r in v], scale)
                         for k, v in per_q.items()},
        "per_kind": {k: (float(np.mean([r["human"] for r in v])), float(np.mean([r["model"] for r in v])))
                     for k, v in per_kind.items()},
        "rows": rows,
        "loeo": leave_one_exemplar_out(grader, banks),
    }


def evaluate_sets(grader: Grader, sets: list[EvalSet]) -> dict[str, dict[str, Any]]:
    return {s.name: evaluate(grader, s.labelled, s.banks) for s in sets}


def leave_one_exemplar_out(grader: Grader, banks: dict[str, Bank]) -> dict[str, float]:
    """Grade each exemplar against its question with that exemplar removed: goods should beat bads."""
    good_scores, bad_scores, pairs_won, pairs = [], [], 0, 0
    for bank in banks.values():
        for q in bank.questions:
            g_s, b_s = grader.held_out_totals(bank, q)
            good_scores += g_s
            bad_scores += b_s
            for a in g_s:
                for b in b_s:
                    pairs += 1
                    pairs_won += a > b
    return {"good_mean": float(np.mean(good_scores)), "bad_mean": float(np.mean(bad_scores)),
            "pairwise_accuracy": pairs_won / max(1, pairs), "n_good": len(good_scores), "n_bad": len(bad_scores)}


def confident_wrong(results: dict[str, dict[str, Any]]) -> tuple[int, float]:
    """How many answers of kind `wrong` (confident, right vocabulary, false) across the sets, and their mean."""
    scores = [r["model"] for res in results.values() for r in res["rows"] if r["kind"] == "wrong"]
    return len(scores), float(np.mean(scores)) if scores else float("nan")


def report(result: dict[str, Any]) -> str:
    """One set: per question, pooled, the baseline, by kind, and leave-one-exemplar-out."""
    lines = [f"{'question':28} {'n':>3} {'r':>6} {'rho':>6} {'MAE':>5} {'within 1':>8}"]
    for k, a in sorted(result["per_question"].items()):
        lines.append(f"{k:28} {a.n:3d} {a.r:6.2f} {a.rho:6.2f} {a.mae:5.2f} {a.within_one:8.0%}")
    p, b = result["pooled"], result["baseline"]
    lines.append(f"{'POOLED (the grader)':28} {p.n:3d} {p.r:6.2f} {p.rho:6.2f} {p.mae:5.2f} {p.within_one:8.0%}")
    lines.append(f"{'baseline: max good cosine':28} {b.n:3d} {b.r:6.2f} {b.rho:6.2f} {'':>5} {'':>8}")
    lo, hi = result["scale"]
    lines.append(f"\nby kind of answer (mean human label on {lo:g}-{hi:g} -> mean grader score on 1-5):")
    for k, (h, m) in sorted(result["per_kind"].items()):
        lines.append(f"  {k:10} {h:4.2f} -> {m:4.2f}")
    lo_ = result["loeo"]
    lines.append(f"\nleave-one-exemplar-out: held-out good {lo_['good_mean']:.2f} (n={lo_['n_good']}), held-out bad "
                 f"{lo_['bad_mean']:.2f} (n={lo_['n_bad']}), good beats bad in {lo_['pairwise_accuracy']:.0%} of pairs")
    return "\n".join(lines)


def report_sets(results: dict[str, dict[str, Any]]) -> str:
    """Both sets side by side, then each in full."""
    lines = [f"{'set':26} {'n':>4} {'grader r':>9} {'rho':>6} {'baseline r':>11} {'rho':>6} {'gain in r':>10}"]
    for name, res in results.items():
        p, b = res["pooled"], res["baseline"]
        lines.append(f"{name:26} {p.n:4d} {p.r:9.2f} {p.rho:6.2f} {b.r:11.2f} {b.rho:6.2f} {p.r - b.r:+10.2f}")
    n, mean = confident_wrong(results)
    lines.append(f"confident wrong answers (both sets): n={n}, mean grader score {mean:.2f} (goal: at most 1.5)")
    for name, res in results.items():
        lines += ["", f"== {name} ==", report(res)]
    return "\n".join(lines)
