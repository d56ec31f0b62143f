"""The blog actor's RSA key pair: generate, publish the public half, load the private half.

- The private key lives in `.fedipress/private-key.pem` (PKCS#8 PEM, mode 0600 from the moment
  it is created) or comes from the `FEDIPRESS_PRIVATE_KEY` environment variable (a secret
  store's, where a file cannot be kept).
- The public key (SPKI PEM) lives beside site.yaml in `fediverse.public_key_file` and is meant to
  be committed, so a CI build needs no secret: the build reads only the public key.
- Whatever signs calls `load_private_key`, which refuses a key that does not match the published
  public key: a mismatch would make every remote server reject every signature.

No message here ever contains key material.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import SiteConfig
from ..errors import KeyPairError
from ..wording import docs_url

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# cryptography is imported where a key is parsed or made, not at start-up: a build whose
# public key was checked before (see read_public_key_pem) never needs it (~13 ms).

__all__ = [
    "ENV_VAR",
    "KEY_SIZE",
    "ensure_public_key",
    "generate_keypair",
    "load_private_key",
    "private_key_path",
    "public_key_fingerprint",
    "public_key_path",
    "public_pem_of",
    "read_public_key_pem",
    "same_public_key",
    "GeneratedKeys",
    "KeyStatus",
    "generate_keys",
    "key_status",
]

ENV_VAR = "FEDIPRESS_PRIVATE_KEY"
KEY_SIZE = 2048  # what Mastodon generates and every server accepts
_ROTATION_WARNING = (
    "replacing it rotates the key: followers' servers will fail to verify new posts until they"
    " refetch the actor, and some will need followers to refollow"
)


def private_key_path(config: SiteConfig) -> Path:
    return config.state_dir / "private-key.pem"


def public_key_path(config: SiteConfig) -> Path:
    return config.root / config.fediverse.public_key_file


def _shown(path: Path, config: SiteConfig) -> str:
    """The path relative to the site folder when it is inside it: short, and what users type."""
    try:
        return str(path.relative_to(config.root))
    except ValueError:
        return str(path)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` atomically, the file having `mode` from its creation.

    The temporary file is created with O_EXCL and the final mode, so a private key is never
    readable by others, not even for an instant between create and chmod.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _make_folder(folder: Path, config: SiteConfig, mode: int = 0o777) -> None:
    """Make `folder` (and its parents), or say plainly what stands in the way."""
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as error:
        # mkdir reports a file in the way as FileExistsError (the folder itself) or
        # NotADirectoryError (a parent); name the file, not the errno.
        for place in (folder, *folder.parents):
            if os.path.lexists(place):
                if not place.is_dir():
                    raise KeyPairError(
                        f"{_shown(place, config)}: is a file, not a folder; fedipress keeps the"
                        " key pair and its state there, so move that file elsewhere"
                    ) from None
                break
        raise KeyPairError(f"{_shown(folder, config)}: cannot create this folder"
                           f" ({error.strerror or type(error).__name__})") from None


def _write_key_file(path: Path, data: bytes, mode: int, config: SiteConfig) -> None:
    try:
        _write_new(path, data, mode)
    except OSError as error:
        what = "is a folder, not a key file; move that folder aside" if path.is_dir() else (
            f"cannot be written ({error.strerror or type(error).__name__})")
        raise KeyPairError(f"{_shown(path, config)}: {what}") from None


def _public_pem(key: rsa.RSAPublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_keypair(config: SiteConfig, *, force: bool = False) -> tuple[Path, Path]:
    """Create an RSA-2048 pair; return (private key path, public key path).

    Refuses to replace an existing key unless `force`, because rotating the key breaks
    verification on followers' servers.
    """
    private_path = private_key_path(config)
    public_path = public_key_path(config)
    for path in (private_path, public_path):
        # config.py refuses such layouts already; this guards the one file that must never be
        # published, whatever the configuration code becomes.
        if _inside(path, config.output_dir):
            raise KeyPairError(f"{_shown(path, config)}: is inside the output folder"
                               f" {config.output_dir}, which is published; move output_dir")
    if not force:
        existing = [p for p in (private_path, public_path) if p.exists()]
        if existing:
            raise KeyPairError(
                f"{_shown(existing[0], config)}: a key pair already exists; {_ROTATION_WARNING}."
                " If you really mean it, run `fedipress keys generate --force`"
            )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _make_folder(config.state_dir, config, 0o700)
    # Private first: if we stop in between, load_private_key reports the mismatch loudly
    # instead of a published key having no private half anywhere.
    _write_key_file(private_path, private_pem, 0o600, config)
    _make_folder(public_path.parent, config)
    _write_key_file(public_path, _public_pem(key.public_key()), 0o644, config)
    return private_path, public_path


def _parse_public(data: bytes, where: str, *, in_site: bool = True) -> rsa.RSAPublicKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        # Only a file of the site's own may be moved aside; one outside it (public_key_file:
        # /etc/passwd) is someone else's, so point at the setting instead.
        fix = (
            "restore it from git, or move it aside and run `fedipress keys show` to recreate it"
            " from the private key"
            if in_site
            else "set fediverse.public_key_file in site.yaml to the blog's public key file"
            " (default fedipress-public-key.pem, beside site.yaml)"
        )
        raise KeyPairError(
            f"{where}: is not a PEM public key (it should start with -----BEGIN PUBLIC KEY-----);"
            f" {fix}"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyPairError(f"{where}: is not an RSA key; fediverse servers expect RSA")
    return key


def read_public_key_pem(config: SiteConfig, *, remember: bool = True) -> bytes | None:
    """The published public key as SPKI PEM, or None when there is none yet.

    `remember=False` (a dry run) writes nothing, not even the note that the key was checked."""
    path = public_key_path(config)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise KeyPairError(
            f"{_shown(path, config)}: is a folder, not a key file; set"
            " fediverse.public_key_file in site.yaml to a file name"
        ) from None
    except OSError as error:
        raise KeyPairError(f"{_shown(path, config)}: cannot be read ({error.strerror})") from None
    # A key already in canonical form is remembered by its hash, so the next build returns
    # it without parsing it again.
    checked = config.state_dir / "cache" / "public-key.checked"
    digest = hashlib.sha256(data).hexdigest()
    try:
        if checked.read_text(encoding="ascii") == digest:
            return data
    except (OSError, ValueError):
        pass
    pem = _public_pem(_parse_public(data, _shown(path, config),
                                    in_site=_inside(path, config.root)))
    if remember and pem == data and checked.parent.is_dir():  # only where a build caches
        try:
            _write_new(checked, digest.encode("ascii"), 0o644)
        except OSError:
            pass  # a read-only state folder: parse again next time
    return pem


def public_pem_of(private_key: rsa.RSAPrivateKey) -> bytes:
    """The SPKI PEM of `private_key`'s public half (what the actor document must publish)."""
    return _public_pem(private_key.public_key())


def same_public_key(one: bytes | str, other: bytes | str) -> bool:
    """Whether two PEM texts hold the same public key (line breaks and headers aside); a text
    that is no public key matches nothing."""
    from cryptography.hazmat.primitives import serialization

    def der(pem: bytes | str) -> bytes | None:
        try:
            key = serialization.load_pem_public_key(
                pem.encode("utf-8") if isinstance(pem, str) else pem)
        except (ValueError, TypeError, UnicodeEncodeError):
            return None
        return key.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)

    first = der(one)
    return first is not None and first == der(other)


def public_key_fingerprint(public_pem: bytes) -> str:
    """SHA-256 of the DER public key, as `SHA256:hex` (to compare keys at a glance)."""
    from cryptography.hazmat.primitives import serialization

    der = serialization.load_pem_public_key(public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def ensure_public_key(config: SiteConfig, *, ci: bool, log: Callable[[str], None]) -> bytes:
    """The public key for the build; on a workstation, create the pair when none exists.

    A public key alone is enough (CI builds carry no secret). With no key at all, `ci=True`
    fails naming the command to run, so CI never invents an identity nobody can sign for.
    """
    public = read_public_key_pem(config)
    if public is not None:
        return public
    private_path = private_key_path(config)
    public_file = _shown(public_key_path(config), config)
    if private_path.exists():
        if ci:
            raise KeyPairError(
                f"{public_file}: not found; commit it with site.yaml (`fedipress keys show`"
                " prints it)"
            )
        # The public half was deleted but the private key is here: restore it, keep the identity.
        key = load_private_key(config, environ={}, check_published=False)
        pem = _public_pem(key.public_key())
        _write_key_file(public_key_path(config), pem, 0o644, config)
        log(f"restored {public_file} from {_shown(private_path, config)}")
        return pem
    if ci:
        raise KeyPairError(
            f"{public_file}: not found and this is a CI build, so no key pair is created here;"
            " run `fedipress keys generate` on your machine and commit"
            f" {public_file} (a build needs nothing else; {_shown(private_path, config)} stays"
            " on the machine that publishes, where the inbox runs)"
        )
    private_path, public_path = generate_keypair(config)
    log(f"generated the blog's key pair: commit {_shown(public_path, config)}, keep"
        f" {_shown(private_path, config)} secret (see {docs_url('keys')})")
    public = read_public_key_pem(config)
    assert public is not None  # just written
    return public


def _from_environment(text: str) -> bytes:
    value = text.strip().strip("'\"").strip()
    if "\\n" in value:
        # CI secrets pasted as one line often carry literal backslash-n escapes.
        value = value.replace("\\r", "").replace("\\n", "\n")
    return value.encode("utf-8") + b"\n"


def load_private_key(
    config: SiteConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    check_published: bool = True,
) -> rsa.RSAPrivateKey:
    """The private key, from FEDIPRESS_PRIVATE_KEY or `.fedipress/private-key.pem`.

    Refuses (KeyPairError) a missing, unreadable, group/world-readable or non-RSA key, and one
    that does not match the published public key. Messages never include key material.
    """
    private_path = private_key_path(config)
    shown = _shown(private_path, config)
    env_value = environ.get(ENV_VAR, "")
    if env_value.strip():
        source = f"the {ENV_VAR} environment variable"
        data = _from_environment(env_value)
    else:
        source = shown
        try:
            status = private_path.stat()
        except FileNotFoundError:
            raise KeyPairError(
                f"{shown}: not found and {ENV_VAR} is not set; run `fedipress keys generate`,"
                f" or set {ENV_VAR} to the private key (PEM) in CI"
            ) from None
        except OSError as error:  # .fedipress is a file, say (ENOTDIR)
            raise KeyPairError(f"{shown}: cannot be read ({error.strerror})") from None
        if not stat.S_ISREG(status.st_mode):
            what = "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file"
            raise KeyPairError(
                f"{shown}: is {what}, not the private key file; put the blog's private key"
                " there (PEM, mode 0600), or create a new pair with"
                " `fedipress keys generate --force`"
            )
        if os.name == "posix" and status.st_mode & 0o077:
            raise KeyPairError(
                f"{shown}: is readable by other users (mode {status.st_mode & 0o777:04o}); a"
                f" private key must be private: run `chmod 600 {private_path}`"
            )
        try:
            data = private_path.read_bytes()
        except OSError as error:
            raise KeyPairError(f"{shown}: cannot be read ({error.strerror})") from None
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The library's message is dropped on purpose: it is not needed, and nothing derived
        # from the key text may reach a log.
        raise KeyPairError(
            f"{source}: is not an unencrypted PEM private key (the text `fedipress keys generate`"
            " writes, starting with a BEGIN PRIVATE KEY line)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyPairError(f"{source}: is not an RSA private key; fediverse servers expect RSA")
    if check_published:
        # (remember=False: whatever signs parses keys anyway, and a refused publish must
        # leave the state folder as it found it)
        published = read_public_key_pem(config, remember=False)
        public_file = _shown(public_key_path(config), config)
        if published is None:
            raise KeyPairError(
                f"{public_file}: not found, so the private key cannot be checked against what"
                " the site publishes; restore it from git, or build the site first"
            )
        if _public_pem(key.public_key()) != published:
            raise KeyPairError(
                f"the private key from {source} does not match {public_file}, the public key"
                " the site publishes; remote servers would reject every signature. Use the"
                " matching private key, or rotate with `fedipress keys generate --force`"
                " and rebuild (followers' servers will have to refetch the key)"
            )
    return key


@dataclass(frozen=True)
class GeneratedKeys:
    """What `generate_keys` wrote: the two files (as shown to the user) and the fingerprint."""

    private_key: str
    public_key: str
    fingerprint: str


def generate_keys(config: SiteConfig, *, force: bool = False) -> GeneratedKeys:
    """`fedipress keys generate [--force]`: a new key pair, refused over an existing one
    unless `force` (a rotation)."""
    private_path, public_path = generate_keypair(config, force=force)
    pem = read_public_key_pem(config)
    assert pem is not None
    return GeneratedKeys(private_key=_shown(private_path, config),
                         public_key=_shown(public_path, config),
                         fingerprint=public_key_fingerprint(pem))


@dataclass(frozen=True)
class KeyStatus:
    """`fedipress keys show`: the public key and where its private half is.

    `private_key` is where the matching private key comes from (the environment variable or
    the file), None when it is not on this machine. `private_problem` is why the private key
    there cannot sign (a mismatch, loose permissions): reported after the public half, which
    is still worth seeing."""

    public_key: str
    fingerprint: str
    public_pem: str
    restored: bool  # the public key file was missing and was written from the private key
    private_key: str | None
    private_problem: KeyPairError | None = None


def key_status(config: SiteConfig) -> KeyStatus:
    pem = read_public_key_pem(config)
    private_path = private_key_path(config)
    restored = False
    if pem is None:
        if private_path.exists():
            pem = _public_pem(load_private_key(config, check_published=False).public_key())
            _write_key_file(public_key_path(config), pem, 0o644, config)
            restored = True
        else:
            raise KeyPairError("no key pair yet; run `fedipress keys generate`")
    where: str | None = None
    problem: KeyPairError | None = None
    if os.environ.get(ENV_VAR, "").strip() or private_path.exists():
        try:
            load_private_key(config)  # refuses a mismatched or unprotected key, naming the fix
        except KeyPairError as error:
            problem = error
        where = ENV_VAR if os.environ.get(ENV_VAR, "").strip() else _shown(private_path, config)
    return KeyStatus(public_key=_shown(public_key_path(config), config),
                     fingerprint=public_key_fingerprint(pem), public_pem=pem.decode("ascii"),
                     restored=restored, private_key=where, private_problem=problem)
