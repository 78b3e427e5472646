"""Scores with sacreBLEU (the only importer of sacrebleu), multi-reference grouping, evaluation of runs,
attention reports of single sentences (``attention``, drawn by ``attnlab.viz``) and paired bootstrap
tests (``significance``). Suites, sweeps and comparisons are :mod:`attnlab.experiments`."""
