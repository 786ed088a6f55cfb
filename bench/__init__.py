"""flowjit benchmarks: speed measured as ratios side by side in one run."""
