"""Benchmarks that print ratios measured in one run (DESIGN.md section 6)."""
