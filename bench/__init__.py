"""vmsd benchmark suite: ``make bench`` runs ``bench/run.py``, which writes ``bench/report.md``."""
