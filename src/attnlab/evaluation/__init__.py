"""Scores with sacreBLEU (the only importer of sacrebleu), evaluation of runs, attention reports of single
sentences (``attention``, drawn by ``attnlab.viz``), and comparisons: paired bootstrap tests
(``significance``), experiment suites (``suite``) trained by ``sweep`` and reported by ``compare``."""
