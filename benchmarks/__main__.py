"""The old spelling ``python -m benchmarks`` (from a source checkout) of ``python -m jaxsemi.bench``."""

import sys

from jaxsemi.bench import main

sys.exit(main())
