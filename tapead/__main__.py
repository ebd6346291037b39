"""python -m tapead: the seed walkthrough; python -m tapead trace EXPR --at ...: traces of EXPR.
See tapead/cli.py (python -m tapead --help)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
