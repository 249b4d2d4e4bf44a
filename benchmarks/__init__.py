"""Benchmarks: seqjax side by side with reference implementations, written to results/."""
