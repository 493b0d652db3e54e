"""geogrid's benchmarks: `make bench` (or `python -m benchmarks [name ...]`).

Each benchmark runs its contenders in one process, interleaved round by round, checks
that they agree before reporting any time, and prints ratios. Results are also written
as JSON under ``benchmarks/out/``.
"""
