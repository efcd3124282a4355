"""Ask the trained model questions such as Max ( 5 3 9 ): python play.py --help (the code is kata/play_tool.py)."""

import os
import sys

# One BLAS thread: this model's matrices are small, and extra threads only fight over the cores (the default run
# took 10x longer with two threads on a busy 2-core machine). Set OPENBLAS_NUM_THREADS yourself to override.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

from kata.play_tool import main  # noqa: E402 - numpy reads the variables above when it is first imported

if __name__ == "__main__":
    sys.exit(main())
