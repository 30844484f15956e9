"""Suite-wide settings: two pytest workers share two cores, so each runs torch on one thread."""

import os

os.environ.setdefault("CIRCUITSPEC_THREADS", "1")
