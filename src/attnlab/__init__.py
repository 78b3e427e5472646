"""attnlab: a workbench for neural machine translation with seq2seq models, attention and the Transformer."""

import os

__version__ = "0.1.0"

# Fixed thread counts in MKL and OpenMP whatever else runs on the machine, so that seeded runs repeat bit
# for bit under load: set before any attnlab module loads torch (which loads them), unless the user set them.
for _name in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
    os.environ.setdefault(_name, "FALSE")

# oneDNN, which runs torch's bf16 matrix products on the CPU, keeps a compiled primitive per operand
# shape (1,024 by default), and batches under a token budget bring new shapes at every step: bf16-mixed
# training of the Multi30k Transformer peaked at 3.1 GB over 128 steps (1.7 GB in fp32). Sixteen keep
# the shapes of one step (its layers repeat them) at the same speed and 2.2 GB; 0 gives 1.9 GB, 9%
# slower (docs/speed.md: benchmarks/train_memory.py --bf16 --onednn-cache). MKL runs fp32: unaffected.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
