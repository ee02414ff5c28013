"""Scripts for a machine with a GPU (run.sh: tests and benchmarks; paper_tables: the sweeps)."""
