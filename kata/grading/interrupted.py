"""Ctrl-C while grading: every test process is killed at once, no lesson starts after it, and one line says what
was interrupted (GradingInterrupted, a KeyboardInterrupt: whoever does not catch it exits as on any Ctrl-C).

    results = each(pool, grade_lesson, items)    # in items' order; on Ctrl-C raises GradingInterrupted

A Jupyter kernel's "Interrupt kernel" is the same SIGINT, so a notebook's check stops the same way.
"""

from concurrent.futures import wait

from ..course import children
from .run import LessonInterrupted


def _names(ids):
    return ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"


class GradingInterrupted(children.Interrupted):
    """str(): one line saying what was being graded, what had finished and that nothing was reported.

    running: [(lesson id, id of the test then running or None)]; finished: {lesson id: LessonResult};
    waiting: [lesson ids not started]."""

    def __init__(self, running=(), finished=None, waiting=()):
        self.running, self.finished, self.waiting = list(running), dict(finished or {}), list(waiting)
        super().__init__(self.line())

    def line(self):
        if not self.running and not self.finished:
            return "Interrupted before any lesson's tests had started; nothing was kept (no report, no file written)"
        if not self.running:
            doing = "between two lessons"
        else:
            ids = [lesson_id for lesson_id, _ in self.running]
            tests = [test.split("::", 1)[-1] for _, test in self.running if test]
            doing = (f"lesson{'s' if len(ids) > 1 else ''} {_names(ids)} {'were' if len(ids) > 1 else 'was'} being "
                     f"graded" + (f" ({_names(tests)} running)" if tests else ""))
        parts = [doing]
        if self.finished:
            ids = sorted(self.finished)
            scores = ", ".join(f"{i}: {self.finished[i].score:g}/{self.finished[i].max_score:g}" for i in ids)
            parts.append(f"lesson{'s' if len(ids) > 1 else ''} {_names(ids)} had finished ({scores} points)")
        if self.waiting:
            parts.append(f"{len(self.waiting)} had not started")
        return f"Interrupted: {'; '.join(parts)}; nothing was kept (no report, no file written)"


def stopped(first, extra_running=(), finished=None, waiting=()):
    """After interrupt(): the caller that interrupted first lets children start again; the GradingInterrupted."""
    if first:
        children.resume()
    return GradingInterrupted(extra_running, finished, waiting)


def halt(futures):
    """After a Ctrl-C: kill every test process, start no other, cancel what has not started and wait for the rest
    (a second Ctrl-C cannot cut this short). -> whether this caller interrupted first (it must resume children)."""
    first = children.interrupt()
    with children.shielded():
        for future in futures:
            future.cancel()
        wait(futures)
    return first


def each(pool, function, items, finished=None):
    """[function(item) for item in items], run on pool's threads. On Ctrl-C (a KeyboardInterrupt here, or a worker
    interrupted because another thread saw one): every test process is killed, no other starts, the workers are
    waited for (a few tenths of a second: their processes are dead) and GradingInterrupted is raised.

    finished: {lesson id: LessonResult} of an earlier phase, reported as finished too."""
    futures = [pool.submit(function, item) for item in items]
    try:
        while wait(futures, timeout=children.POLL_SECONDS).not_done:
            pass  # short waits: Ctrl-C is handled between two, on Windows too (its lock waits cannot be interrupted)
        return [future.result() for future in futures]
    except KeyboardInterrupt:
        pass
    first = halt(futures)
    running, done, waiting = [], dict(finished or {}), []
    for item, future in zip(items, futures):
        if future.cancelled():
            waiting.append(item.id)
        elif isinstance(future.exception(), LessonInterrupted):
            running.append((future.exception().lesson_id, future.exception().test))
        elif future.exception() is None:
            done[item.id] = future.result()
        else:
            running.append((item.id, None))
    raise stopped(first, running, done, waiting) from None
