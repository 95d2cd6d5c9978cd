"""``python -m safetycatch.build STEP`` (the Makefile's package, iam, compile, check-python and slack-manifest steps):
runs :func:`safetycatch.build.steps.main`."""

import sys

from safetycatch.build.steps import main

sys.exit(main(sys.argv[1:]))
