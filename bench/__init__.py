"""Benchmarks: time to verdict, soak, cost at production volume (`make bench`, `make bench-scale`)."""
