"""Grading an answer: rubrics and their exemplars, the embedder, the grader, delivery, the committee's
debrief, a rubric's own check and the grader's evaluation."""
