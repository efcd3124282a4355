"""Broken and hostile submissions: each is graded (lesson 06, sandboxed) and must get exactly its expected score,
within the deadline, with a report that says what happened, while a correct submission graded at the same time
(the bystander) keeps full marks; once both gradings end, nothing of them runs or remains (no process, no cgroup),
and the grader's own test processes held less memory than PARENT_BOUND whatever the attack sent them.

Every attack is a small edit of the reference (or of the stubs) in a copy: code appended to loss.py, code put
first in CrossEntropyLoss.backward (so the tests of forward alone still pass: an attack must neither cost them nor
gain the others), or an extra file. `honest` names the plain mistake the attack amounts to once it is contained
(backward raising, backward returning 0.0, the stubs): its score is the attack's score. Attacks on the
repository's files name them by their absolute paths, as a student who knows the grader's layout would (the
child's own `kata` may live elsewhere: meta/test_sandbox_modes.py).
"""

import functools
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from kata.course.repository import ROOT
from kata.grading.grade import grade
from meta.helpers import alive, insert_first, wait_for, write_stubs

pytestmark = pytest.mark.meta
LESSON = "06"
TIMEOUT = 8.0  # seconds for the lesson; each test may use a quarter
SLACK = 30.0  # beyond its lesson's time, for the whole grading of one submission, start-up included
MARK = "KATA_ATTACK_DAEMON_3f9c"
CANARY = "adversarial-canary.txt"  # a file of the repository an attack tries to destroy


BYSTANDER_SECONDS = 60.0  # the bystander's lesson time: far more than it needs, on any machine that grades at all
# bytes: the most a test process of the grader may hold, whatever the child sends: about 50 MiB for lesson 06's,
# plus what the wire's caps let a child make it hold (kata/sandbox/wire.py: at most about 240 MiB; the memory
# attacks of meta/test_sandbox_memory.py measured at most 154 MiB above the baseline)
PARENT_BOUND = 384 << 20


@dataclass(frozen=True)
class Attack:
    id: str
    what: str  # what it tries
    base: str = "solutions"  # the folder it starts from
    append: str = ""  # code appended to loss.py
    backward: tuple = ()  # lines put first in CrossEntropyLoss.backward
    files: dict = field(default_factory=dict)  # extra files of the submission
    honest: str = ""  # the plain submission that must score the same ("" : the score below)
    score: float = None  # the expected score when honest is ""
    says: str = ""  # a phrase the report (messages and notes) must contain
    needs_isolation: bool = False  # holds only where the sandbox has namespaces (run as root)
    needs_process_cap: bool = False  # holds only where something caps the child's processes (cgroup or NPROC)
    needs_cpu_cap: bool = False  # holds only where a cpu cgroup caps the child's CPU (root, cgroup v1)
    timeout: float = TIMEOUT  # the lesson's time: more for an attack whose containment itself takes time

    @property
    def deadline(self):
        return self.timeout + SLACK


HONEST = {  # plain submissions to compare with
    "correct": Attack("correct", "the reference, unchanged", score=6.0),
    "stubs": Attack("stubs", "the stubs, unchanged", base="exercises", score=0.0),
    "backward-raises": Attack("backward-raises", "backward raises an ordinary exception",
                              backward=("raise RuntimeError('plain failure')",)),
    "backward-returns-zero": Attack("backward-returns-zero", "backward returns 0.0", backward=("return 0.0",)),
    "backward-raises-on-6x20": Attack("backward-raises-on-6x20", "backward raises for logits of shape (6, 20) only",
                                      backward=("if self.cache[0].shape == (6, 20): raise RuntimeError('plain')",)),
}

# write a frame of the child's own onto the socket the grader reads (its descriptor follows --fd in sys.argv), then
# trickle bytes after it: the grader must refuse the frame from its header, before it allocates what it announces
RAW_FRAME = ("import os as _o, sys as _y, struct as _s, time as _t; "
             "{head}_fd = int(_y.argv[_y.argv.index('--fd') + 1]); "
             "_o.write(_fd, {frame}); [(_o.write(_fd, b'x' * 4096), _t.sleep(0.01)) for _ in range(1000)]")

SIGNALS_OFF = ("import signal as _s; [_s.signal(n, _s.SIG_IGN) for n in (_s.SIGTERM, _s.SIGALRM, _s.SIGINT, "
               "_s.SIGUSR1, _s.SIGHUP)]")

ATTACKS = [
    Attack("syntax-error", "a syntax error in loss.py", append="def broken(:\n", score=0.0,
           says="loss.py line"),
    Attack("import-error", "importing a module that does not exist", append="import no_such_module_kata\n",
           score=0.0, says="ModuleNotFoundError"),
    Attack("exception-at-import", "raising at import", append="raise RuntimeError('boom at import')\n", score=0.0,
           says="boom at import"),
    Attack("loop-at-import", "an infinite loop at import that ignores SIGTERM and SIGALRM",
           append=f"{SIGNALS_OFF}\nwhile True:\n    pass\n", score=0.0, says="did not finish"),
    Attack("loop-in-backward", "an infinite loop in backward (for logits of shape (6, 20)) that ignores SIGTERM, "
           "SIGALRM, SIGINT, SIGHUP and SIGUSR1", backward=(SIGNALS_OFF, "while self.cache[0].shape == (6, 20): pass"),
           honest="backward-raises-on-6x20", says="did not finish"),
    Attack("memory-bomb", "allocating 16 GB in backward", backward=("_bomb = bytearray(16 * 2**30)",),
           honest="backward-raises", says="MemoryError"),
    Attack("output-flood", "printing 40 MB to stdout and stderr in backward, then answering right",
           backward=("[(print('x' * 1000), print('y' * 1000, file=__import__('sys').stderr)) for _ in range(20000)]",),
           honest="correct"),
    Attack("fork-bomb", "forking without end in backward",
           backward=("[__import__('os').fork() for _ in iter(int, 1)]",), honest="backward-raises",
           # each test that runs backward fills the process cap and costs a fresh child: 7.1 s of an 8 s lesson
           # on a loaded machine, so it gets time enough that its score never depends on the machine's load
           needs_process_cap=True, timeout=40.0),
    Attack("daemon", "a daemonised grandchild (double fork, setsid, environment cleared) that outlives its parent, "
           "then a right answer",
           backward=("_pid = None if getattr(type(self), '_spawned', False) else (setattr(type(self), '_spawned', "
                    "True) or __import__('os').fork())",
                    "if _pid == 0: __import__('os').setsid(); _pid2 = __import__('os').fork(); "
                    f"__import__('os').execve(__import__('sys').executable, [__import__('sys').executable, '-c', "
                    f"'import time; time.sleep(600)', '{MARK}'], {{}}) if _pid2 == 0 else None; "
                    "__import__('os')._exit(0)",
                    "if _pid: __import__('os').waitpid(_pid, 0)"),  # one daemon per child process, so the
           # pids cgroup (32) never runs out and every answer stays right
           honest="correct"),
    Attack("sys-exit-at-import", "sys.exit(0) at import", append="import sys\nsys.exit(0)\n", score=0.0,
           says="SystemExit"),
    Attack("os-exit-at-import", "os._exit(0) at import", append="import os\nos._exit(0)\n", score=0.0,
           says="ended while importing"),
    Attack("sys-exit-in-backward", "sys.exit(0) in backward", backward=("raise SystemExit(0)",),
           honest="backward-raises", says="SystemExit"),
    Attack("os-exit-in-backward", "os._exit(0) in backward", backward=("__import__('os')._exit(0)",),
           honest="backward-raises"),
    Attack("pytest-exit", "pytest.exit in backward", backward=("__import__('pytest').exit('all done', returncode=0)",),
           honest="backward-raises", says="all done"),
    Attack("pytest-skip", "pytest.skip in backward", backward=("__import__('pytest').skip('nothing to see')",),
           honest="backward-raises", says="nothing to see"),
    Attack("keyboard-interrupt", "KeyboardInterrupt in backward", backward=("raise KeyboardInterrupt",),
           honest="backward-raises", says="KeyboardInterrupt"),
    Attack("conftest", "a conftest.py that makes every test pass", base="exercises",
           files={"conftest.py": "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport"
                                 "(item, call):\n    outcome = yield\n    outcome.get_result().outcome = 'passed'\n"},
           honest="stubs", says="ignored: conftest.py"),
    Attack("pytest-ini", "a pytest.ini that turns the grader's plugin off", base="exercises",
           files={"pytest.ini": "[pytest]\naddopts = -p no:kata -p no:kata.grading.grade\n"}, honest="stubs",
           says="ignored: pytest.ini"),
    Attack("sitecustomize", "a sitecustomize.py that patches builtins", base="exercises",
           files={"sitecustomize.py": "import builtins\nbuiltins.isinstance = lambda *a: True\n"}, honest="stubs",
           says="ignored: sitecustomize.py"),
    Attack("numpy-monkeypatch", "numpy.allclose and numpy.testing patched to always agree, at import",
           base="exercises", append="import numpy, numpy.testing\nnumpy.allclose = lambda *a, **k: True\n"
                                    "numpy.isclose = lambda a, b, **k: numpy.ones(numpy.shape(a), bool)\n"
                                    "numpy.testing.assert_allclose = lambda *a, **k: None\n", honest="stubs"),
    Attack("replace-code", "replacing the __code__ of the grader's gradient check and message functions",
           base="exercises", append="import kata.testing.gradcheck, kata.grading.reporter\n"
                                    "kata.testing.gradcheck.check_gradients.__code__ = (lambda *a, **k: []).__code__\n"
                                    "kata.grading.reporter.message.__code__ = (lambda *a, **k: 'passed').__code__\n",
           honest="stubs"),
    Attack("always-equal", "backward returns an object equal to everything", backward=(
        "return type('AlwaysEqual', (float,), {'__eq__': lambda s, o: True, '__ne__': lambda s, o: False, "
        "'__lt__': lambda s, o: True, '__gt__': lambda s, o: True, '__abs__': lambda s: 0.0})(0.0)",),
        honest="backward-returns-zero"),
    Attack("ndarray-subclass", "backward returns an ndarray subclass whose comparisons always agree", backward=(
        "import numpy as _np; _L = type('Liar', (_np.ndarray,), {'__eq__': lambda s, o: True, "
        "'__array_ufunc__': lambda s, *a, **k: True}); return _np.zeros(()).view(_L)",),
        honest="backward-returns-zero"),
    Attack("array-function", "backward returns an object with __array_function__ and __array_ufunc__", backward=(
        "return type('Fake', (), {'__array_function__': lambda *a: True, '__array_ufunc__': lambda *a, **k: True, "
        "'__float__': lambda s: 0.0})()",), honest="backward-raises"),
    Attack("caller-frame", "backward looks up the callers' frames for expected values", backward=(
        "import sys as _sys; _f = _sys._getframe(1); _found = []",
        "while _f is not None: _found += [v for k, v in _f.f_locals.items() if k in ('expected', 'want', 'ref', "
        "'reference')]; _f = _f.f_back",
        "return float(_found[0]) if _found and isinstance(_found[0], float) else 0.0"),
        honest="backward-returns-zero"),
    Attack("read-reference", "loss.py replaced by the reference read from disk at import", base="exercises",
           append=f"exec(open({str(ROOT / 'solutions' / 'loss.py')!r}).read())\n",
           score=0.0, says="FileNotFoundError", needs_isolation=True),
    Attack("read-tests", "reading the tests from disk at import", base="exercises",
           append=f"_t = open({str(ROOT / 'tests' / 'test_lesson06_loss.py')!r}).read()\n",
           score=0.0, says="FileNotFoundError", needs_isolation=True),
    Attack("import-reference", "importing the reference package from the submission", base="exercises",
           append="from kata.course.implementation import load as _load\nCrossEntropyLoss = _load('solutions')"
                  ".CrossEntropyLoss\n", score=0.0, says="importing the implementation 'solutions' failed",
           needs_isolation=True),
    Attack("unmount-hidden", "unmounting what hides the reference, then reading it", base="exercises",
           append=f"import ctypes\nctypes.CDLL(None).umount2({str(ROOT / 'solutions')!r}.encode(), 2)\n"
                  f"exec(open({str(ROOT / 'solutions' / 'loss.py')!r}).read())\n", score=0.0, says="FileNotFoundError",
           needs_isolation=True),
    Attack("nested-namespace-unmount", "entering a user and mount namespace of its own (where it has every "
           "capability) to unmount what hides the reference, then reading it", base="exercises",
           append="import ctypes\n_libc = ctypes.CDLL(None)\n_libc.unshare(0x10000000 | 0x00020000)\n"
                  f"_libc.umount2({str(ROOT / 'solutions')!r}.encode(), 2)\n"
                  f"exec(open({str(ROOT / 'solutions' / 'loss.py')!r}).read())\n", score=0.0, says="FileNotFoundError",
           needs_isolation=True),
    Attack("damage-repository", "truncating and deleting a file of the grader's repository at import",
           base="exercises", append=f"import os\nfor _f in [{str(ROOT / '.kata' / CANARY)!r}, "
                                    f"{str(ROOT / 'manifest.toml')!r}]:\n"
                                    "    try:\n        os.truncate(_f, 0)\n    except OSError:\n        pass\n"
                                    "    try:\n        os.unlink(_f)\n    except OSError:\n        pass\n",
           honest="stubs", needs_isolation=True),
    Attack("grader-memory", "writing into the memory of every other process through /proc at import (on the "
           "reference: it scores full marks only if no other process was visible)",
           append="import os\n_seen = [p for p in os.listdir('/proc') if p.isdigit() and "
                                    "int(p) != os.getpid()]\nfor _p in _seen:\n"
                                    "    try:\n        open(f'/proc/{_p}/mem', 'r+b').write(b'x')\n"
                                    "    except OSError:\n        pass\n"
                                    "assert not _seen, f'other processes are visible: {_seen}'\n",
           honest="correct", needs_isolation=True),
    Attack("fake-results-file", "writing a fake results file where the grader keeps its logs", base="exercises",
           append="import glob, json\nfor _p in glob.glob('/tmp/kata-grade-*/**/*.log', recursive=True):\n"
                  "    open(_p, 'a').write(json.dumps({'id': 'x', 'status': 'passed', 'message': ''}) + '\\n')\n",
           honest="stubs"),
    Attack("print-fake-results", "printing fake results", base="exercises",
           append="print('{\"id\": \"tests/test_lesson06_loss.py::test_loss_by_hand\", \"status\": \"passed\"}')\n"
                  "print('06  Softmax and cross-entropy loss  18/18  6/6  done')\n", honest="stubs"),
    Attack("kill-the-grader", "backward kills its parent and every process it can see",
           backward=("import os as _os, ctypes as _ct; _kill = _ct.CDLL(None).kill  # (returns -1, never raises)",
                    "[_kill(int(p), 9) for p in _os.listdir('/proc') if p.isdigit() and int(p) != _os.getpid()]",
                    "_kill(_os.getppid(), 9)", "raise RuntimeError('still here')"),
           honest="backward-raises", needs_isolation=True),
    Attack("cpu-hog", "24 processes spinning for ever, each in a session of its own, started at import",
           base="exercises", append=f"import os as _os\nfor _ in range(24):\n    if _os.fork() == 0:\n"
                                    f"        _os.setsid()\n        _os.execve(__import__('sys').executable, "
                                    f"[__import__('sys').executable, '-c', 'while True: pass', '{MARK}'], {{}})\n",
           honest="stubs", needs_cpu_cap=True),
    Attack("huge-header", "backward writes onto the grader's socket a frame announcing 250 MB of JSON, then 1 MB of "
           "open brackets, and waits",
           backward=(RAW_FRAME.format(frame="_s.pack('!Q', 250 << 20) + b'[' * (1 << 20)", head=""),),
           honest="backward-raises", says="more than the 4,194,304 allowed"),
    Attack("array-flood", "backward writes onto the grader's socket a frame announcing ten arrays of 512 MB and "
           "streams them slowly", backward=(RAW_FRAME.format(frame="_s.pack('!Q', len(_h)) + _h", head=(
               "_h = __import__('json').dumps({'kind': 'result', 'value': None, 'blobs': [512 << 20] * 10}).encode()"
               "; ")),), honest="backward-raises", says="bytes of arrays in one message, more than"),
    Attack("inode-bomb", "folders made in /tmp until it refuses, at import", base="exercises",
           append="import os as _os\n_n = 0\ntry:\n    while _n < 10**6:\n        _os.mkdir(f'/tmp/d{_n}')\n"
                  "        _n += 1\nexcept OSError:\n    pass\n", honest="stubs", needs_isolation=True),
]


def build(attack, folder):
    if attack.base == "exercises":  # the pristine stubs, whatever a student left in exercises/
        write_stubs(folder)
    else:
        shutil.copytree(ROOT / attack.base, folder, ignore=shutil.ignore_patterns("__pycache__"))
    loss = folder / "loss.py"
    for line in reversed(attack.backward):
        insert_first(loss, "CrossEntropyLoss.backward", line)
    if attack.append:
        loss.write_text(loss.read_text() + "\n" + attack.append)
    for name, text in attack.files.items():
        (folder / name).write_text(text)
    return folder


def survivors(mark):
    """Processes whose command line holds mark (daemons left behind by a submission: they exec a program with the
    mark among its arguments, which /proc shows; a variable set after exec would not show)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                if mark.encode() in stream.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


@functools.cache
def sandbox_powers():
    """(why the sandbox refuses to run code here, or ""; namespaces; a cap on processes; a cap on CPU): namespaces
    need root or user namespaces; the process cap is a pids cgroup, or RLIMIT_NPROC, which the kernel does not
    apply to root; the CPU cap a cpu cgroup."""
    from kata.sandbox import NotContained, Sandbox
    from kata.testing.sandboxed import policy
    try:
        with Sandbox(ROOT / "solutions", policy()) as box:
            cgroups = box.cgroup.paths if box.cgroup is not None else {}
            return "", box.isolated, "pids" in cgroups or os.geteuid() != 0, "cpu" in cgroups
    except NotContained as refused:
        return str(refused), False, False, False


def runnable(attack):
    """Whether the attack is contained here; one that is not would do real damage, so it is not run at all."""
    refused, isolated, capped, cpu_capped = sandbox_powers()
    return not refused and (isolated or not attack.needs_isolation) and (capped or not attack.needs_process_cap) \
        and (cpu_capped or not attack.needs_cpu_cap)


@dataclass
class Graded:
    result: dict  # the attack's grading, as JSON
    seconds: float
    bystander: float  # the score of the correct submission graded at the same time
    left: list  # what of both gradings still ran or remained once they ended
    peak: int  # the most memory one of the attack's test processes held


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every attack and honest twin graded, each beside a correct submission: {id: Graded}."""
    refused = sandbox_powers()[0]
    if refused:  # nothing may run unconfined: the grader refuses, and so does this suite
        pytest.skip(refused)
    base = tmp_path_factory.mktemp("attacks")
    (ROOT / ".kata").mkdir(exist_ok=True)
    (ROOT / ".kata" / CANARY).write_text("still here\n")
    everything = list(HONEST.values()) + [a for a in ATTACKS if runnable(a)]
    return grade_beside(everything, base)


def grade_all(attacks, base):
    """Build each attack under base and grade it (lesson 06, two at a time): {id: (result, seconds)}."""
    def run(attack):
        folder = build(attack, base / attack.id / "submission")
        start = time.monotonic()
        result = grade(str(folder), [LESSON], timeout=attack.timeout, name=attack.id).to_json()
        return attack.id, (result, time.monotonic() - start)

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, attacks))


def grade_beside(attacks, base):
    """Grade each attack while the correct submission is graded at the same time (one pair after another), then
    see what of them is left: {id: Graded}."""
    bystander = build(HONEST["correct"], base / "bystander" / "submission")
    found = {}
    for attack in attacks:
        folder = build(attack, base / attack.id / "submission")
        start = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            other = pool.submit(grade, str(bystander), [LESSON], timeout=BYSTANDER_SECONDS, name="bystander")
            result = grade(str(folder), [LESSON], timeout=attack.timeout, name=attack.id)
            seconds = time.monotonic() - start
            beside = other.result()
        found[attack.id] = Graded(result.to_json(), seconds, beside.score, leftovers(), result.peak_bytes)
    return found


def leftovers(wait=10.0):
    """What of finished gradings still runs or remains: cgroups of the sandbox whose holder is gone, and processes
    of the sandbox (its users, its mark in the environment, MARK among the arguments) that no living sandbox
    holds. A PID namespace dies a few milliseconds after its first process: waited for, up to wait seconds."""
    from kata.sandbox import Policy
    from kata.sandbox.accounts import sandbox_user
    from kata.sandbox.processes import CGROUPS, CONTROLLERS, holder_gone
    policy = Policy(hidden=())
    named = sandbox_user(policy)
    low, high = policy.transient_uids

    def ours(pid):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                argv = stream.read().split(b"\0")
            with open(f"/proc/{pid}/cgroup") as stream:
                groups = [line.rsplit("/", 1)[-1].strip() for line in stream]
            try:
                with open(f"/proc/{pid}/environ", "rb") as stream:
                    marked = b"KATA_SANDBOX=" in stream.read()
            except OSError:
                marked = False
        except OSError:
            return False
        if any(g.startswith("kata-") and not holder_gone(g) for g in groups) or not alive(pid):
            return False  # a sandbox still running (another test's, on this machine), or dead (a zombie)
        return (named is not None and uid == named[0]) or low <= uid < high or marked or MARK.encode() in argv

    stop = time.monotonic() + wait
    while True:
        left = [str(path) for controller in CONTROLLERS for path in (CGROUPS / controller).glob("kata-*")
                if holder_gone(path.name)]
        left += [f"process {pid}" for pid in filter(str.isdigit, os.listdir("/proc")) if ours(pid)]
        if not left or time.monotonic() > stop:
            return left
        time.sleep(0.05)


def report_text(result):
    entry = result["lessons"][0]
    return "\n".join([*result.get("notes", []), entry["note"], *(t["message"] for t in entry["tests"])])


def check_grading(attack, graded):
    """What every grading here must show, honest or not: within its deadline, the bystander at full marks, nothing
    left, the grader's memory bounded."""
    entry = graded[attack.id]
    print(f"{attack.id}: {entry.seconds:.1f} s, bystander {entry.bystander}, peak {entry.peak / 2**20:.0f} MiB")
    assert entry.result["sandbox"] is True
    assert entry.seconds < attack.deadline, f"{attack.id}: grading took {entry.seconds:.1f} s"
    assert entry.bystander == 6.0, f"{attack.id}: the correct submission graded beside it got {entry.bystander}/6"
    assert not entry.left, f"{attack.id}: left behind after its grading: {entry.left}"
    assert entry.peak < PARENT_BOUND, f"{attack.id}: a test process held {entry.peak / 2**20:.0f} MiB"
    ran = not entry.result["lessons"][0]["note"].startswith("could not run")
    assert entry.peak > 0 or not ran, "the test processes' memory was not measured"


@pytest.mark.parametrize("attack", list(HONEST.values()), ids=list(HONEST))
def test_honest_submissions_score_as_expected(attack, graded):
    result = graded[attack.id].result
    if attack.score is not None:
        assert result["score"] == attack.score, report_text(result)
    if attack.id == "backward-raises":
        assert 0 < result["score"] < 6, "some tests of lesson 06 do not run backward: the twin must show it"
    check_grading(attack, graded)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack_is_contained(attack, graded):
    if not runnable(attack):
        pytest.skip("the sandbox has no namespaces or no process or CPU cap here: this attack is a documented limit "
                    "(README, Grading untrusted code)")
    result = graded[attack.id].result
    expected = attack.score if not attack.honest else graded[attack.honest].result["score"]
    assert result["score"] == expected, (f"{attack.id} ({attack.what}): scored {result['score']}, expected "
                                         f"{expected}\n{report_text(result)[:3000]}")
    if attack.says:
        assert attack.says in report_text(result), report_text(result)[:3000]
    if attack.id in ("daemon", "cpu-hog"):
        assert not survivors(MARK), "a process the submission started survived its grading"
    if attack.id == "damage-repository":
        assert (ROOT / ".kata" / CANARY).read_text() == "still here\n", "the submission changed a file of the grader"
        assert (ROOT / "manifest.toml").stat().st_size > 1000
    check_grading(attack, graded)


def test_nothing_of_a_grading_outlives_the_grader_killed_outright(tmp_path):
    """grader.py is killed (SIGKILL) while its test process waits on a child spinning in an infinite loop, which
    started a daemon: every process the grader started, the child and the daemon die with it."""
    import signal
    import subprocess
    import sys

    from kata.sandbox import sweep
    from kata.sandbox.processes import children_of
    if sandbox_powers()[0]:
        pytest.skip(sandbox_powers()[0])
    daemon = next(a for a in ATTACKS if a.id == "daemon")
    # one daemon per child (the daemon attack's lines, first in backward), then a loop
    folder = build(Attack("spin", "a daemon, then a loop", backward=(*daemon.backward, "while True: pass")),
                   tmp_path / "submission")
    grader = subprocess.Popen([sys.executable, str(ROOT / "grader.py"), "--impl", str(folder), "--lesson", LESSON,
                               "--timeout", "300"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)

    def tree():
        found, frontier = set(), [grader.pid]
        while frontier:
            below = [pid for pid in children_of(frontier.pop()) if pid not in found]
            found.update(below)
            frontier += below
        return found

    started = set()
    try:
        assert wait_for(lambda: survivors(MARK)), "the daemon should be running before the grader is killed"
        started = tree()
        assert started, "the grader should have started its test process"
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
        assert wait_for(lambda: not [pid for pid in started if alive(pid)]), \
            f"processes the grader started outlived it: {[pid for pid in started if alive(pid)]}"
        assert wait_for(lambda: not survivors(MARK)), f"the daemon outlived the grader: {survivors(MARK)}"
        sweep()  # what the next grading does first: the cgroups of dead holders go
        assert not leftovers(), leftovers()
    finally:
        for pid in [*survivors(MARK), *started]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if grader.poll() is None:
            grader.kill()
