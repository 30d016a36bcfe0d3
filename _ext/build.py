"""`jupyter-book build`, with Sphinx reading (and so executing) two notebooks at a time.

Jupyter Book 1's command line has no `--jobs`, but the function it calls has one; this passes it through. The
chapters run in two processes on these 2 cores, each on one thread (most chapters train on one thread anyway),
which keeps `make test` within its 15 minutes. The extensions that do not declare themselves safe to read in parallel are declared by
`nbdev_book.allow_parallel_read`, after checking that they are.

    python _ext/build.py [--jobs N] <jupyter-book build's arguments>
"""
from __future__ import annotations

import functools
import os
import sys

import jupyter_book.sphinx
from jupyter_book.cli.main import main

if __name__ == "__main__":
    args = sys.argv[1:]
    jobs = 2
    if args[:1] == ["--jobs"]:
        jobs, args = int(args[1]), args[2:]
    jupyter_book.sphinx.build_sphinx = functools.partial(jupyter_book.sphinx.build_sphinx, jobs=jobs)
    # a page that reads what chapters recorded waits for them (attn_tutorial.book.read_results)
    os.environ["ATTN_TUTORIAL_WAIT"] = "1200"
    # one thread per notebook: two notebooks of two threads each on two cores ran 5-10x slower than alone (their
    # threads wait for each other), so that the whole build took longer than reading one notebook at a time
    if jobs > 1:
        os.environ["OMP_NUM_THREADS"] = "1"
    sys.argv = ["jupyter-book", "build", *args]
    main()
