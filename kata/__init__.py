"""Tooling of the kata: the lesson manifest, loading an implementation, and gradient checking."""

# One BLAS thread for every process the tools start: this model's matrices are small, extra threads only fight
# over the cores (a training run took 10x longer with two threads on a busy 2-core machine), and sums come out
# the same on every run. NumPy reads these when it is first imported.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
