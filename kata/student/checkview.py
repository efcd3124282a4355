"""How a lesson's check looks: a table in Jupyter (HTML), plain text everywhere else.

    view = CheckView(lesson_result, notes)   # a LessonResult of kata/grading/results.py
    print(view)                              # the text (also its repr, and what IPython's terminal shows)
    view._repr_html_()                       # the table Jupyter shows: every test, passed or not, the points,
                                             # the first failure with its message and a link to its section
"""

import html
import re

from ..course.manifest import lesson

POINTER = re.compile(r'reread (?P<text>lessons/[\w./-]+\.md), section "(?P<section>[^"]+)"')
STYLE = {"passed": "color:#1a7f37", "failed": "color:#cf222e"}


def short_name(test_id):
    """tests/test_lesson03_layers.py::test_linear_shapes[2-3] -> test_linear_shapes[2-3]"""
    return test_id.split("::", 1)[-1]


class CheckView:
    def __init__(self, result, notes=()):
        self.result = result
        self.notes = [note for note in [result.note, *notes] if note]

    @property
    def headline(self):
        entry, item = self.result, lesson(self.result.id)
        return (f"Lesson {item.id} ({item.title}): {entry.passed}/{entry.total} tests passed, "
                f"{entry.score:g}/{entry.max_score:g} points")

    def text(self):
        entry = self.result
        lines = [self.headline]
        for test in entry.tests:
            mark = "ok" if test.passed else test.status.upper()
            lines.append(f"  {mark:8} {short_name(test.name)}")
        if entry.first_failure:
            lines.append(f"\nFirst failure, {short_name(entry.first_failure.name)}:\n{entry.first_failure.message}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def __str__(self):
        return self.text()

    def __repr__(self):
        return self.text()

    def _repr_pretty_(self, printer, cycle):
        printer.text(self.text())

    def _repr_html_(self):
        entry = self.result
        done = entry.done
        parts = [f'<div class="kata-check"><p style="font-weight:bold;{STYLE["passed" if done else "failed"]}">'
                 f"{html.escape(self.headline)}</p>"]
        first = entry.first_failure
        if first is not None:
            parts.append(f"<p><b>First failure</b>, <code>{html.escape(short_name(first.name))}</code>:</p>"
                         f'<pre style="white-space:pre-wrap">{html.escape(first.message)}</pre>')
            section = POINTER.search(first.message)
            if section:
                # relative to notebooks/, where the notebook is: Jupyter resolves it to the lesson text
                parts.append(f'<p>Reread <a href="../{html.escape(section["text"])}">{html.escape(section["text"])}'
                             f"</a>, section <b>{html.escape(section['section'])}</b>.</p>")
        for note in self.notes:
            parts.append(f"<p><i>{html.escape(note)}</i></p>")
        points = entry.max_score / entry.total if entry.total else 0.0
        parts.append('<table><thead><tr><th style="text-align:left">test</th><th>result</th><th>points</th>'
                     "</tr></thead><tbody>")
        for test in entry.tests:
            state = "passed" if test.passed else test.status
            style = STYLE["passed" if test.passed else "failed"]
            earned = points if test.passed else 0.0
            parts.append(f'<tr><td style="text-align:left"><code>{html.escape(short_name(test.name))}</code></td>'
                         f'<td style="{style}">{html.escape(state)}</td><td>{earned:.2f}/{points:.2f}</td></tr>')
        parts.append(f"</tbody><tfoot><tr><td style=\"text-align:left\"><b>total</b></td>"
                     f"<td>{entry.passed}/{entry.total} passed</td>"
                     f"<td><b>{entry.score:g}/{entry.max_score:g}</b></td></tr></tfoot></table></div>")
        return "".join(parts)
