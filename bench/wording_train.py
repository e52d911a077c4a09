"""Train the learned wording check (`coach/wording/learned.py`) on the labelled corpus.

Every sentence of every voicing of the chosen sets is read by the real `Judge` of its action (one replay per
action through the real `Interview`, as `bench/wording_bench.py` does): `Judge.signals` gives its MiniLM
vector and how it sits in its turn, and each sentence gets how close it comes to the other sentences' slips
and good ones (never to itself). A sentence is a slip when it overlaps a bad voicing's offending span; every
sentence of a good voicing is not (a bad voicing's other sentences are left out: most are the proper
question, some carry the slip's context). A logistic regression (scikit-learn, here only) is fitted. The
threshold comes from cross-validation over whole actions, on sentences of actions the fold never saw: the
lowest that refuses at most `--good-refused` of good sentences. The file holds the weights
(standardisation folded in), the bias, the threshold and the bank of sentence vectors.

    .venv/bin/python bench/wording_train.py [--exclude fresh4] [--good-refused 0.10] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wording_corpus import DATA, FRESH_SETS, Item, ReplayGrader, load_actions, load_items, replay  # noqa: E402
from coach.store import Store  # noqa: E402
from coach.wording.learned import DIM, WEIGHTS, nearest  # noqa: E402
from coach.wording.sentences import asks, split  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "coach" / "data" / WEIGHTS
SETS = {"dev": DATA / "voicings.yaml", **FRESH_SETS}


def collect(items: list[Item], actions: dict) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple[Item, str]]]:
    """(signals, slip or not, action, (item, sentence)) for every labelled sentence."""
    grader = ReplayGrader()
    store = Store(Path(tempfile.mkdtemp()) / "train.db")
    by_action: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_action[it.action].append(it)
    xs, ys, groups, meta = [], [], [], []
    for n, (aid, its) in enumerate(sorted(by_action.items())):
        _, _, iv = replay(actions[aid], "", grader, store)
        assert iv.voicing is not None
        judge = iv.voicing.judge
        for it in its:
            before, asked, pos = "", False, 0
            off = it.text.find(it.offending) if it.label == "bad" and it.offending else -1
            for sent in split(it.text):
                start, end = pos, pos + len(sent)
                pos = end
                slip = off >= 0 and min(end, off + len(it.offending)) - max(start, off) >= 3
                if it.label == "good" or slip:
                    xs.append(judge.signals(sent, before, asked))
                    ys.append(slip)
                    groups.append(aid)
                    meta.append((it, sent.strip()))
                before += sent
                asked = asked or asks(sent)
        print(f"\r{n + 1}/{len(by_action)} actions", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.stack(xs), np.asarray(ys), groups, meta


def fit(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000)).fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: list[str], c: float, folds: int = 5) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    p = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(x, y, groups):
        p[te] = fit(x[tr], y[tr], c).predict_proba(x[te])[:, 1]
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="dev,fresh,fresh2,fresh3,fresh4", help="the sets to train on")
    ap.add_argument("--exclude", default="", help="sets left out (to measure on them afterwards)")
    ap.add_argument("--good-refused", type=float, default=0.10, help="the share of good sentences it may refuse")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from sklearn.metrics import roc_auc_score

    names = [s for s in args.sets.split(",") if s and s not in args.exclude.split(",")]
    actions = load_actions()
    items = [it for s in names for it in load_items(SETS[s])]
    x, y, groups, meta = collect(items, actions)
    bank = x[:, :DIM]
    texts = np.asarray([m[1] for m in meta])
    x = np.hstack([x, nearest(bank, bank, y, skip=texts[:, None] == texts[None, :])])  # never itself
    print(f"sets {', '.join(names)}: {len(items)} voicings, {len(y)} sentences ({int(y.sum())} slips) over "
          f"{len(set(groups))} actions")
    best = None
    for c in (0.01, 0.03, 0.1):
        p = out_of_fold(x, y, groups, c)
        auc = roc_auc_score(y, p)
        print(f"C={c}: cross-validated AUC {auc:.3f}")
        if best is None or auc > best[0]:
            best = (auc, c, p)
    assert best is not None
    auc, c, p = best
    good = np.sort(p[~y])
    thr = float(good[int(np.ceil(len(good) * (1 - args.good_refused))) - 1])
    caught = p[y] > thr
    items_bad = {id(m[0]) for m, s in zip(meta, y, strict=True) if s}
    items_caught = {id(m[0]) for m, s, q in zip(meta, y, p, strict=True) if s and q > thr}
    print(f"chosen C={c}, threshold {thr:.3f}: across folds it refuses {np.mean(p[~y] > thr):.1%} of good "
          f"sentences and catches {caught.mean():.1%} of slip sentences ({len(items_caught)} of {len(items_bad)} bad "
          "voicings have a slip sentence caught)")
    for m, q in sorted(((m, q) for m, s, q in zip(meta, y, p, strict=True) if not s and q > thr), key=lambda t: -t[1])[:12]:
        print(f"  good refused p={q:.2f}: {m[1]}")
    model = fit(x, y, c)
    sc, lr = model.named_steps["standardscaler"], model.named_steps["logisticregression"]
    w = lr.coef_[0] / sc.scale_
    b = float(lr.intercept_[0] - (lr.coef_[0] * sc.mean_ / sc.scale_).sum())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, w=w.astype(np.float32), b=np.float32(b), threshold=np.float32(thr),
                        bank=bank.astype(np.float16), bank_slip=y, trained_on=np.asarray(",".join(names)))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
