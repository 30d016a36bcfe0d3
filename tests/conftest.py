"""Shared test settings: a headless matplotlib backend and reproducible hypothesis runs."""
import matplotlib
from hypothesis import settings

matplotlib.use("Agg")  # tests draw figures without a display; the notebooks keep their inline backend

# derandomize: CI and every developer see the same examples, so a failure reproduces exactly
settings.register_profile("repro", derandomize=True, deadline=None, max_examples=60, print_blob=True)
settings.load_profile("repro")
