"""Scores with sacreBLEU (the only importer of sacrebleu), evaluation of runs, comparison across runs,
and attention reports of single sentences (``attention``, drawn by ``attnlab.viz``)."""
