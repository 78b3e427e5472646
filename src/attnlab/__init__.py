"""attnlab: a workbench for neural machine translation with seq2seq models, attention and the Transformer."""

import os

__version__ = "0.1.0"

# Fixed thread counts in MKL and OpenMP whatever else runs on the machine, so that seeded runs repeat bit
# for bit under load: set before any attnlab module loads torch (which loads them), unless the user set them.
for _name in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
    os.environ.setdefault(_name, "FALSE")
