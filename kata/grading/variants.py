"""A hidden variant on Gradescope: one more entry per lesson, graded on the variant's inputs and shown to students
after the due date (Gradescope's per-test visibility "after_due_date"), whatever the public entries' visibility.

How it counts: each lesson's variant entry is worth the lesson's points, like its public entry, so the results'
score is public + variant out of twice the lessons' points (grade(variant=SEED): result.variant).
"""

from .settings import variant_seed

VISIBILITY = "after_due_date"  # the variant's entries: students see them once the due date has passed


def gradescope_tests(result, output):
    """Gradescope's entries for result.variant (none without one); output(entry) is the text under an entry."""
    if result.variant is None:
        return []
    seed = result.variant.seed
    return [{"name": f"Lesson {entry.id}: {entry.title} (hidden variant {seed})", "number": f"{entry.id}.v",
             "score": float(entry.score), "max_score": entry.max_score,
             "status": "passed" if entry.done else "failed",
             "output": f"The lesson's tests on inputs you had not seen (variant {seed}).\n{output(entry)}",
             "visibility": VISIBILITY} for entry in result.variant.lessons]


def checked(value):
    """A variant from a setting: None for "" or None, else its SEED (ValueError when it is not one)."""
    return None if value in (None, "") else variant_seed(value)


def text(value):
    """The variant as run_autograder's default: "" for none, else its SEED (checked)."""
    seed = checked(value)
    return "" if seed is None else str(seed)
