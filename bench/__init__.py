"""Benchmarks (not tests): `sudo .venv/bin/python -m bench`. See bench/README.md."""
