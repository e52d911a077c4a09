"""`coach plan` and `coach stories`: the plan for your weak spots and its drill, and your story bank."""

from __future__ import annotations

import argparse
import sys
import time

from coach.config import Settings
from coach.report.views import clip


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from coach.prep.plan import GOOD, REVIEWS_D, build_plan, criterion_label
    from coach.store import Store

    store = Store.open_default(settings.home, readonly=not args.drill)
    plan = build_plan(store)
    now = time.time()
    if not plan.items:
        print("Nothing graded yet: rehearse a round first (coach rehearse, or the browser's Panel tab).")
        return 0
    planned, due = plan.planned, plan.due(now)
    days = ", ".join(str(d) for d in REVIEWS_D)
    print(f"Your plan: {len(planned)} question{'s' * (len(planned) != 1)} to work on, {len(due)} due now "
          f"(a score under {GOOD} brings a question back after {days} days; a good one moves it on)\n")
    if planned:
        print(f"{'DUE':10} {'LAST':>5} {'TRIES':>5}  {'WEAKEST':22} QUESTION")
        for i in planned:
            print(f"{i.when(now):10} {i.last.total:5.2f} {len(i.attempts):5d}  "
                  f"{criterion_label(i.weakest_criterion):22} {i.question_id}: {clip(i.text, 90)}")
    if plan.learned:
        print(f"\nOut of the plan after the {REVIEWS_D[-1]}-day review: " + ", ".join(i.question_id for i in plan.learned))
    print("\nCriteria, lowest first: " + "; ".join(f"{criterion_label(c)} {m:.2f} ({n} answers)"
                                                   for c, m, n in plan.criteria))
    if len(plan.trend) > 1:
        crits = [c for c, _, _ in plan.criteria]
        print("\nBy session, oldest first:")
        print(f"{'SESSION':24} " + " ".join(f"{criterion_label(c)[:12]:>12}" for c in crits))
        for t in plan.trend:
            print(f"{t.session_id:24} " + " ".join(f"{t.criteria[c]:12.2f}" if c in t.criteria else f"{'-':>12}"
                                                   for c in crits))
    if not args.drill:
        if planned:
            print("\nDrill the due ones: coach plan --drill (add --practice for hints)")
        return 0
    if not planned:
        print("\nNothing to drill: every question you answered is at the bar.")
        return 0
    return _drill(plan, now, args, settings, store)


def _drill(plan, now: float, args: argparse.Namespace, settings: Settings, store) -> int:  # noqa: ANN001
    from coach.cli.panel import _interview_parts, _run
    from coach.interview.session import Interview

    items, early = plan.drill(now)
    if early:
        print(f"\nNothing is due yet; drilling the {len(items)} soonest due now instead.")
    store.close()
    ref, backend, grader, store = _interview_parts(settings)
    practice = bool(args.practice)
    iv = Interview.start_built([i.question_id for i in items], kind="drill",
                               title=f"Drill · {len(items)} weak spot{'s' * (len(items) != 1)}",
                               backend=backend, grader=grader, store=store, seed=settings.seed, model=ref.name,
                               cache_dir=settings.kv_cache_dir,
                               options={"coach": True, "mode": "practice" if practice else "live"})
    print(f"session {iv.session_id}", file=sys.stderr)
    return _run(iv, True)


def cmd_stories(args: argparse.Namespace, settings: Settings) -> int:
    from coach.prep import stories

    home = settings.home
    if args.stories_command == "add":
        from coach.textfiles import read_text

        text = sys.stdin.read() if str(args.file) == "-" else read_text(args.file, "story file")
        s = stories.add(home, args.title, text)
        print(f"added {s.id}: {s.title} ({len(s.text.split())} words); see where it fits: coach stories map")
        return 0
    if args.stories_command == "rm":
        stories.remove(home, args.id)
        print(f"removed {args.id}")
        return 0
    yours = stories.load(home)
    if args.stories_command == "list":
        if not yours:
            print("No stories yet: coach stories add --title TITLE FILE (a STAR story, 60-200 words)")
        for s in yours:
            print(f"{s.id:30} {s.title} ({len(s.text.split())} words)")
        return 0
    return _map(args, settings, yours)


def _map(args: argparse.Namespace, settings: Settings, yours: list) -> int:  # noqa: ANN001
    from coach.grading.embedder import MiniLMEmbedder
    from coach.interview.custom import askers
    from coach.interview.prompts import scenario_parts
    from coach.prep import stories
    from coach.prep.job import pick_questions

    if not yours:
        print("No stories yet: coach stories add --title TITLE FILE (a STAR story, 60-200 words)")
        return 0
    embedder = MiniLMEmbedder(settings.grader_threads)
    if args.job is not None:
        from coach.grading.rubrics import find_question, load_all
        from coach.textfiles import read_text

        banks = load_all()
        picks = pick_questions(read_text(args.job, "job description"), embedder, askers(), banks)
        questions = [find_question(p.question_id, banks)[1] for p in picks]
        where = f"the panel for {args.job}"
    else:
        sc, bank, _ = scenario_parts(args.scenario)
        questions = [bank.get(q) for seg in sc.segments for q in seg.questions]
        where = sc.title
    m = stories.map_stories(yours, questions, embedder)
    print(f"Your {len(yours)} stories against {where} ({len(questions)} questions):\n")
    print(f"{'FIT':9} {'SCORE':>5}  {'STORY':28} QUESTION")
    for f in m.fits:
        story = f.story.id if f.story is not None and f.band != "gap" else "-"
        print(f"{f.band:9} {f.score:5.2f}  {story:28} {f.question_id}: {clip(f.question, 70)}")
    if m.gaps:
        print(f"\nNo story covers {len(m.gaps)}: " + ", ".join(f.question_id for f in m.gaps)
              + ". Write one, or prepare these from first principles.")
    for sid, n in m.overused:
        print(f"\nLeaned on too often: {sid} is the best fit of {n} questions; a panel that hears it {n} times "
              "remembers one story. Give some of them another.")
    return 0
