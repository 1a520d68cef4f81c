"""hartutor's benchmarks: speed and memory figures, printed as tables (not timed tests).

``python -m benchmarks`` runs them all and writes ``docs/benchmarks.md``; each ``bench_*``
module also runs on its own (``python -m benchmarks.bench_models --help``).
"""
