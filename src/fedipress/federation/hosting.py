"""Host configuration: make each kind of web server send the right Content-Type and CORS.

Mastodon ignores ActivityPub documents not served as `application/activity+json`, and most
hosts send `application/json` for `.json` files. `plan_host_files` writes the two files a
static host reads from the site itself (`_headers` for Netlify and Cloudflare Pages,
`.htaccess` for Apache); `hosting_config` prints a ready, commented configuration for
`fedipress hosting nginx|caddy|apache|netlify|cloudflare`. Pure: config in, text out.

Two things every proxying configuration must get right, because remote servers depend on them:
- the inbox service must see the Host header the sender signed, port included (nginx's `$host`
  drops a non-default port; `$http_host` is the header as sent);
- WebFinger answers for the blog's account only (RFC 7033), as `fedipress serve` and
  `fedipress inbox --site` do (activitypub/webfinger.py): 400 for a missing, empty, repeated or
  malformed `resource`, 404 for anything else that is not the blog. nginx, Caddy and Apache can
  match the query string and do the same; Netlify / Cloudflare Pages `_headers` cannot.
Where /inbox is proxied, the owner API (OWNER_API, `fedipress publish` from CI) is proxied too,
Authorization header untouched and never cached (its answers are the owner's alone), and so is
INTERACT (the post form's redirect to the reader's server). Quote authorizations (QUOTES,
FEP-044f) are served by the service from the moment it accepts a quote: every configuration
sends that folder to the service, wherever the inbox is (a GET needs no Host header kept)."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from .. import __version__
from ..config import SiteConfig
from ..config.settings import INTERACT_PATH as INTERACT  # federation/interact.py's route
from ..errors import FedipressError
from ..generator.contenttypes import ACTIVITY_JSON, JRD_JSON, NODEINFO_JSON, XRD_XML
from ..model import Output
from ..wording import docs_url

__all__ = ["HOST_KINDS", "INBOX_SERVICE", "OWNER_API", "hosting_config", "parse_address",
           "plan_host_files"]

HOST_KINDS = ("nginx", "caddy", "apache", "netlify", "cloudflare")
INBOX_SERVICE = "127.0.0.1:8080"  # where `fedipress inbox` listens by default
# The owner API's folder on the service (owner_api.PREFIX without its version), proxied whole
# so that a v2 beside v1 needs no new configuration.
OWNER_API = "/.fedipress/api/"
# Live comments (fediverse.comments_live): public, cached by the service itself, so proxied
# without the owner API's no-store (federation/live_comments.py).
LIVE_API = "/.fedipress/live/"
QUOTES = "/.fedipress/quotes/"  # federation/quotes.py's QUOTES_PATH (its authorizations)
_SERVICE_DOCS = docs_url("service")  # publishing from CI through the owner API

_ROOT_AP_FILES = ("actor.json", "outbox.json", "followers.json", "following.json",
                  "featured.json")
_POST_AP_FILES = ("object.json", "replies.json", "likes.json", "shares.json", "context.json")
_THREAD_PAGES = ("replies", "context")  # a post's folders of pages (documents/threads.py)
_WELL_KNOWN = (
    (".well-known/webfinger", JRD_JSON),
    (".well-known/host-meta", XRD_XML),
    (".well-known/nodeinfo", NODEINFO_JSON),
    ("nodeinfo/2.1", NODEINFO_JSON),
)


# --- what the configuration must say, independent of the server ----------------------------


def _base_path(config: SiteConfig) -> str:
    """The site's path on its host, "/" or "/blog/"."""
    path = urlsplit(config.base_url).path or "/"
    return path if path.endswith("/") else path + "/"


def _post_pattern(config: SiteConfig) -> str:
    """The permalink with :placeholders ("/posts/:slug/"), as _headers files spell them."""
    permalink = "/" + config.permalink.strip("/") + "/"
    return re.sub(r"\{(\w+)\}", r":\1", permalink)


def _inbox(config: SiteConfig) -> tuple[bool, str]:
    """(inbox is on the site's host, its path)."""
    parts = urlsplit(config.fediverse.inbox_url)
    return parts.netloc == config.host, parts.path or "/inbox"


def _live_here(config: SiteConfig) -> bool:
    """Live comments are on and answered on the blog's own host: proxy them."""
    live = config.fediverse.comments_live
    return live is not None and urlsplit(live).netloc == config.host
def _quotes_upstream(config: SiteConfig, upstream: str) -> tuple[str, str]:
    """(the service's URL for QUOTES, its host) : the local service when the inbox is on the
    blog's host, else the inbox's own server."""
    same_host, _ = _inbox(config)
    if same_host:
        return f"http://{upstream}", upstream
    parts = urlsplit(config.fediverse.inbox_url)
    return f"{parts.scheme}://{parts.netloc}", parts.netloc


def _handle_note(config: SiteConfig, comment: str) -> str:
    handle_domain = config.fediverse.handle_domain
    if handle_domain == config.host:
        return ""
    lines = [
        f"The handle is @{config.handle} but the blog lives on {config.host}.",
        f"{handle_domain} must answer /.well-known/webfinger too, with the SAME document",
        f"(subject acct:{config.handle}, self link {config.url('actor.json')}).",
        "Either copy public/.well-known/webfinger to that host (served as application/jrd+json",
        "with Access-Control-Allow-Origin: *), or redirect it there:",
        f"  https://{handle_domain}/.well-known/webfinger -> "
        f"{config.url('.well-known/webfinger')} (keep the query string; 301 or 302).",
        "Mastodon follows the redirect, then checks the blog host answers with the same subject.",
    ]
    return "".join(f"{comment} {line}\n" for line in lines)


def _fingerprint(config: SiteConfig, name: str, content: bytes) -> str:
    # The content too: a changed rule must reach public/ without a version bump.
    parts = (__version__, name, config.base_url, config.permalink, config.fediverse.inbox_url,
             config.fediverse.handle_domain, config.fediverse.username,
             hashlib.sha256(content).hexdigest())
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def parse_address(value: str, what: str, *, port_only: bool = False) -> tuple[str, int]:
    """(host, port) from "HOST:PORT", "[::1]:PORT" or, with `port_only`, "PORT" (host "").
    A FedipressError naming `what` (the option) for anything else."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
        if not port_only:
            raise FedipressError(f"{what} {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535 or (sep and not host) or (
            ":" in host and not text.startswith("[")) or any(c in host for c in " ;{}#'\"\\"):
        example = "8443 or 127.0.0.1:8443" if port_only else "127.0.0.1:8080"
        shape = "[HOST:]PORT" if port_only else "HOST:PORT"
        raise FedipressError(f"{what} {value!r}: expected {shape}, e.g. {example}")
    return host, int(port_text)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# WebFinger query checks, shared by nginx, Caddy and Apache. Regular expressions in the common
# subset of PCRE (nginx, Apache) and RE2 (Caddy); '#' and '$' inside classes are written \x23
# and \x24 so that no configuration syntax reads them as a comment or a variable.
_URI_CHAR = r"[A-Za-z0-9._~:/?\x23\[\]@!\x24&'()*+,;=-]"
# The same characters as they may appear, undecoded, in a query string value: no '&' (ends
# the value), '+' (a space) or '#'; and only the %XX escapes that decode to a URI character.
_RAW_URI_CHAR = r"[A-Za-z0-9._~:/?\[\]@!\x24'()*,;=-]"
_RAW_PCT = (r"%(?:2[1346-9A-Fa-f]|3[0-9ABDFabdf]|4[0-9A-Fa-f]|5[0-9ABDFabdf]|6[1-9A-Fa-f]"
            r"|7[0-9AEae])")
_HEX = "[0-9A-Fa-f]"
# A URI (RFC 3986) once decoded; a raw value that decodes to one.
_URI_RE = rf"^[A-Za-z][A-Za-z0-9+.-]*:(?:{_URI_CHAR}|%{_HEX}{_HEX})*$"
_RAW_URI_RE = rf"^[A-Za-z](?:[A-Za-z0-9.-]|%2[Bb])*(?::|%3[Aa])(?:{_RAW_URI_CHAR}|{_RAW_PCT})*$"
# An acct: URI without exactly one '@' between a user and a host (RFC 7565): malformed.
_BAD_ACCT_RE = r"^(?i:acct):(?:[^@]*|[^@]*@[^@]*@.*|@.*|.*@)$"
_RAW_BAD_ACCT_RE = (r"^(?i:acct)(?::|%3[Aa])"
                    r"(?!(?:(?!@|%40)[^&])+(?:@|%40)(?:(?!@|%40)[^&])+(?:&|$))")
# Any `resource` parameter given twice (a bare `resource` without '=' counts, as it does for
# the service).
_REPEATED_RE = r"(^|&)resource(=[^&]*)?&(.*&)?resource(=|&|$)"


def _literal(text: str, *, raw: bool) -> str:
    """`text` as a regex; with `raw`, each reserved character also as its %XX escape (clients
    encode ':', '@' and '/' in a query value, or not)."""
    out = []
    for char in text:
        if char.isalnum() or char in "-._~":
            out.append(re.escape(char))
        elif raw:
            code = f"{ord(char):02X}"
            out.append(f"(?:{re.escape(char)}|%{code[0]}[{code[1]}{code[1].lower()}])"
                       if code[1].isalpha() else f"(?:{re.escape(char)}|%{code})")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _own_resource_re(config: SiteConfig, *, raw: bool) -> str:
    """The resources that name the blog (as activitypub.webfinger.is_own_resource decides):
    acct:USER@HOST on the handle domain or the site host (scheme, user and host in any case),
    the actor URL and the blog URL (scheme and host in any case)."""
    def lit(text: str) -> str:
        return _literal(text, raw=raw)

    hosts = sorted({config.fediverse.handle_domain.lower(), config.host.lower()})
    acct = (f"(?i:acct){lit(':')}(?i:{lit(config.fediverse.username)}){lit('@')}"
            f"(?i:{'|'.join(lit(h) for h in hosts)})")
    urls = []
    for url in dict.fromkeys((config.url("actor.json"), config.base_url,
                              config.base_url.rstrip("/"))):
        parts = urlsplit(url)
        urls.append(f"(?i:{lit(parts.scheme + '://' + parts.netloc)}){lit(parts.path)}")
    return f"^(?:{acct}|{'|'.join(urls)})$"


def _webfinger_messages(config: SiteConfig) -> tuple[str, str]:
    """The plain-text 400 and 404 bodies (no JRD), as the service words them."""
    example = f"?resource=acct:{config.fediverse.username}@{config.fediverse.handle_domain}"
    return (f"400 Bad Request: give one resource parameter that is a URI, e.g. {example}",
            f"404 Not Found: no such account here; this blog is acct:{config.handle}")


# --- _headers (Netlify, Cloudflare Pages) ---------------------------------------------------


def _headers_file(config: SiteConfig) -> str:
    base = _base_path(config)
    post = base.rstrip("/") + _post_pattern(config)
    out = [
        "# Generated by fedipress: content types and CORS for Netlify / Cloudflare Pages.",
        "# Mastodon only accepts ActivityPub JSON served as application/activity+json.",
        "",
    ]
    for name in _ROOT_AP_FILES:
        out += [f"{base}{name}", f"  Content-Type: {ACTIVITY_JSON}"]
    out += [f"{base}outbox/*", f"  Content-Type: {ACTIVITY_JSON}"]
    for name in _POST_AP_FILES:
        out += [f"{post}{name}", f"  Content-Type: {ACTIVITY_JSON}"]
    for folder in _THREAD_PAGES:
        out += [f"{post}{folder}/*", f"  Content-Type: {ACTIVITY_JSON}"]
    for path, ctype in _WELL_KNOWN:
        out += [f"{base}{path}", f"  Content-Type: {ctype}", "  Access-Control-Allow-Origin: *"]
    note = _handle_note(config, "#")
    return "\n".join(out) + "\n" + (("\n" + note) if note else "")


# --- Apache ---------------------------------------------------------------------------------


def _apache_webfinger(config: SiteConfig) -> str:
    """<If> sections (Apache 2.4) and mod_alias, not mod_rewrite: rewrite rules in .htaccess
    make Apache refuse the whole folder (403) where Options FollowSymLinks is off."""
    path = re.escape(_base_path(config) + ".well-known/webfinger")
    here = f"%{{REQUEST_URI}} =~ m#^{path}$#"
    uri = _RAW_URI_RE.removeprefix("^").removesuffix("$")
    bad_acct = _RAW_BAD_ACCT_RE.removeprefix("^")  # anchored by resource= and its lookahead
    own = _own_resource_re(config, raw=True).removeprefix("^").removesuffix("$")
    missing = "%{QUERY_STRING} !~ m#(^|&)resource=[^&]#"
    repeated = f"%{{QUERY_STRING}} =~ m#{_REPEATED_RE}#"
    return f"""# WebFinger (RFC 7033) for the blog's account only, as `fedipress inbox` answers it:
# 400 for a missing, empty, repeated or malformed resource, 404 for any other account or
# scheme (mailto:, ...). rel= is not filtered (RFC 7033 4.3 lets a server ignore it).
<If "{here} && ({missing} || {repeated})">
  Redirect 400
</If>
<ElseIf "{here} && %{{QUERY_STRING}} !~ m#(^|&)resource={uri}(&|$)#">
  Redirect 400
</ElseIf>
<ElseIf "{here} && %{{QUERY_STRING}} =~ m#(^|&)resource={bad_acct}#">
  Redirect 400
</ElseIf>
<ElseIf "{here} && %{{QUERY_STRING}} !~ m#(^|&)resource={own}(&|$)#">
  Redirect 404
</ElseIf>
"""


def _htaccess(config: SiteConfig, upstream: str = INBOX_SERVICE) -> str:
    same_host, inbox_path = _inbox(config)
    ap_names = "|".join(re.escape(n.removesuffix(".json")) for n in
                        (*_ROOT_AP_FILES, *_POST_AP_FILES))
    text = f"""# Generated by fedipress: content types and CORS for Apache (needs AllowOverride
# FileInfo, and mod_headers for the CORS lines). Mastodon only accepts ActivityPub JSON
# served as application/activity+json; Apache would send application/json.

<FilesMatch "^({ap_names}|page-[0-9]+)\\.json$">
  ForceType {ACTIVITY_JSON}
</FilesMatch>

<Files "webfinger">
  ForceType {JRD_JSON}
  <IfModule mod_headers.c>
    Header always set Access-Control-Allow-Origin "*"
  </IfModule>
</Files>

{_apache_webfinger(config)}
<Files "host-meta">
  ForceType {XRD_XML}
  <IfModule mod_headers.c>
    Header set Access-Control-Allow-Origin "*"
  </IfModule>
</Files>

<FilesMatch "^(nodeinfo|2\\.1)$">
  ForceType {NODEINFO_JSON}
  <IfModule mod_headers.c>
    Header set Access-Control-Allow-Origin "*"
  </IfModule>
</FilesMatch>
"""
    if same_host:
        text += f"""
# The inbox ({config.fediverse.inbox_url}) is the `fedipress inbox` service, not a file.
# Proxy it in the VirtualHost (mod_proxy + mod_proxy_http; ProxyPreserveHost passes the Host
# header as the sender sent it, port included, so HTTP signatures still verify):
#   ProxyPreserveHost On
#   ProxyPass        {inbox_path} http://{upstream}{inbox_path}
#   ProxyPassReverse {inbox_path} http://{upstream}{inbox_path}
# or, where only .htaccess is allowed and mod_proxy is loaded, uncomment (a [P] rule keeps
# the Host header only with ProxyPreserveHost On in the server configuration):
#   RewriteEngine On
#   RewriteRule ^{inbox_path.lstrip("/")}$ http://{upstream}{inbox_path} [P,L]
#
# The owner API ({OWNER_API}: `fedipress publish` from CI, see
# {_SERVICE_DOCS}) is the service
# too. Proxy it the same way, beside the inbox lines; mod_proxy passes the Authorization
# header on as it came, and mod_headers marks every answer never to be cached:
#   ProxyPass        {OWNER_API} http://{upstream}{OWNER_API}
#   ProxyPassReverse {OWNER_API} http://{upstream}{OWNER_API}
#   <Location "{OWNER_API}">
#     Header always set Cache-Control "no-store"
#   </Location>
# or, in .htaccess (next to the inbox's RewriteRule):
#   RewriteRule ^{_rewrite_path(OWNER_API)}(.*)$ http://{upstream}{OWNER_API}$1 [P,L]
# The post pages' "Reply from your server" form ({INTERACT}) is the service's too:
#   ProxyPass        {INTERACT} http://{upstream}{INTERACT}
# or, in .htaccess:  RewriteRule ^{_rewrite_path(INTERACT)}$ http://{upstream}{INTERACT} [P,L]
"""
        if _live_here(config):
            text += f"""#
# Live comments (fediverse.comments_live) are the service's too: public answers it caches
# itself, so proxy them without the no-store:
#   ProxyPass        {LIVE_API} http://{upstream}{LIVE_API}
#   ProxyPassReverse {LIVE_API} http://{upstream}{LIVE_API}
# or, in .htaccess:
#   RewriteRule ^{_rewrite_path(LIVE_API)}(.*)$ http://{upstream}{LIVE_API}$1 [P,L]
"""
    service, _host = _quotes_upstream(config, upstream)
    ssl = ", and SSLProxyEngine On for https" if service.startswith("https") else ""
    text += f"""
# Quote authorizations ({QUOTES}, FEP-044f) are served by the `fedipress inbox` service
# ({service}) from the moment it accepts a quote. Proxy them in the VirtualHost
# (mod_proxy + mod_proxy_http{ssl}):
#   ProxyPass        {QUOTES} {service}{QUOTES}
#   ProxyPassReverse {QUOTES} {service}{QUOTES}
# or, in .htaccess:
#   RewriteEngine On
#   RewriteRule ^{_rewrite_path(QUOTES)}(.*)$ {service}{QUOTES}$1 [P,L]
"""
    note = _handle_note(config, "#")
    return text + (("\n" + note) if note else "")


def _rewrite_path(path: str) -> str:
    """A path as a RewriteRule pattern in .htaccess (no leading slash, dots escaped)."""
    return re.escape(path.lstrip("/"))


def plan_host_files(config: SiteConfig) -> list[Output]:
    """`_headers` (Netlify, Cloudflare Pages) and `.htaccess` (Apache) for public/; with
    `fediverse.enabled: false`, their 410 Gone versions and Netlify's `_redirects`."""
    if not config.fediverse.enabled:
        from .hosting_gone import gone_headers, gone_htaccess, gone_redirects

        files = {"_headers": gone_headers(config), ".htaccess": gone_htaccess(config),
                 "_redirects": gone_redirects(config)}
    else:
        files = {"_headers": _headers_file(config), ".htaccess": _htaccess(config)}
        redirects = _quotes_redirects(config)
        if redirects is not None:
            files["_redirects"] = redirects
    outputs = []
    for name, text in files.items():
        data = text.encode("utf-8")
        outputs.append(Output(name, _fingerprint(config, name, data), data.__bytes__))
    return outputs


# --- printed configurations -----------------------------------------------------------------


# Heads the WebFinger rules of nginx and Caddy alike.
_WEBFINGER_RULES_COMMENT = (
    "",
    "    # WebFinger (RFC 7033) for the blog's account only, as `fedipress inbox` answers it:",
    "    # 400 for a missing, empty, repeated or malformed resource, 404 for any other account",
    "    # or scheme (mailto:, ...), both without the document. rel= is not filtered here (RFC",
    "    # 7033 4.3 lets a server ignore it); the whole document is sent.",
)


def _nginx_webfinger(config: SiteConfig, path: str) -> list[str]:
    bad, missing = _webfinger_messages(config)
    return [
        *_WEBFINGER_RULES_COMMENT,
        f"    location = {path} {{",
        f"        types {{ }} default_type {JRD_JSON};",
        '        add_header Access-Control-Allow-Origin "*" always;',
        "        error_page 400 @webfinger_400;",
        "        error_page 404 @webfinger_404;",
        '        if ($args !~ "(^|&)resource=[^&]") { return 400; }',
        f'        if ($args ~ "{_REPEATED_RE}") {{ return 400; }}',
        f'        if ($arg_resource !~ "{_RAW_URI_RE}") {{ return 400; }}',
        f'        if ($arg_resource ~ "{_RAW_BAD_ACCT_RE}") {{ return 400; }}',
        f'        if ($arg_resource !~ "{_own_resource_re(config, raw=True)}") {{ return 404; }}',
        "    }",
        "    location @webfinger_400 {",
        "        default_type text/plain;",
        '        add_header Access-Control-Allow-Origin "*" always;',
        f'        return 400 "{bad}\\n";',
        "    }",
        "    location @webfinger_404 {",
        "        default_type text/plain;",
        '        add_header Access-Control-Allow-Origin "*" always;',
        f'        return 404 "{missing}\\n";',
        "    }",
    ]


def _nginx_listen(config: SiteConfig, listen: str | None, hostname: str | None = None
                  ) -> list[str]:
    parts = urlsplit(config.base_url)
    if listen is not None:
        host, port = parse_address(listen, "--listen", port_only=True)
        return [f"    listen {_join(host, port) if host else port};"]
    # `hostname`: the handle's own domain, with its own certificate, asked for WebFinger at
    # the scheme's default port whatever port the blog uses.
    default_port = None if hostname else parts.port
    if parts.scheme == "https":
        name = hostname or parts.hostname
        return [f"    listen {default_port or 443} ssl;",
                f"    ssl_certificate     /etc/letsencrypt/live/{name}/fullchain.pem;",
                f"    ssl_certificate_key /etc/letsencrypt/live/{name}/privkey.pem;"]
    return [f"    listen {default_port or 80};"]


def _nginx(config: SiteConfig, listen: str | None, upstream: str) -> str:
    base = _base_path(config)
    same_host, inbox_path = _inbox(config)
    root = str(config.output_dir)
    ap_root = "|".join(re.escape(n) for n in _ROOT_AP_FILES)
    ap_post = "|".join(re.escape(n) for n in _POST_AP_FILES)
    pages = "|".join(_THREAD_PAGES)
    host = urlsplit(config.base_url).hostname or config.host
    lines = [
        f"# nginx configuration for {config.base_url} (generated by `fedipress hosting nginx`).",
        "# Save it as a site (e.g. `fedipress hosting nginx > /etc/nginx/sites-enabled/blog`),",
        "# check the certificate paths, then `nginx -t` and reload nginx.",
        "server {",
        *_nginx_listen(config, listen),
        f"    server_name {host};",
        f"    root {root};",
        "    index index.html;",
        "",
        "    # ActivityPub documents: Mastodon ignores them unless served as",
        "    # application/activity+json. `types {}` stops nginx adding its own type.",
        f"    location ~ ^{base}({ap_root})$ {{",
        f"        types {{ }} default_type {ACTIVITY_JSON};",
        "    }",
        f"    location ~ ^{base}outbox/page-[0-9]+\\.json$ {{",
        f"        types {{ }} default_type {ACTIVITY_JSON};",
        "    }",
        f"    location ~ /({ap_post})$ {{",
        f"        types {{ }} default_type {ACTIVITY_JSON};",
        "    }",
        f"    location ~ /({pages})/page-[0-9]+\\.json$ {{",
        f"        types {{ }} default_type {ACTIVITY_JSON};",
        "    }",
        *_nginx_webfinger(config, f"{base}.well-known/webfinger"),
        "",
        "    # host-meta and NodeInfo: static files, readable cross-origin.",
    ]
    for path, ctype in _WELL_KNOWN:
        if path == ".well-known/webfinger":
            continue
        lines += [
            f"    location = {base}{path} {{",
            f"        types {{ }} default_type {ctype};",
            '        add_header Access-Control-Allow-Origin "*";',
            "    }",
        ]
    if same_host:
        lines += [
            "",
            "    # The inbox is the `fedipress inbox` service. Pass the Host header exactly as",
            "    # the sender sent it ($http_host keeps a non-default port, $host would drop it)",
            "    # and the path unchanged: HTTP signatures cover both.",
            f"    location = {inbox_path} {{",
            f"        proxy_pass http://{upstream};",
            "        proxy_set_header Host $http_host;",
            "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "        proxy_set_header X-Forwarded-Proto $scheme;",
            "        client_max_body_size 1m;",
            "    }",
            "",
            "    # The owner API (`fedipress publish` from CI, see",
            f"    # {_SERVICE_DOCS}) is the service",
            "    # too. nginx passes the Authorization header on as it came; its answers are",
            "    # the owner's alone, so never cached here or by anything downstream.",
            f"    location ^~ {OWNER_API} {{",
            f"        proxy_pass http://{upstream};",
            "        proxy_set_header Host $http_host;",
            "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "        proxy_set_header X-Forwarded-Proto $scheme;",
            "        proxy_no_cache 1;",
            "        proxy_cache_bypass 1;",
            '        add_header Cache-Control "no-store" always;',
            "        client_max_body_size 1m;  # `publish` sends chunks under 1 MiB",
            "    }",
            "    # The post pages' \"Reply from your server\" form: a redirect by the service.",
            f"    location = {INTERACT} {{ proxy_pass http://{upstream};"
            " proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }",
        ]
        if _live_here(config):
            lines += [
                "",
                "    # Live comments (fediverse.comments_live): public answers the service caches",
                "    # itself and marks with Cache-Control and an ETag.",
                f"    location ^~ {LIVE_API} {{",
                f"        proxy_pass http://{upstream};",
                "        proxy_set_header Host $http_host;",
                "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "        proxy_set_header X-Forwarded-Proto $scheme;",
                "    }",
            ]
    service, service_host = _quotes_upstream(config, upstream)
    lines += [
        "",
        "    # Quote authorizations (FEP-044f) are served by the `fedipress inbox` service",
        "    # from the moment it accepts a quote (servers fetch them at once, before any",
        "    # rebuild), so this folder goes to the service like the inbox.",
        f"    location ^~ {QUOTES} {{",
        f"        proxy_pass {service};",
        "        proxy_set_header Host "
        + ("$http_host;" if service_host == upstream else f"{service_host};"),
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        *(["        proxy_ssl_server_name on;"] if service.startswith("https") else []),
        "    }",
    ]
    lines.append("}")
    handle_domain = config.fediverse.handle_domain
    text = "\n".join(lines) + "\n"
    if handle_domain != config.host:
        text += "\n" + _handle_note(config, "#") + "\n".join([
            "server {",
            # Where the blog's block listens (https with the domain's own certificate):
            # servers ask https://DOMAIN/.well-known/webfinger, never plain http.
            *_nginx_listen(config, listen, hostname=handle_domain),
            f"    server_name {handle_domain};",
            "    location = /.well-known/webfinger {",
            '        add_header Access-Control-Allow-Origin "*";',
            f"        return 302 {config.url('.well-known/webfinger')}$is_args$args;",
            "    }",
            "}",
        ]) + "\n"
    return text


def _caddy_webfinger(config: SiteConfig, path: str) -> list[str]:
    bad, missing = _webfinger_messages(config)
    return [
        *_WEBFINGER_RULES_COMMENT,
        f"    route {path} {{",
        '        header Access-Control-Allow-Origin "*"',
        '        @webfinger_missing vars {query.resource} ""',
        f'        respond @webfinger_missing "{bad}" 400',
        f"        @webfinger_repeated vars_regexp {{query}} {_REPEATED_RE}",
        f'        respond @webfinger_repeated "{bad}" 400',
        f"        @webfinger_malformed not vars_regexp {{query.resource}} {_URI_RE}",
        f'        respond @webfinger_malformed "{bad}" 400',
        f"        @webfinger_bad_acct vars_regexp {{query.resource}} {_BAD_ACCT_RE}",
        f'        respond @webfinger_bad_acct "{bad}" 400',
        "        @webfinger_other not vars_regexp {query.resource} "
        f"{_own_resource_re(config, raw=False)}",
        f'        respond @webfinger_other "{missing}" 404',
        "        header {",
        f"            Content-Type {JRD_JSON}",
        "            defer",
        "        }",
        "    }",
    ]


def _caddy(config: SiteConfig, listen: str | None, upstream: str) -> str:
    base = _base_path(config)
    same_host, inbox_path = _inbox(config)
    ap_root = "|".join(re.escape(n) for n in _ROOT_AP_FILES)
    ap_post = "|".join(re.escape(n) for n in _POST_AP_FILES)
    pages = "|".join(_THREAD_PAGES)
    parts = urlsplit(config.base_url)
    address, bind = f"{parts.scheme}://{config.host}", []
    if listen is not None:
        host, port = parse_address(listen, "--listen", port_only=True)
        address = f"{parts.scheme}://{_join(parts.hostname or config.host, port)}"
        bind = [f"    bind {host}"] if host else []
    lines = [
        f"# Caddyfile for {config.base_url} (generated by `fedipress hosting caddy`).",
        "# Save it as your Caddyfile (or paste the site block into it) and reload Caddy.",
        f"{address} {{",
        *bind,
        f"    root * {config.output_dir}",
        "",
        "    # ActivityPub documents: Mastodon ignores them unless served as",
        "    # application/activity+json (deferred so it replaces file_server's guess).",
        "    @activitypub path_regexp activitypub "
        f"^{base}({ap_root})$|^{base}outbox/page-[0-9]+\\.json$|/({ap_post})$"
        f"|/({pages})/page-[0-9]+\\.json$",
        "    header @activitypub {",
        f"        Content-Type {ACTIVITY_JSON}",
        "        defer",
        "    }",
        *_caddy_webfinger(config, f"{base}.well-known/webfinger"),
        "",
        "    # host-meta and NodeInfo: static files, readable cross-origin.",
    ]
    for i, (path, ctype) in enumerate(_WELL_KNOWN):
        if path == ".well-known/webfinger":
            continue
        lines += [
            f"    @wk{i} path {base}{path}",
            f"    header @wk{i} {{",
            f"        Content-Type {ctype}",
            '        Access-Control-Allow-Origin "*"',
            "        defer",
            "    }",
        ]
    if same_host:
        lines += [
            "",
            "    # The inbox is the `fedipress inbox` service. Caddy passes the Host header as",
            "    # the sender sent it (port included) and the path unchanged: HTTP signatures",
            "    # cover both.",
            f"    reverse_proxy {inbox_path} {upstream}",
            "",
            "    # The owner API (`fedipress publish` from CI, see",
            f"    # {_SERVICE_DOCS}) is the service",
            "    # too. Caddy passes the Authorization header on as it came; its answers are",
            "    # the owner's alone, so marked never to be cached.",
            f"    header {OWNER_API}* {{",
            '        Cache-Control "no-store"',
            "        defer",
            "    }",
            f"    reverse_proxy {OWNER_API}* {upstream}",
            "    # The post pages' \"Reply from your server\" form: a redirect by the service.",
            f"    reverse_proxy {INTERACT} {upstream}",
        ]
        if _live_here(config):
            lines += [
                "",
                "    # Live comments (fediverse.comments_live): public answers the service caches",
                "    # itself and marks with Cache-Control and an ETag.",
                f"    reverse_proxy {LIVE_API}* {upstream}",
            ]
    service, service_host = _quotes_upstream(config, upstream)
    lines += [
        "",
        "    # Quote authorizations (FEP-044f) are served by the `fedipress inbox` service from",
        "    # the moment it accepts a quote, so this folder goes to the service like the inbox.",
    ]
    if service_host == upstream:
        lines.append(f"    reverse_proxy {QUOTES}* {upstream}")
    else:
        lines += [f"    reverse_proxy {QUOTES}* {service} {{",
                  "        header_up Host {upstream_hostport}", "    }"]
    lines += ["", "    file_server", "}"]
    text = "\n".join(lines) + "\n"
    if config.fediverse.handle_domain != config.host:
        text += "\n" + _handle_note(config, "#") + "\n".join([
            f"{config.fediverse.handle_domain} {{",
            "    redir /.well-known/webfinger "
            f"{config.url('.well-known/webfinger')}?{{query}} 302",
            "}",
        ]) + "\n"
    return text


def _apache(config: SiteConfig, listen: str | None, upstream: str) -> str:
    return (
        f"# Apache configuration for {config.base_url} (generated by `fedipress hosting apache`).\n"
        "# `fedipress build` also writes this as public/.htaccess; put it in the VirtualHost\n"
        "# (or a <Directory> block) if .htaccess files are disabled.\n\n"
        + _htaccess(config, upstream)
    )


_STATIC_WEBFINGER_NOTE = (
    "# WebFinger: _headers cannot look at the query string, so this host sends the blog's\n"
    "# document (200) for every resource=, also for other accounts or none at all, where\n"
    "# RFC 7033 wants 400 or 404. Mastodon is not misled (it checks the subject it gets);\n"
    "# for exact answers serve the blog with nginx, Caddy, Apache or `fedipress inbox --site`.\n"
)


def _inbox_elsewhere_note(host: str, inbox_path: str) -> str:
    return (
        f"\n# The inbox must reach the `fedipress inbox` service, which {host} cannot run. Run it\n"
        "# on a server you control and set fediverse.inbox_url (and shared_inbox_url) in\n"
        "# site.yaml to its own URL, e.g. https://inbox.example/inbox: followers' servers then\n"
        "# post there directly. Do not proxy it through this host: a proxy to another host does\n"
        "# not pass on the Host header the sender signed, so no signature would verify.\n"
        f"# (Until then, POSTs to {inbox_path} here get an error and nobody can follow.)\n"
    )


def _owner_api_elsewhere_note(host: str) -> str:
    return (
        f"\n# The owner API ({OWNER_API}, used by `fedipress publish` from CI) is the service's\n"
        f"# too, and {host} does not proxy it: point FEDIPRESS_SERVICE_URL (or `fedipress\n"
        "# publish --to`) at the service's own address, e.g. https://inbox.example/\n"
        f"# ({_SERVICE_DOCS}).\n"
    )


def _quotes_redirects(config: SiteConfig) -> str | None:
    """`_redirects` for a static host whose inbox service runs elsewhere: quote authorizations
    (on the blog's host) redirected to the service, which serves them. None when the inbox is
    on the blog's host (the static host cannot run the service: no quotes either)."""
    same_host, _ = _inbox(config)
    if same_host:
        return None
    service, _host = _quotes_upstream(config, INBOX_SERVICE)
    return (
        "# Generated by fedipress: quote authorizations (FEP-044f) are served by the\n"
        "# `fedipress inbox` service; a redirect keeps their address on the blog's host.\n"
        f"{QUOTES}*  {service}{QUOTES}:splat  302\n"
    )


def _static_host(config: SiteConfig, name: str, kind: str, reader: str) -> str:
    """Netlify and Cloudflare Pages: the build's public/_headers, and where the rest goes."""
    same_host, inbox_path = _inbox(config)
    text = (
        f"# {name} (generated by `fedipress hosting {kind}`).\n"
        f"# `fedipress build` writes this as public/_headers; {reader} reads it on deploy.\n\n"
        + _headers_file(config) + "\n" + _STATIC_WEBFINGER_NOTE
    )
    if same_host:
        text += _inbox_elsewhere_note(name, inbox_path)
        text += (f"# Quotes need the service too: once it runs elsewhere, `fedipress build`"
                 f" also writes\n# public/_redirects, sending {QUOTES} to it.\n")
    else:
        redirects = _quotes_redirects(config) or ""
        text += ("\n# `fedipress build` also writes public/_redirects (quote authorizations,"
                 " served by the\n# service):\n"
                 + "".join(f"#   {line}\n" for line in redirects.splitlines()))
    return text + _owner_api_elsewhere_note(name)


def _netlify(config: SiteConfig, listen: str | None, upstream: str) -> str:
    return _static_host(config, "Netlify", "netlify", "Netlify")


def _cloudflare(config: SiteConfig, listen: str | None, upstream: str) -> str:
    return _static_host(config, "Cloudflare Pages", "cloudflare", "Pages")


def hosting_config(config: SiteConfig, kind: str, *, listen: str | None = None,
                   upstream: str = INBOX_SERVICE) -> str:
    """A ready, commented configuration for `kind` (one of HOST_KINDS).

    `listen` ("PORT" or "HOST:PORT") is where nginx / Caddy listen (default: base_url's port,
    80 or 443); `upstream` ("HOST:PORT") is where `fedipress inbox` listens. FedipressError
    for a malformed address."""
    printers = {
        "nginx": _nginx,
        "caddy": _caddy,
        "apache": _apache,
        "netlify": _netlify,
        "cloudflare": _cloudflare,
    }
    if kind not in printers:
        raise ValueError(f"unknown host kind {kind!r}; choose one of {', '.join(HOST_KINDS)}")
    host, port = parse_address(upstream, "--upstream")
    if listen is not None:
        parse_address(listen, "--listen", port_only=True)
    if not config.fediverse.enabled:
        return _gone_config(config, kind, listen)
    return printers[kind](config, listen, _join(host, port))


def _gone_config(config: SiteConfig, kind: str, listen: str | None) -> str:
    """The 410 Gone configuration of a blog that has left (hosting_gone.py)."""
    from . import hosting_gone as gone

    if kind == "nginx":
        return gone.gone_nginx(config, _nginx_listen(config, listen))
    if kind == "caddy":
        parts = urlsplit(config.base_url)
        address, bind = f"{parts.scheme}://{config.host}", []
        if listen is not None:
            host, port = parse_address(listen, "--listen", port_only=True)
            address = f"{parts.scheme}://{_join(parts.hostname or config.host, port)}"
            bind = [f"    bind {host}"] if host else []
        return gone.gone_caddy(config, address, bind)
    if kind == "apache":
        return (f"# Apache configuration for {config.base_url} (generated by"
                " `fedipress hosting apache`).\n# `fedipress build` also writes this as"
                " public/.htaccess.\n\n" + gone.gone_htaccess(config))
    if kind == "netlify":
        return gone.gone_netlify(config)
    return gone.gone_cloudflare(config)
