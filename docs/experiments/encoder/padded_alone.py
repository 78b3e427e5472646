"""Does a test sentence get the same greedy translation alone as inside a batch of 64?

A packed encoder reads each source up to its own last word, so it must (0 differences); the encoder
suite's ``padded`` variant runs over the padding after shorter sources, so its state, and its
translation, can depend on the other sentences of the batch. Run from the project root after the
encoder suite (a few minutes on one thread)::

    python docs/experiments/encoder/padded_alone.py runs/sweeps/encoder/padded runs/sweeps/encoder/unidirectional
"""

import sys

import torch

from attnlab.data.cache import cached_prepare
from attnlab.decoding.translator import Translator

torch.set_num_threads(1)
for run in sys.argv[1:]:
    translator = Translator.from_run(run)
    test = cached_prepare(translator.cfg.data, "runs/sweeps/encoder/prepared").texts["test"]
    sources = sorted({source for source, _ in test})
    batched = [t.text for t in translator.translate(sources, beam=1, batch_size=64)]
    alone = [t.text for t in translator.translate(sources, beam=1, batch_size=1)]
    differ = sum(a != b for a, b in zip(batched, alone, strict=True))
    print(f"{run}: {differ} of {len(sources)} test sources translate differently alone and in batches of 64")
