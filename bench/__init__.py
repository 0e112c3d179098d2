"""Benchmarks for chatweb: real Daphne, real simulator, real websocket clients.

Run with `make bench` (about 10 minutes) or `BENCH_QUICK=1 make bench` (about 2 minutes
per backend). Never part of `make test`. See README.md, "Benchmarks".
"""
