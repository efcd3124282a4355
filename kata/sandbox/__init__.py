"""Run an implementation in a child process and reach it from the tests through plain data only.

    with Sandbox("path/to/submission", Policy(hidden=(...))) as box:
        impl = box.implementation()          # impl.LayerNorm(4).forward(x) runs in the child
        ...

The parent (the process running the tests) never executes the submission's code. The child imports it and
serves requests: read or assign an attribute, call a function, a class or a method. Only plain data crosses,
framed on a socket: JSON for None, bools, numbers, strings, lists, tuples and dicts, and NumPy arrays as .npy
bytes read without pickle, each checked (numeric dtype only, bounded size). Objects of the child stay in the
child; the parent holds opaque handles (RemoteObject). A callable of the parent passed to the child (the f of
numerical_gradient) becomes a handle the child calls back through the same socket.

Arrays keep the semantics the tests rely on: the same array of the child always arrives as the same array
object of the parent (so `layer.get_parameters()[0][0] is layer.W`), and an array known to both sides is kept
in step: whatever either side writes into it in place (a test setting a gradient, an optimizer updating a
parameter) is copied to the other side before the next message is handled.

The child runs with a clean environment, no standard input or output, its own session, resource limits and a
deadline; `stop()` kills it and every process it started (the parent is their subreaper).

    wire.py         the errors, framing, .npy bytes, Channel
    mirrors.py      arrays kept in step on both sides
    rpc.py          one side of the conversation (Endpoint); parent.py and child.py: each side's own
    policy.py       what the child is allowed (Policy)
    confinement.py  what the child does to itself before exec: namespaces, mounts, capabilities, rlimits
    accounts.py     which user the child runs as
    processes.py    /proc scans, the cgroups (pids, cpu, freezer), killing and reaping
    supervisor.py   Sandbox: starting and stopping the child
    probe.py        whether a folder imports (python -m kata.sandbox --probe, for the grader)
"""

from .confinement import die_with_parent, unsupported
from .policy import Policy
from .probe import probe
from .processes import peak_bytes, sweep
from .supervisor import Sandbox
from .wire import CallTimeout, ChildDied, NotContained, RemoteError, SandboxError, array_bytes, read_array

__all__ = ["Sandbox", "Policy", "SandboxError", "ChildDied", "CallTimeout", "NotContained", "RemoteError", "probe",
           "array_bytes", "read_array", "sweep",
           "peak_bytes", "die_with_parent", "unsupported"]
