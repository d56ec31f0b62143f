"""Real nginx, Caddy and Apache on loopback for tests: start one on a generated configuration,
wait for its port, stop it. Skips (saying why) where the binary is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["binary", "start_apache", "start_caddy", "start_nginx", "stop", "wait_port"]

NGINX = Path("/usr/sbin/nginx")
CADDY = Path("/usr/bin/caddy")
# Apache's binary; its modules are looked for in ../lib/apache2/modules beside it (Debian's
# layout), so an unpacked apache2-bin package works too (FEDIPRESS_TEST_APACHE2=path).
APACHE = Path(os.environ.get("FEDIPRESS_TEST_APACHE2", "/usr/sbin/apache2"))
START_TIMEOUT = 20.0
_PACKAGES = {"nginx": "nginx", "caddy": "caddy", "apache": "apache2-bin"}


def binary(kind: str) -> Path:
    path = {"nginx": NGINX, "caddy": CADDY, "apache": APACHE}[kind]
    found = path if path.is_file() else None
    if found is None and kind != "apache":
        found = Path(w) if (w := shutil.which(kind)) else None
    if found is None:
        pytest.skip(f"{kind} is not installed ({path} missing; Debian package"
                    f" `{_PACKAGES[kind]}`): the generated {kind} configuration is not run"
                    " for real")
    return found


def wait_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n"
                                 f"{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what} did not listen on {port}"
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_nginx(binary: Path, work: Path, site_conf: Path, port: int
                 ) -> subprocess.Popen[bytes]:
    prefix = work / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    mime = Path("/etc/nginx/mime.types")
    conf = prefix / "nginx.conf"
    conf.write_text(
        # As root, nginx's workers would run as nobody, who cannot read pytest's temp dirs.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    {f"include {mime};" if mime.is_file() else ""}
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {site_conf};
}}
""", encoding="utf-8")
    argv = [str(binary), "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30,
                           check=False)
    assert check.returncode == 0, f"nginx -t refused the generated configuration:\n" \
        f"{check.stderr}\n{site_conf.read_text()}"
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    wait_port(port, process, log, "nginx")
    return process


def start_caddy(binary: Path, work: Path, site_conf: Path, port: int
                 ) -> subprocess.Popen[bytes]:
    home = work / "caddy"
    home.mkdir()
    caddyfile = home / "Caddyfile"
    # Global options for the test only: no admin endpoint (parallel runs would share :2019),
    # no automatic HTTPS, state under the temp dir.
    caddyfile.write_text(
        f"{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {home}/data\n}}\n\n"
        + site_conf.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg-data"),
           "XDG_CONFIG_HOME": str(home / "xdg-config")}
    check = subprocess.run(
        [str(binary), "validate", "--config", str(caddyfile), "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=60, env=env, check=False)
    assert check.returncode == 0, f"caddy refused the generated configuration:\n" \
        f"{check.stderr}\n{caddyfile.read_text()}"
    log = home / "stderr.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    wait_port(port, process, log, "caddy")
    return process


def start_apache(binary: Path, work: Path, generated: Path, port: int, public: Path
                  ) -> subprocess.Popen[bytes]:
    """Apache serving `public` (with the .htaccess the build wrote there) and proxying /inbox
    and the owner API with the VirtualHost lines the generated configuration gives,
    uncommented."""
    prefix = work / "apache"
    prefix.mkdir()
    modules = binary.resolve().parent.parent / "lib" / "apache2" / "modules"
    proxy = [line.removeprefix("#").strip() for line in generated.read_text().splitlines()
             if line.startswith("#   ") and line.removeprefix("#").strip().startswith(
                 ("ProxyPreserveHost", "ProxyPass ", "ProxyPassReverse ", "<Location ",
                  "Header ", "</Location>"))]
    assert proxy, "the generated Apache configuration says nothing about proxying /inbox"
    root_user = os.geteuid() == 0
    if root_user:
        # Apache will not serve as root: its children run as nobody, who must read the site.
        for folder in [public, *public.parents]:
            if folder == Path("/"):
                break
            folder.chmod(folder.stat().st_mode | 0o005)
    load = "\n".join(f"LoadModule {name}_module {modules}/mod_{name}.so" for name in (
        "mpm_event", "authz_core", "mime", "headers", "rewrite", "alias", "dir", "proxy",
        "proxy_http"))
    conf = prefix / "httpd.conf"
    conf.write_text(f"""ServerRoot {prefix}
{load}
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
PidFile {prefix}/httpd.pid
ErrorLog {prefix}/error.log
LogLevel warn
{"User nobody" if root_user else ""}
{"Group nogroup" if root_user else ""}
TypesConfig /etc/mime.types
DocumentRoot {public}
DirectoryIndex index.html
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory {public}>
    # No FollowSymLinks: the .htaccess must not need it (mod_rewrite rules would make
    # Apache refuse the whole folder with 403).
    Options None
    AllowOverride All
    Require all granted
</Directory>
{chr(10).join(proxy)}
""", encoding="utf-8")
    argv = [str(binary), "-d", str(prefix), "-f", str(conf), "-DFOREGROUND"]
    check = subprocess.run([*argv[:-1], "-t"], capture_output=True, text=True, timeout=30,
                           check=False)
    assert check.returncode == 0, f"apache2 -t refused the configuration:\n{check.stderr}"
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    wait_port(port, process, log, "apache2")
    return process
