"""Whether a folder imports, tried in a sandboxed child: what the grader asks before running any test."""

from pathlib import Path

from .supervisor import Sandbox
from .wire import NotContained, SandboxError


def probe(folder, seconds, policy):
    """{"broken": message or None, "verdict": import_failure's report or None, "isolated": bool, "note": text}:
    whether folder imports within seconds, tried in a child confined as policy says; with "refused": why, when
    the child could not be confined here and the policy does not allow that."""
    box = Sandbox(folder, policy, startup_seconds=seconds)
    try:
        box.start()
    except NotContained as error:  # nothing ran: the grading must not go on
        return {"refused": str(error), "broken": None, "verdict": None, "isolated": False, "note": ""}
    except SandboxError as error:
        place = getattr(error, "place", None)  # a CallTimeout's: where in folder the import was stuck, or None
        verdict = None
        if place is not None:
            verdict = {"inside": [[Path(place.file).name, place.line]], "missing": None, "error": str(error)}
        return {"broken": str(error), "verdict": verdict, "isolated": box.isolated, "note": box.isolation_note}
    finally:
        box.stop()
    return {"broken": box.broken, "verdict": box.broken_verdict, "isolated": box.isolated, "note": box.isolation_note}
