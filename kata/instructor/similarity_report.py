"""The similarity report as one self-contained HTML page: no script, no external style or font, every piece of a
submission's text escaped. The measure and the threshold are stated at the top; then the ranking of every pair,
then, for each flagged pair (and the first few below the threshold, to show what a lower score looks like), the
matching passages of each file side by side."""

from html import escape

SHOWN_BELOW = 3  # pairs below the threshold whose passages are shown too
CONTEXT = 1  # unmatched lines shown around each passage

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
tr.flagged td { background: #fde8e8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.side { width: 50%; }
pre { margin: 0; font-size: 0.85em; white-space: pre-wrap; }
mark { background: #ffe08a; }
.gap { color: #888; }
.note { color: #555; }
"""


def _pct(share):
    return f"{100 * share:.0f}%"


def _line_marks(code, spans):
    """The lines of code, and for each whether a matched span touches it."""
    lines = code.splitlines(keepends=True) or [""]
    starts, position = [], 0
    for line in lines:
        starts.append(position)
        position += len(line)
    marked = [False] * len(lines)
    for start, end in spans:
        for number, first in enumerate(starts):
            if first < end and first + len(lines[number]) > start:
                marked[number] = True
    return lines, marked


def passages(code, spans, context=CONTEXT):
    """The matched lines of code with context lines around them, as escaped HTML: matched lines in <mark>, a
    skipped stretch as a line of its own."""
    lines, marked = _line_marks(code, spans)
    keep = [any(marked[max(0, i - context):i + context + 1]) for i in range(len(lines))]
    out, skipping = [], False
    for number, line in enumerate(lines):
        if not keep[number]:
            if not skipping:
                out.append('<span class="gap">   ...</span>\n')
            skipping = True
            continue
        skipping = False
        text = f"{number + 1:4d}  {escape(line.rstrip())}"
        out.append(f"<mark>{text}</mark>\n" if marked[number] else text + "\n")
    return "".join(out)


def _ranking(result):
    rows = []
    for rank, pair in enumerate(result.pairs, start=1):
        flagged = pair.score > result.threshold
        marked = ' class="flagged"' if flagged else ""
        rows.append(f'<tr{marked}><td class="num">{rank}</td>'
                    f"<td>{escape(pair.a)}</td><td>{escape(pair.b)}</td>"
                    f'<td class="num">{_pct(pair.score)}</td><td class="num">{_pct(pair.share_a)}</td>'
                    f'<td class="num">{_pct(pair.share_b)}</td><td>{"flagged" if flagged else ""}</td>'
                    f'<td>{escape(", ".join(f.file for f in pair.files)) or "-"}</td></tr>')
    return ("<table><tr><th>rank</th><th>A</th><th>B</th><th>similarity</th><th>share of A matched</th>"
            "<th>share of B matched</th><th></th><th>files with matches</th></tr>\n" + "\n".join(rows) + "</table>")


def _details(pair, number):
    parts = [f'<h3 id="pair{number}">{number}. {escape(pair.a)} and {escape(pair.b)}: {_pct(pair.score)}</h3>',
             f'<p class="note">{_pct(pair.share_a)} of {escape(pair.a)}\'s code matched in {escape(pair.b)}; '
             f'{_pct(pair.share_b)} of {escape(pair.b)}\'s code matched in {escape(pair.a)}.</p>']
    for match in pair.files:
        parts.append(f"<h4>{escape(match.file)}</h4><table><tr>"
                     f'<th class="side">{escape(pair.a)} ({_pct(match.share_a)} matched)</th>'
                     f'<th class="side">{escape(pair.b)} ({_pct(match.share_b)} matched)</th></tr>'
                     f"<tr><td><pre>{passages(match.code_a, match.spans_a)}</pre></td>"
                     f"<td><pre>{passages(match.code_b, match.spans_b)}</pre></td></tr></table>")
    if not pair.files:
        parts.append('<p class="note">No matching passage.</p>')
    return "\n".join(parts)


def html(result):
    """The report of a Comparison (kata/instructor/similarity.py) as one HTML page."""
    submissions = [s for s in result.sources if s is not result.sources[-1]]
    flagged = result.flagged
    shown = flagged + [p for p in result.pairs if p not in flagged and p.files][:SHOWN_BELOW]
    notes = [f"<li>{escape(s.name)}: {escape(note)}</li>" for s in result.sources for note in s.notes]
    notes += [f"<li>{escape(name)}: skipped: {escape(why)}</li>" for name, why in result.skipped]
    body = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>Similarity report</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>Similarity report</h1>",
        f"<p>{len(submissions)} submissions and {escape(result.sources[-1].name)} compared pairwise, file by file "
        f"(only files of the same name): {len(result.pairs)} pairs, <strong>{len(flagged)} above the threshold "
        f"{result.threshold:g}</strong>.</p>",
        "<h2>The measure</h2>",
        "<p>Each file is tokenized (Pygments, through copydetect): every name becomes V, every string S, comments "
        "and layout are dropped, so renaming variables or parameters changes nothing. Every run of "
        f"{result.k} characters of that text (a k-gram) is hashed and the hashes are winnowed (window "
        f"{result.window}); the k-grams of the stubs' code (exercises/ as generated, what every student received) "
        "are removed, so given code is never evidence. For each side of a pair, the <em>share matched</em> is the "
        "part of its fingerprinted text covered by k-grams also found in the other side, over all its files. "
        "The <em>similarity</em> of the pair is the larger of the two shares, so a partial submission copied "
        f"from another is found too. A pair is flagged when its similarity is above {result.threshold:g}.</p>",
        "<p>Similar code is a reason to look, not a verdict: short, standard solutions (a softmax, a mean) can "
        "match by themselves; read the passages.</p>",
        "<h2>Ranking</h2>", _ranking(result),
        "<h2>Matching passages</h2>",
        *(_details(pair, result.pairs.index(pair) + 1) for pair in shown),
        *(["<p>No pair has a matching passage.</p>"] if not shown else []),
        "<h2>Submissions</h2><ul>",
        *(f"<li>{escape(s.name)}: {', '.join(escape(f) for f in sorted(s.files)) or 'no kata file'}</li>"
          for s in result.sources),
        "</ul>",
        *(["<h2>Notes</h2><ul>", *notes, "</ul>"] if notes else []),
        "</body></html>", ""]
    return "\n".join(body)
