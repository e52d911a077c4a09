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


# ------------------------------------------------------------------ SemEval-2013 (public, correct/incorrect)


def semeval_rows(grader: Grader, splits: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Every answer of every split graded, with the max-cosine baseline beside it (same exemplars)."""
    from coach.grading.answer import claims, split_sentences
    from coach.grading.semeval import MemoEmbedder

    emb = grader.embedder
    if isinstance(emb, MemoEmbedder):  # one batch for every text the grades will ask for
        from coach.grading.points import terms

        texts = [it.answer for sp in splits for it in sp.items]
        refs = [t for sp in splits for q in sp.bank.questions for t in (*q.good, *q.bad)]
        emb.prime([*texts, *(u for t in texts for u in claims(split_sentences(t)))])
        emb.prime(sorted({w for t in (*texts, *refs) for w in terms(t)}))  # the words negation is read around
    out: dict[str, list[dict[str, Any]]] = {}
    for sp in splits:
        rows = []
        for it in sp.items:
            g = grader.grade(sp.bank, it.question, it.answer)
            rows.append({"q": it.question.id, "correct": it.correct, "model": g.total,
                         "baseline": grader.max_good_cosine(it.question, it.answer), "words": len(it.answer.split())})
        out[sp.name] = rows
    return out


def semeval_table(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per split: AUC and accuracy of the grader and of the baseline (each cut chosen on training), and
    the correlation of each with word count beside the labels' own."""
    from coach.grading.semeval import auc, best_threshold, pearson

    def arr(rs: list[dict[str, Any]], k: str) -> np.ndarray:
        return np.array([r[k] for r in rs], float)

    train = [r for name, rs in rows.items() if name.endswith("training") for r in rs]
    cut = {k: best_threshold(arr(train, k), arr(train, "correct").astype(bool)) if train else 3.0
           for k in ("model", "baseline")}
    groups: dict[str, list[dict[str, Any]]] = dict(rows)
    for kind in ("training", "unseen-answers", "unseen-questions", "unseen-domains"):
        pooled = [r for name, rs in rows.items() if name.endswith(kind) for r in rs]
        if pooled and sum(name.endswith(kind) for name in rows) > 1:
            groups[f"all {kind}"] = pooled
    table = {}
    for name, rs in groups.items():
        y, w = arr(rs, "correct"), arr(rs, "words")
        table[name] = {"n": len(rs), "correct_share": float(y.mean()),
                       **{f"auc_{k}": auc(arr(rs, k), y.astype(bool)) for k in ("model", "baseline")},
                       **{f"acc_{k}": float(((arr(rs, k) >= cut[k]) == y.astype(bool)).mean())
                          for k in ("model", "baseline")},
                       "words_model": pearson(arr(rs, "model"), w), "words_baseline": pearson(arr(rs, "baseline"), w),
                       "words_labels": pearson(y, w)}
    table["_cuts"] = cut
    return table


def report_semeval(table: dict[str, dict[str, float]]) -> str:
    cut = table["_cuts"]
    lines = ["SemEval-2013 Task 7, 2-way (Dzikovska et al., 2013): correct vs incorrect; cuts chosen on training "
             f"(grader {cut['model']:.2f}, baseline {cut['baseline']:.3f})",
             f"{'split':34} {'n':>5} {'AUC':>6} {'base AUC':>9} {'acc':>6} {'base acc':>9} "
             f"{'r(words): grader':>17} {'base':>6} {'labels':>7}"]
    for name, t in table.items():
        if name.startswith("_"):
            continue
        lines.append(f"{name:34} {t['n']:5d} {t['auc_model']:6.3f} {t['auc_baseline']:9.3f} {t['acc_model']:6.1%} "
                     f"{t['acc_baseline']:9.1%} {t['words_model']:17.2f} {t['words_baseline']:6.2f} "
                     f"{t['words_labels']:7.2f}")
    return "\n".join(lines)


# ------------------------------------------------------------------ held-out truthfulness and adversarial sets


def _load_items(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(read_text(path, "labelled set"))
    return list(data["items"])


def truth_check(grader: Grader, path: Path, banks: dict[str, Bank] | None = None) -> dict[str, Any]:
    """Strong answers (each lists the key points it `makes`): how often the tip names a point the answer made.
    Weak answers: whether the tip names a real gap (a point the answer does not make, a weak spot, a false
    claim), never a sharpening."""
    banks = banks or load_all()
    rows = []
    for it in _load_items(path):
        bank, q = find_question(it["q"], banks)
        g = grader.grade(bank, q, it["answer"])
        made = set(it.get("makes") or [])
        named = [i for i, k in enumerate(q.key_points) if k.text in g.improvement]
        rows.append({"q": q.id, "kind": it["kind"], "total": g.total, "tip": g.improvement,
                     "names_made": any(i in made for i in named),
                     "names_gap": (not g.improvement.startswith("Sharpen")
                                   and (any(i not in made for i in named) or not named))})
    strong = [r for r in rows if r["kind"] == "strong"]
    weak = [r for r in rows if r["kind"] == "weak"]
    return {"rows": rows, "n_strong": len(strong), "n_weak": len(weak),
            "made_named": sum(r["names_made"] for r in strong), "weak_gap": sum(r["names_gap"] for r in weak),
            "strong_mean": float(np.mean([r["total"] for r in strong])) if strong else float("nan"),
            "weak_mean": float(np.mean([r["total"] for r in weak])) if weak else float("nan")}


def adversarial_check(grader: Grader, path: Path, banks: dict[str, Bank] | None = None) -> dict[str, Any]:
    """Negated and fluent wrong answers (rubrics without `wrong:` entries), honest "don't know + approach",
    rambles and bullet fragments: each graded, and per question whether the honest one beats both bluffs."""
    banks = banks or load_all()
    rows = []
    for it in _load_items(path):
        bank, q = find_question(it["q"], banks)
        rows.append({"q": q.id, "kind": it["kind"], "total": grader.grade(bank, q, it["answer"]).total})
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r["total"])
    per_q: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        per_q[r["q"]][r["kind"]] = r["total"]
    triples = [d for d in per_q.values() if {"negated", "fluent_wrong", "idk_approach"} <= set(d)]
    return {"rows": rows, "by_kind": dict(by_kind),
            "honest_wins": sum(d["idk_approach"] > max(d["negated"], d["fluent_wrong"]) for d in triples),
            "triples": len(triples)}


def report_heldout(truth: dict[str, Any] | None, adv: dict[str, Any] | None) -> str:
    lines = []
    if truth:
        lines += [f"truthfulness set: strong answers whose tip names a point they made: {truth['made_named']} of "
                  f"{truth['n_strong']} (goal: at most 1 in 20); weak answers whose tip names a real gap: "
                  f"{truth['weak_gap']} of {truth['n_weak']} (goal: all); mean score strong {truth['strong_mean']:.2f}, "
                  f"weak {truth['weak_mean']:.2f}"]
    if adv:
        lines.append("adversarial set (rubrics without `wrong:` entries):")
        for k, v in sorted(adv["by_kind"].items()):
            lines.append(f"  {k:13} n={len(v):3d} mean {np.mean(v):.2f} max {max(v):.2f} at most 2.5: "
                         f"{sum(x <= 2.5 for x in v)}")
        lines.append(f"  honest 'don't know + approach' above both the negated and the fluent wrong answer: "
                     f"{adv['honest_wins']} of {adv['triples']} questions")
    return "\n".join(lines)
