"""site.yaml -> frozen, typed configuration.

`load_config` reads and validates the whole file and reports every mistake at once as
`site.yaml:LINE: what is wrong and how to fix it` (a ConfigError). Nothing here touches the
network; the only file read is site.yaml itself.

The package, from the outside in: `settings` (the frozen dataclasses), `loader`
(`load_config`, `parse_config`), `sections` (the site.yaml schema, section by section),
`values` (checks of single values) and `schema` (the YAML node reader that collects every
problem with its line). Import from `fedipress.config`; the submodules are internal.
"""

from . import sections as _sections
from .loader import load_config, parse_config
from .settings import Author, AuthorLink, FediverseConfig, FeedConfig, ProfileField, SiteConfig

__all__ = [
    "Author",
    "AuthorLink",
    "FediverseConfig",
    "FeedConfig",
    "ProfileField",
    "SiteConfig",
    "load_config",
    "parse_config",
]

# The key lists under their old private names: tests/config/test_config.py checks that
# https://github.com/fedipress/fedipress/blob/main/docs/configuration.md documents every key.
_TOP_KEYS = _sections.TOP_KEYS
_AUTHOR_KEYS = _sections.AUTHOR_KEYS
_FEED_KEYS = _sections.FEED_KEYS
_FEDIVERSE_KEYS = _sections.FEDIVERSE_KEYS
