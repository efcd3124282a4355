"""Tests of the tests: every known-wrong implementation is rejected by its own lesson's tests."""

import re

import pytest

from kata.course.manifest import lessons
from meta.catalogue import catalogue, expected_pointer, mutated_source, run_all

pytestmark = pytest.mark.meta

MUTANTS = catalogue()


def test_catalogue_is_large_and_covers_lessons_00_to_09():
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), "mutant ids must be unique"
    assert len(MUTANTS) >= 40, f"the catalogue holds {len(MUTANTS)} mutants, expected at least 40"
    covered = {m.lesson for m in MUTANTS}
    missing = [item.id for item in lessons() if item.exercises and item.id not in covered]
    assert not missing, f"lessons without a wrong implementation in the catalogue: {missing}"


@pytest.fixture(scope="session")
def verdicts(request):
    """Run every selected mutant once, in one worker process per core."""
    selected = {item.callspec.params["mutant"].id: item.callspec.params["mutant"] for item in request.session.items
                if item.originalname in ("test_mutant_is_rejected", "test_first_failure_names_the_section")}
    selected = [m for m in selected.values() if mutated_source(m)]  # fails early if an edit no longer applies
    return run_all(selected)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_is_rejected(mutant, verdicts):
    rejected, detail = verdicts[mutant.id]
    assert rejected, (f"the wrong implementation {mutant.id!r} ({mutant.description}) passes every test of "
                      f"lesson {mutant.lesson}: add a test that catches it ({detail})")
    assert mutant.says in detail, (f"the wrong implementation {mutant.id!r} ({mutant.description}) is rejected, but "
                                   f"its first failure does not say {mutant.says!r}: {detail}")
    assert not mutant.first_failure or re.search(mutant.first_failure, detail), (
        f"the wrong implementation {mutant.id!r} is rejected first by another failure than the one it expects "
        f"({mutant.first_failure!r}): {detail}")


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_first_failure_names_the_section(mutant, verdicts):
    """The first failure a student sees, as the grader's report shows it, points to the section that teaches the
    code the mutant got wrong (the same run as test_mutant_is_rejected: no mutant runs twice)."""
    rejected, detail = verdicts[mutant.id]
    if not rejected:
        pytest.skip("not rejected: test_mutant_is_rejected fails")
    pointer = expected_pointer(mutant)
    assert pointer in detail, (f"the first failure of {mutant.id!r} ({mutant.description}) does not say "
                               f"{pointer!r}: {detail}")
