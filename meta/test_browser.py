"""A lesson notebook in a real JupyterLab through headless Chromium (meta/browser_check.py): Run All on the stubs
reaches the check cell's table, on the reference it shows full marks, the lesson link opens the lesson text."""

import io

import pytest

from meta import browser_check

pytestmark = pytest.mark.meta


def test_run_all_in_a_real_jupyterlab_reaches_the_check_and_the_reference_gets_full_marks(tmp_path):
    why = browser_check.missing_requirements()
    if why:
        pytest.skip(f"the browser check needs JupyterLab, Playwright and Chromium: {why}")
    out = io.StringIO()
    status = browser_check.main(["--lesson", "02", "--screenshots", str(tmp_path)], out=out)
    printed = out.getvalue()
    assert status == 0, printed
    assert "Lesson 02 (Attention): 0/" in printed and "all checks held" in printed, printed
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "lesson-link.png", "opened.png", "reference-check.png", "reference-run-all.png", "stubs-check.png",
        "stubs-run-all.png", "stubs-unfinished-cell.png"], printed
