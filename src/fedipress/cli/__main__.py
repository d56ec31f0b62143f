"""`python -m fedipress.cli`: the same as the `fedipress` console script."""

from . import run

if __name__ == "__main__":  # pragma: no cover
    run()
