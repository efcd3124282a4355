import sys

from tests.mutants import main

sys.exit(main())
