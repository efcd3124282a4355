"""Pictures in plain text, for train.py and play.py: heatmaps of attention weights, bars, small tables."""

import numpy as np

SHADES = " ░▒▓█"


def shade(value):
    """One character for a value in [0, 1]: blank for 0, a full block for 1."""
    value = float(np.clip(value, 0.0, 1.0))
    return SHADES[min(len(SHADES) - 1, int(round(value * (len(SHADES) - 1))))]


def heatmap(matrix, row_labels, col_labels, title=None, digits=2):
    """A matrix of values in [0, 1] (attention weights) as rows of shaded cells with their values.

        query \\ key   Max     (       5       3       9       )
        Max           ▓ 0.71  ░ 0.10  ...
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"heatmap: matrix of shape {matrix.shape} for {len(row_labels)} row labels and "
                         f"{len(col_labels)} column labels")
    cell = digits + 6
    left = max([len(str(label)) for label in row_labels] + [5])
    lines = [title] if title else []
    lines.append((" " * (left + 2) + "".join(f"{str(label)[:cell - 1]:<{cell}}" for label in col_labels)).rstrip())
    for label, row in zip(row_labels, matrix):
        cells = "".join(f"{shade(v) * 2} {v:.{digits}f}".ljust(cell) for v in row)
        lines.append(f"{str(label):<{left}}  {cells}".rstrip())
    return "\n".join(lines)


def bar(value, maximum, width=30):
    """A horizontal bar of value / maximum of the width, in eighths of a character."""
    if maximum <= 0 or not np.isfinite(value):
        return ""
    eighths = int(round(min(max(value / maximum, 0.0), 1.0) * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + ("" if rest == 0 else " ▏▎▍▌▋▊▉"[rest])


def table(rows, header):
    """Rows of strings and numbers as aligned columns under header."""
    text = [[str(cell) if not isinstance(cell, float) else f"{cell:.3f}" for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in text)) for i, h in enumerate(header)] if text else \
        [len(str(h)) for h in header]
    lines = ["  ".join(f"{str(h):<{w}}" for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip() for row in text]
    return "\n".join(lines)
