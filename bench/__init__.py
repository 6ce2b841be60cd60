"""Benchmarks: tiffin against the seed's shell pipeline, on throwaway servers (bench/run.py)."""
