"""Train the transformer on the digit-operations task: python train.py --help (the code is kata/tools/train.py)."""

import os
import sys

from kata import ONE_BLAS_THREAD

for variable, value in ONE_BLAS_THREAD.items():  # before numpy is imported; a value you set yourself stays
    os.environ.setdefault(variable, value)

from kata.course.console import printable_output  # noqa: E402
from kata.tools.train import main  # noqa: E402 - numpy reads the variables above when it is first imported

if __name__ == "__main__":
    printable_output()
    sys.exit(main())
