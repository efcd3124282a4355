"""A lesson notebook in a real JupyterLab, driven through headless Chromium: what a student sees after "Run All".

    python -m meta.browser_check [--lesson 02] [--screenshots DIR] [--chromium /usr/bin/chromium]

In a temporary copy of the repository (exercises/ the pristine stubs), with the kernel the notebooks name
("transformer-kata", installed into a temporary Jupyter path, not into .venv), it starts JupyterLab on a free
localhost port with a token and checks, printing each check:

- the file browser at the repository's root lists lessons/, exercises/ and notebooks/, and the lesson text the
  notebook links to is served (the link resolves from notebooks/ to ../lessons/NN_name.md);
- on the stubs, Run > Run All Cells runs every code cell down to the check, which shows a table with 0 tests
  passed, and the cells that need an unfinished exercise print one line naming it;
- with solutions/ copied over exercises/, Kernel > Restart Kernel and Run All Cells gives full marks;
- File > Save Notebook writes a notebook that `python -m kata.authoring.notebooks` finds up to date, unchanged;
- the notebook's link to its lesson text opens it in Lab.

Screenshots (PNG) are written to --screenshots. Exit status 0 when every check held. It needs jupyterlab and
playwright (pip) and Chromium (Debian: apt-get install chromium); it never downloads a browser. It lives in meta/
beside the tests that share its copy of the repository (meta/helpers.py); meta/test_browser.py runs it.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

from kata.authoring import notebooks
from kata.course.manifest import lesson
from kata.course.repository import ROOT
from meta.helpers import copy_of_repository

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KERNEL = "transformer-kata"
HEADLINE = re.compile(r"Lesson (\d+) \(([^)]*)\): (\d+)/(\d+) tests passed, ([\d.]+)/([\d.]+) points")
DEADLINE = 240.0  # seconds for any one wait (a loaded machine); a healthy run takes far less


class Failed(Exception):
    pass


def missing_requirements(chromium=CHROMIUM):
    """Why the check cannot run here, or "" when it can."""
    missing = []
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {module} (pip install {module})")
    if not Path(chromium).is_file():
        missing.append(f"Chromium at {chromium} (Debian: apt-get install chromium)")
    return "missing " + ", ".join(missing) if missing else ""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what, condition, deadline=DEADLINE, every=0.25):
    """Poll condition() until it returns something true; Failed naming what after deadline seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise Failed(f"gave up waiting for {what} after {deadline:g} s")
        time.sleep(every)


class Lab:
    """A JupyterLab server on a temporary copy of the repository."""

    def __init__(self, work, out):
        self.work, self.out = Path(work), out
        self.repo = copy_of_repository(self.work / "kata")
        shutil.copytree(ROOT / "notebooks", self.repo / "notebooks",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.new.ipynb"))
        self.port, self.token = free_port(), os.urandom(12).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        jupyter = self.work / "jupyter"
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(jupyter), "--name", KERNEL,
                        "--display-name", "Transformer kata (.venv)"], check=True, capture_output=True)
        settings = jupyter / "user-settings" / "@jupyterlab"
        for name, values in {
                # every cell in the page (Lab 4 otherwise leaves cells outside the viewport out of the DOM)
                "notebook-extension/tracker": {"windowingMode": "none"},
                # no request to a news feed, no toast over the notebook
                "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
        env = dict(os.environ, JUPYTER_PATH=str(jupyter / "share" / "jupyter"),
                   JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(jupyter / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"))
        env.pop("KATA_IMPL", None)
        self.log = open(self.work / "jupyterlab.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={self.token}", "--allow-root", f"--ServerApp.root_dir={self.repo}",
             "--ServerApp.port_retries=0"],
            cwd=self.repo, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("JupyterLab to answer", lambda: isinstance(self.get("/api/status"), dict) or self._exited())

    def _exited(self):
        if self.process.poll() is not None:
            self.log.flush()
            tail = (self.work / "jupyterlab.log").read_text()[-2000:]
            raise Failed(f"JupyterLab exited with {self.process.returncode}; the end of its log:\n{tail}")
        return False

    def get(self, path):
        """The JSON the server answers for path; None when it does not answer or answers an HTTP error."""
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except (OSError, ValueError):  # urllib's HTTPError is an OSError
            return None

    def kernels_idle(self):
        """Whether the server runs at least one kernel and every one is idle."""
        kernels = self.get("/api/kernels")
        return isinstance(kernels, list) and bool(kernels) and all(
            kernel.get("execution_state") == "idle" for kernel in kernels)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # the server shuts its kernels down on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


def code_cells(page):
    """[(source, prompt, output text)] of every code cell of the open notebook."""
    return page.evaluate("""() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')]
        .map(cell => [cell.querySelector('.jp-InputArea-editor')?.textContent || '',
                      cell.querySelector('.jp-InputPrompt')?.textContent || '',
                      cell.querySelector('.jp-OutputArea')?.innerText || ''])""")


def run_all(page, lab, menu, item, say, confirm=False):
    """Clear every output, choose menu > item and wait until every code cell has run (numbered, in order) and the
    kernel is idle; the cells."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Edit$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Clear Outputs of All Cells$")).click()
    wait_for("the outputs and prompts to be cleared", lambda: not any(
        out or re.search(r"\[\d+\]", prompt) for _, prompt, out in code_cells(page)))
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()
    if confirm:
        page.locator(".jp-Dialog .jp-mod-accept").click()
    started = time.monotonic()

    def finished():
        cells = code_cells(page)
        counts = [re.search(r"\[(\d+)\]", prompt) for _, prompt, _ in cells]
        ran = all(counts) and [int(c.group(1)) for c in counts] == list(range(1, len(cells) + 1))
        return cells if cells and ran and lab.kernels_idle() else None

    cells = wait_for(f"{menu} > {item} to finish", finished, every=0.5)
    say(f"{menu} > {item}: all {len(cells)} code cells ran (prompts [1] to [{len(cells)}], kernel idle) "
        f"in {time.monotonic() - started:.1f} s")
    return cells


def check_table(page, say, shots, name):
    """The check cell's table: (headline match, rows, output text); a screenshot of it."""
    table = page.locator(".jp-OutputArea-output .kata-check")
    table.scroll_into_view_if_needed()
    table.screenshot(path=str(shots / f"{name}-check.png"))
    text = table.inner_text()
    rows = table.locator("tbody tr").count()
    match = HEADLINE.search(text)
    if not match:
        raise Failed(f"the check cell shows no table headline: {text[:300]!r}")
    say(f"check cell: a table (HTML) headed {match.group(0)!r}, {rows} rows; screenshot {name}-check.png")
    return match, rows, text


def browse(lab, page, lesson_id, shots, say):
    item = lesson(lesson_id)
    listing = lab.get("/api/contents/") or {}
    names = sorted(entry["name"] for entry in listing.get("content", []))
    if not {"lessons", "exercises", "notebooks"} <= set(names):
        raise Failed(f"the server's root lists {names}, not lessons/, exercises/ and notebooks/")
    served = lab.get(f"/api/contents/{item.text}") or {}
    if served.get("type") != "file":
        raise Failed(f"{item.text} is not served: {served}")
    say(f"server root {lab.repo.name}/ lists {', '.join(n for n in names if not n.startswith('.'))}; "
        f"GET /api/contents/{item.text}: a file of {len(served['content'])} characters")

    page.goto(f"{lab.url}/lab/tree/{item.notebook}?token={lab.token}")
    page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=DEADLINE * 1000)
    kernel = page.locator(".jp-KernelName").first
    wait_for("the notebook's kernel to start",
             lambda: "Transformer kata" in (kernel.text_content() or "") and lab.kernels_idle())
    say(f"opened {item.notebook}: kernel {kernel.text_content()!r} (the notebook names {KERNEL!r}), idle")
    page.locator(".jp-BreadCrumbs-home").click()
    listed = wait_for("the file browser at the root", lambda: sorted(set(
        page.locator(".jp-DirListing-itemText").all_text_contents()) & {"lessons", "exercises", "notebooks"}))
    say(f"file browser at the root shows {', '.join(n + '/' for n in listed)}")
    if len(listed) != 3:
        raise Failed(f"the file browser shows only {listed}")
    page.screenshot(path=str(shots / "opened.png"))


def stubs_run(lab, page, lesson_id, shots, say):
    cells = run_all(page, lab, "Run", "Run All Cells", say)
    page.screenshot(path=str(shots / "stubs-run-all.png"), full_page=True)
    unfinished = [line for _, _, out in cells for line in out.splitlines() if line.startswith("Unfinished exercise:")]
    skipped = [line for _, _, out in cells for line in out.splitlines() if line.startswith("Skipped: needs")]
    errors = [out for _, _, out in cells if "Traceback" in out or "Error" in out.split(":", 1)[0]]
    say(f"{len(unfinished)} cells printed a line 'Unfinished exercise: ...', {len(skipped)} 'Skipped: needs ...', "
        f"{len(errors)} showed an error; e.g. {unfinished[0] if unfinished else None!r}")
    if unfinished:
        cell = page.locator(".jp-CodeCell", has=page.locator(".jp-OutputArea", has_text="Unfinished exercise:")).first
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(shots / "stubs-unfinished-cell.png"))
        say("screenshot stubs-unfinished-cell.png: the first cell stopped by an unfinished exercise")
    match, rows, _ = check_table(page, say, shots, "stubs")
    if not unfinished or errors or match.group(3) != "0" or int(match.group(4)) != rows:
        raise Failed("on the stubs, Run All should reach the check (0 passed) with lines naming the unfinished "
                     "exercises and no error")


def reference_run(lab, page, lesson_id, shots, say):
    for source in (ROOT / "solutions").glob("*.py"):
        shutil.copy2(source, lab.repo / "exercises" / source.name)
    say("copied solutions/*.py over exercises/")
    cells = run_all(page, lab, "Kernel", "Restart Kernel and Run All Cells…", say, confirm=True)
    page.screenshot(path=str(shots / "reference-run-all.png"), full_page=True)
    bad = [out for _, _, out in cells if "Unfinished exercise:" in out or "Skipped: needs" in out or
           "Traceback" in out]
    match, rows, _ = check_table(page, say, shots, "reference")
    if bad or match.group(3) != match.group(4) or match.group(5) != match.group(6) or int(match.group(4)) != rows:
        raise Failed(f"on the reference, the check should give full marks with no error ({bad[:1]})")


def saved(lab, page, lesson_id, shots, say):
    """File > Save Notebook: the file Lab writes (outputs and all) is neither stale nor changed for the generator."""
    item = lesson(lesson_id)
    path = lab.repo / item.notebook
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Save Notebook$")).click()
    node = wait_for("Lab to save the notebook with its outputs", lambda: _with_outputs(path))
    state = notebooks.status(path, notebooks.render(item))
    unchanged = notebooks.cells_digest(node) == node.metadata["kata"]["cells_sha256"]
    outputs = sum(len(cell.get("outputs", [])) for cell in node.cells)
    say(f"File > Save Notebook: Lab wrote {item.notebook} with {outputs} outputs; for the generator it is "
        f"{state!r}, its cells {'unchanged' if unchanged else 'CHANGED'} (kata metadata kept)")
    if state != "up to date" or not unchanged:
        raise Failed("a notebook saved by Lab should be up to date and unchanged for the generator")


def _with_outputs(path):
    try:
        node = nbformat.reads(path.read_text(), as_version=4)
    except Exception:
        return None
    return node if any(cell.get("outputs") for cell in node.cells) else None


def lesson_link(lab, page, lesson_id, shots, say):
    item = lesson(lesson_id)
    link = page.locator(".jp-RenderedMarkdown a", has_text=item.text).first
    link.scroll_into_view_if_needed()
    link.click()
    name = Path(item.text).name
    tab = page.locator(".lm-TabBar-tabLabel", has_text=name)
    tab.first.wait_for(timeout=DEADLINE * 1000)
    title = f"Lesson {item.id}: {item.title}"
    def shown():
        return page.evaluate("""() => [...document.querySelectorAll('.jp-MainAreaWidget:not(.lm-mod-hidden)')]
            .map(w => [w.className, w.querySelector('h1')?.textContent || ''])""")

    try:
        wait_for(f"{name} to show its text", lambda: any(
            "jp-NotebookPanel" not in kind and heading.startswith(title) for kind, heading in shown()), deadline=30)
    except Failed:
        raise Failed(f"{name} not shown: {shown()}")
    page.screenshot(path=str(shots / "lesson-link.png"))
    say(f"the notebook's link ../{item.text} opened a tab {name!r}, the Markdown rendered under the heading "
        f"{title!r}; screenshot lesson-link.png")


def main(argv=None, out=sys.stdout):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="02")
    parser.add_argument("--screenshots", default=None, help="folder for the PNGs (default: a temporary folder)")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)

    def say(line):
        print(line, file=out, flush=True)

    why = missing_requirements(args.chromium)
    if why:
        say(f"cannot check: {why}")
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kata-browser-") as work:
        shots = Path(args.screenshots or Path(work) / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        started, lab = time.monotonic(), None
        try:
            lab = Lab(work, out)
            import jupyterlab
            say(f"JupyterLab {jupyterlab.__version__} on {lab.url} (token), root: a copy of the repository with "
                f"exercises/ the stubs; started in {time.monotonic() - started:.1f} s")
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                say(f"Chromium {browser.version}, headless")
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                for step in (browse, stubs_run, reference_run, saved, lesson_link):
                    step(lab, page, args.lesson, shots, say)
                browser.close()
        except Failed as failure:
            say(f"FAILED: {failure}")
            return 1
        finally:
            if lab is not None:
                lab.stop()
            if args.screenshots is None:
                say("(screenshots were in a temporary folder: pass --screenshots DIR to keep them)")
        say(f"all checks held in {time.monotonic() - started:.1f} s; screenshots: "
            f"{', '.join(sorted(p.name for p in shots.glob('*.png')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
