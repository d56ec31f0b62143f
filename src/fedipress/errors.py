"""The exception tree.

    Exception
     ├── FedipressError            a user's mistake or an outside condition the user can fix;
     │    │                         the CLI prints str(error) as one line (or one line per
     │    │                         problem) and exits with code 2. Never shows a traceback.
     │    ├── ConfigError           site.yaml is wrong (carries every problem at once)
     │    ├── ContentError          one or more content files are wrong (every file at once)
     │    ├── ThemeError            a template is missing or broken (names file and line)
     │    ├── KeyPairError          the actor key pair is missing, unreadable or mismatched
     │    ├── FetchError            a remote document could not be fetched or was refused
     │    │    ├── UnsafeURLError   the URL points at a private/loopback address or bad scheme
     │    │    ├── FetchUnavailable temporary: timeout, connection error, 5xx, 429 (retry later)
     │    │    └── FetchGone        410 Gone: the document (an account, a key) was deleted
     │    └── StoreError            the state database cannot be opened or is from the future
     └── SignatureError (ValueError) an HTTP signature failed verification; `reason` is short
                                     and safe to send back in a 401 body.

Anything else that escapes is a bug in fedipress and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ContentError",
    "FedipressError",
    "FetchError",
    "FetchGone",
    "FetchUnavailable",
    "KeyPairError",
    "Problem",
    "SignatureError",
    "StoreError",
    "ThemeError",
    "UnsafeURLError",
]


@dataclass(frozen=True)
class Problem:
    """One located mistake: `file:line: message`."""

    file: str
    line: int | None
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_warning(self) -> str:
        """`file:line: warning: message`, as compilers write what they do not stop for."""
        return f"{self.where}: warning: {self.message}"


class FedipressError(Exception):
    """A problem the user can fix. The CLI prints it without a traceback and exits 2."""

    exit_code = 2


class _ProblemList(FedipressError):
    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(_ProblemList):
    """site.yaml has one or more mistakes; every one is listed."""


class ContentError(_ProblemList):
    """One or more content files are broken; every one is listed."""


class ThemeError(FedipressError):
    """A theme template is missing or fails to compile or render."""


class KeyPairError(FedipressError):
    """The actor key pair is missing, unreadable, or does not match the published key."""


class FetchError(FedipressError):
    """A remote document could not be fetched, or was not acceptable."""


class UnsafeURLError(FetchError):
    """A URL was refused before any connection: bad scheme or non-public address."""


class FetchUnavailable(FetchError):
    """The remote server could not answer now (timeout, connection error, 5xx, 429): the same
    fetch may well succeed later, so callers answer "try again" rather than "never"."""


class FetchGone(FetchError):
    """The remote server answered 410 Gone: the document was deleted for good."""


class StoreError(FedipressError):
    """The state database cannot be used."""


class SignatureError(ValueError):
    """An HTTP signature did not verify. `reason` is short and safe to return to the sender."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
