"""Benchmarks of calserver against stock Radicale (see README.md in this folder)."""
