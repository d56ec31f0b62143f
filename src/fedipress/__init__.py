"""fedipress: a static blog publisher whose blogs are first-class citizens of the fediverse."""

__version__ = "0.1.0"

__all__ = ["__version__"]
