import sys

from meta.catalogue import main

sys.exit(main())
