"""``python -m ground``: the same as the ``ground`` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
