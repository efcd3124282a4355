"""The kata's tooling, in layers; a package imports only from the packages listed above it (ARCHITECTURE.md):

    course/     the course itself: where things are, the lessons (manifest.toml), the contract's names, loading an
                implementation, the exercises and a student's progress, where an error was raised
    sandbox/    running untrusted code in a confined child process, reached through plain data only
    testing/    the pytest plugin (--impl, impl, ref, the lesson markers) and the gradient checker
    authoring/  generating exercises/, the notebooks and the lesson tables from one source
    grading/    grading a submission lesson by lesson: intake, repair, the runs, results, batch, Gradescope
    student/    hints, reset, watch, and the helper the notebooks call
    tools/      training, playing with and looking inside a model (train.py, play.py)
"""

# One BLAS thread for every process the tools start: this model's matrices are small, extra threads only fight
# over the cores (a training run took 10x longer with two threads on a busy 2-core machine), and sums come out
# the same on every run. NumPy reads these when it is first imported.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
