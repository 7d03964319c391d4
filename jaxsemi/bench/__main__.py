"""``python -m jaxsemi.bench``: run the benchmarks (see :mod:`jaxsemi.bench`)."""

import sys

from . import main

sys.exit(main())
