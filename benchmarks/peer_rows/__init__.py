"""The rows of benchmarks/peers.py: one module per framework, each row a `build(problem) -> step` function."""
