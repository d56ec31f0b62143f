"""The actor key pair: file modes, refusals, the CI secret, mismatches and secrecy."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fedipress.cli import main
from fedipress.config import SiteConfig, load_config
from fedipress.errors import KeyPairError
from fedipress.federation.keys import (
    ENV_VAR,
    ensure_public_key,
    generate_keypair,
    generate_keys,
    key_status,
    load_private_key,
    private_key_path,
    public_key_fingerprint,
    public_key_path,
    read_public_key_pem,
)

SITE = """\
title: T
base_url: https://blog.example/
author:
  name: Alice
"""


@pytest.fixture
def config(tmp_path: Path) -> SiteConfig:
    (tmp_path / "site.yaml").write_text(SITE)
    return load_config(tmp_path / "site.yaml")


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable: the key must still be 0600."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def secret_lines(pem: bytes) -> list[str]:
    """The base64 body lines of a PEM: none may ever appear in a message."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def assert_no_key_material(message: str, *pems: bytes) -> None:
    for pem in pems:
        for line in secret_lines(pem):
            assert line[:16] not in message


def install(config: SiteConfig, private_pem: bytes | None, public_pem: bytes | None) -> None:
    if private_pem is not None:
        config.state_dir.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(private_key_path(config), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem)
    if public_pem is not None:
        public_key_path(config).write_bytes(public_pem)


# --- generate ---------------------------------------------------------------------------------


def test_generate_modes_and_formats(config: SiteConfig, wide_umask: None) -> None:
    private_path, public_path = generate_keypair(config)
    assert private_path == config.root / ".fedipress" / "private-key.pem"
    assert public_path == config.root / "fedipress-public-key.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.state_dir.stat().st_mode) == 0o700
    private_pem = private_path.read_bytes()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")  # SPKI
    key = load_private_key(config, environ={})
    assert key.key_size == 2048
    assert [p.name for p in config.state_dir.iterdir()] == ["private-key.pem"]  # no temp left


def test_generate_refuses_to_overwrite_without_force(config: SiteConfig) -> None:
    generate_keypair(config)
    before = private_key_path(config).read_bytes(), public_key_path(config).read_bytes()
    with pytest.raises(KeyPairError) as info:
        generate_keypair(config)
    message = str(info.value)
    assert "refollow" in message and "--force" in message
    assert (private_key_path(config).read_bytes(), public_key_path(config).read_bytes()) == before
    generate_keypair(config, force=True)
    assert private_key_path(config).read_bytes() != before[0]
    assert stat.S_IMODE(private_key_path(config).stat().st_mode) == 0o600
    load_private_key(config, environ={})  # the new pair matches


def test_generate_refuses_when_only_public_key_exists(
    config: SiteConfig, blog_public_pem: bytes
) -> None:
    install(config, None, blog_public_pem)
    with pytest.raises(KeyPairError, match="fedipress-public-key.pem: a key pair already exists"):
        generate_keypair(config)


def test_keys_never_written_inside_output_dir(config: SiteConfig) -> None:
    config.output_dir.mkdir()
    generate_keypair(config)
    assert list(config.output_dir.iterdir()) == []
    for path in (private_key_path(config), public_key_path(config)):
        assert not path.resolve().is_relative_to(config.output_dir.resolve())


def test_generate_guards_output_dir_even_if_config_allowed_it(tmp_path: Path) -> None:
    base = load_config(_write(tmp_path, SITE))
    # Simulate a configuration that slipped past config.py's checks.
    broken = replace(base, output_dir=tmp_path)
    with pytest.raises(KeyPairError, match="inside the output folder"):
        generate_keypair(broken)
    assert not broken.state_dir.exists()


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "site.yaml").write_text(text)
    return tmp_path / "site.yaml"


# --- public key -------------------------------------------------------------------------------


def test_read_public_key(config: SiteConfig, blog_public_pem: bytes) -> None:
    assert read_public_key_pem(config) is None
    install(config, None, blog_public_pem)
    pem = read_public_key_pem(config)
    assert pem is not None and pem.strip() == blog_public_pem.strip()
    assert public_key_fingerprint(pem).startswith("SHA256:")


def test_checked_public_key_is_remembered_by_its_bytes(
        config: SiteConfig, blog_public_pem: bytes) -> None:
    checked = config.state_dir / "cache" / "public-key.checked"
    # Not in canonical form (CRLF line ends): normalized, and not remembered.
    public_key_path(config).write_bytes(blog_public_pem.replace(b"\n", b"\r\n"))
    assert read_public_key_pem(config) == blog_public_pem
    assert not checked.exists()
    install(config, None, blog_public_pem)
    assert read_public_key_pem(config) == blog_public_pem
    assert not config.state_dir.exists()  # reading alone creates no folder
    checked.parent.mkdir(parents=True)  # as a build does
    assert read_public_key_pem(config) == blog_public_pem
    assert checked.is_file()
    assert read_public_key_pem(config) == blog_public_pem  # from the remembered check
    # Other bytes under the same name are checked again, whatever was remembered.
    public_key_path(config).write_text("not a key\n")
    with pytest.raises(KeyPairError, match="is not a PEM public key"):
        read_public_key_pem(config)


def test_unparsable_public_key(config: SiteConfig) -> None:
    public_key_path(config).write_text("not a key\n")
    with pytest.raises(KeyPairError, match="fedipress-public-key.pem: is not a PEM public key"):
        read_public_key_pem(config)


def test_non_rsa_public_key_refused(config: SiteConfig) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_key_path(config).write_bytes(other)
    with pytest.raises(KeyPairError, match="not an RSA key"):
        read_public_key_pem(config)


# --- build: ensure_public_key -----------------------------------------------------------------


def test_build_on_workstation_generates_and_says_so_once(config: SiteConfig) -> None:
    lines: list[str] = []
    pem = ensure_public_key(config, ci=False, log=lines.append)
    assert len(lines) == 1 and "generated" in lines[0] and "fedipress-public-key.pem" in lines[0]
    assert pem == read_public_key_pem(config)
    assert stat.S_IMODE(private_key_path(config).stat().st_mode) == 0o600
    assert ensure_public_key(config, ci=False, log=lines.append) == pem
    assert len(lines) == 1  # the second build is silent


def test_build_in_ci_without_key_fails_naming_the_command(config: SiteConfig) -> None:
    with pytest.raises(KeyPairError) as info:
        ensure_public_key(config, ci=True, log=pytest.fail)
    assert "`fedipress keys generate`" in str(info.value)
    assert not public_key_path(config).exists() and not config.state_dir.exists()


def test_build_needs_only_the_public_key(config: SiteConfig, blog_public_pem: bytes) -> None:
    install(config, None, blog_public_pem)
    assert ensure_public_key(config, ci=True, log=pytest.fail).strip() == blog_public_pem.strip()
    assert not config.state_dir.exists()


def test_build_restores_deleted_public_key(
    config: SiteConfig, blog_private_pem: bytes, blog_public_pem: bytes
) -> None:
    install(config, blog_private_pem, None)
    lines: list[str] = []
    assert ensure_public_key(config, ci=False, log=lines.append).strip() == blog_public_pem.strip()
    assert len(lines) == 1 and "restored" in lines[0]
    with pytest.raises(KeyPairError, match="commit it"):
        public_key_path(config).unlink()
        ensure_public_key(config, ci=True, log=pytest.fail)


# --- load_private_key -------------------------------------------------------------------------


def test_load_from_file(
    config: SiteConfig, blog_private_pem: bytes, blog_public_pem: bytes
) -> None:
    install(config, blog_private_pem, blog_public_pem)
    key = load_private_key(config, environ={})
    assert isinstance(key, rsa.RSAPrivateKey)


def test_load_from_environment(
    config: SiteConfig, blog_private_pem: bytes, blog_public_pem: bytes
) -> None:
    install(config, None, blog_public_pem)
    key = load_private_key(config, environ={ENV_VAR: blog_private_pem.decode()})
    assert key.private_numbers() == serialization.load_pem_private_key(
        blog_private_pem, None
    ).private_numbers()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "transform",
    [
        lambda pem: pem.replace("\n", "\\n"),  # one line with literal \n, as CI secrets often are
        lambda pem: '"' + pem.strip().replace("\n", "\\n") + '"',  # and quoted
        lambda pem: pem.replace("\n", "\r\n"),  # pasted from Windows
        lambda pem: "\n  " + pem + "\n\n",
    ],
)
def test_environment_variants(
    config: SiteConfig, blog_private_pem: bytes, blog_public_pem: bytes, transform: object
) -> None:
    install(config, None, blog_public_pem)
    assert callable(transform)
    load_private_key(config, environ={ENV_VAR: transform(blog_private_pem.decode())})


def test_environment_wins_over_file(
    config: SiteConfig, blog_private_pem: bytes, blog_public_pem: bytes, remote_private_pem: bytes
) -> None:
    install(config, remote_private_pem, blog_public_pem)
    load_private_key(config, environ={ENV_VAR: blog_private_pem.decode()})


def test_missing_private_key(config: SiteConfig, blog_public_pem: bytes) -> None:
    install(config, None, blog_public_pem)
    with pytest.raises(KeyPairError) as info:
        load_private_key(config, environ={ENV_VAR: "  "})
    assert str(info.value).startswith(".fedipress/private-key.pem: not found")
    assert "fedipress keys generate" in str(info.value) and ENV_VAR in str(info.value)


def test_mismatch_refused(
    config: SiteConfig, remote_private_pem: bytes, blog_public_pem: bytes
) -> None:
    install(config, remote_private_pem, blog_public_pem)
    with pytest.raises(KeyPairError) as info:
        load_private_key(config, environ={})
    message = str(info.value)
    assert "does not match fedipress-public-key.pem" in message
    assert_no_key_material(message, remote_private_pem, blog_public_pem)
    with pytest.raises(KeyPairError) as info:
        load_private_key(config, environ={ENV_VAR: remote_private_pem.decode()})
    assert f"the private key from the {ENV_VAR} environment variable does not match" in str(
        info.value
    )


def test_private_key_without_published_key_refused(
    config: SiteConfig, blog_private_pem: bytes
) -> None:
    install(config, blog_private_pem, None)
    with pytest.raises(KeyPairError, match="fedipress-public-key.pem: not found"):
        load_private_key(config, environ={})


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_readable_by_others_refused(
    config: SiteConfig, blog_private_pem: bytes, blog_public_pem: bytes, mode: int
) -> None:
    install(config, blog_private_pem, blog_public_pem)
    os.chmod(private_key_path(config), mode)
    with pytest.raises(KeyPairError) as info:
        load_private_key(config, environ={})
    assert f"mode {mode:04o}" in str(info.value) and "chmod 600" in str(info.value)


@pytest.mark.parametrize(
    "garbage",
    [
        "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n"
        "-----END PRIVATE KEY-----\n",
        "hunter2-secret-value-not-a-pem",
    ],
)
def test_unparsable_private_key_message_has_no_content(
    config: SiteConfig, blog_public_pem: bytes, garbage: str
) -> None:
    install(config, None, blog_public_pem)
    with pytest.raises(KeyPairError) as info:
        load_private_key(config, environ={ENV_VAR: garbage})
    message = str(info.value)
    assert message.startswith(f"the {ENV_VAR} environment variable: is not an unencrypted PEM")
    assert "MIIE" not in message and "hunter2" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_encrypted_private_key_refused(config: SiteConfig, blog_public_pem: bytes) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    install(config, encrypted, blog_public_pem)
    with pytest.raises(KeyPairError, match="is not an unencrypted PEM private key"):
        load_private_key(config, environ={})


# --- the command ------------------------------------------------------------------------------


def test_keys_command(
    config: SiteConfig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    site = str(config.config_file)
    assert main(["keys", "--config", site, "show"]) == 2
    assert "run `fedipress keys generate`" in capsys.readouterr().err

    assert main(["keys", "--config", site, "generate"]) == 0
    out = capsys.readouterr().out
    private_pem = private_key_path(config).read_bytes()
    assert ".fedipress/private-key.pem" in out and "fedipress-public-key.pem" in out
    assert_no_key_material(out, private_pem)

    assert main(["keys", "--config", site, "generate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedipress: error: .fedipress/private-key.pem: a key pair already exists")
    assert "refollow" in err

    assert main(["keys", "--config", site, "show"]) == 0
    out = capsys.readouterr().out
    assert "(matches the public key)" in out
    assert public_key_path(config).read_text() in out
    assert_no_key_material(out, private_pem)

    assert main(["keys", "--config", site, "generate", "--force"]) == 0
    assert private_key_path(config).read_bytes() != private_pem


def test_key_status_and_generate_keys_as_library_functions(
    config: SiteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `fedipress keys` prints comes from these, callable without the command line.
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(KeyPairError, match="run `fedipress keys generate`"):
        key_status(config)
    made = generate_keys(config)
    assert (made.private_key, made.public_key) == (".fedipress/private-key.pem",
                                                   "fedipress-public-key.pem")
    status = key_status(config)
    assert status.fingerprint == made.fingerprint
    assert status.private_key == ".fedipress/private-key.pem" and status.private_problem is None
    assert status.public_pem == public_key_path(config).read_text() and not status.restored
    public_key_path(config).unlink()
    assert key_status(config).restored and public_key_path(config).is_file()


def test_keys_show_names_the_public_key_before_refusing_a_mismatched_private_one(
    config: SiteConfig, remote_private_pem: bytes, blog_public_pem: bytes,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    install(config, remote_private_pem, blog_public_pem)
    problem = key_status(config).private_problem
    assert problem is not None and "does not match" in str(problem)
    assert main(["keys", "--config", str(config.config_file), "show"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "public key:  fedipress-public-key.pem",
        f"fingerprint: {public_key_fingerprint(blog_public_pem)}",
    ]
    assert err.startswith("fedipress: error: the private key from .fedipress/private-key.pem"
                          " does not match"), err
