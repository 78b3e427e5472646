"""Experiments: suites of variants (``suite``), trained and evaluated by ``sweep``, compared in one report
(``compare``, from each run's ``run_results``). This package sits above training and evaluation: it
trains models and scores them, and nothing below imports it."""
