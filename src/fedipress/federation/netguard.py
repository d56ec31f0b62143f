"""The address guard: which hosts fedipress may connect to, enforced at connect time.

Remote URLs (actors, keys, inboxes, objects) come from strangers, so a fetch must never reach the
machine's own loopback, the private network or a cloud metadata service (SSRF). The check runs
where the connection is made: `GuardedTransport` resolves the host itself, refuses the request if
*any* resolved address is not public, and then connects to exactly the address it checked while
TLS still verifies the certificate for the hostname. There is no second DNS lookup between the
check and the connect, so a rebinding DNS server cannot swap in 127.0.0.1 afterwards.

`allow_private=True` (the `--allow-private-addresses` opt-in, for testing on one machine) lets
plain http and non-public addresses through.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol

import anyio
import anyio.to_thread
import httpcore
import httpx

from ..errors import FetchError, UnsafeURLError

__all__ = [
    "Connector",
    "FakeResolver",
    "GuardedNetworkBackend",
    "GuardedTransport",
    "IPAddress",
    "Resolver",
    "SystemResolver",
    "check_url",
    "is_public_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Special-purpose IPv4 blocks (IANA registry) that must never be fetched. Several of them
# (192.88.99/24 6to4 relay anycast, for one) are "global" to Python's ipaddress, so the list is
# checked in addition to `is_global`.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)

# IPv6: only global unicast (2000::/3) is ever public; inside it these are not.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/32",  # Teredo (tunnels to an arbitrary IPv4 address)
        "2002::/16",  # 6to4 (embeds an IPv4 address; deprecated, refused outright)
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)
_MAPPED_V6 = ipaddress.IPv6Network("::ffff:0:0/96")  # IPv4-mapped
_COMPATIBLE_V6 = ipaddress.IPv6Network("::/96")  # IPv4-compatible (deprecated)
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix

# Names that are never public whatever DNS says (RFC 6761 and overlay networks we cannot reach).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
_UNREACHABLE_SUFFIXES = (".onion", ".i2p")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def is_public_address(ip: IPAddress | str) -> bool:
    """True when `ip` is a public unicast address that fedipress may connect to.

    IPv6 addresses that carry an IPv4 address (mapped, compatible, NAT64) are judged by the
    IPv4 address they lead to. Scoped IPv6 literals ("fe80::1%eth0") are accepted as input.
    """
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            return False
    if isinstance(ip, ipaddress.IPv4Address):
        if any(ip in net for net in _BLOCKED_V4):
            return False
        return ip.is_global
    plain = ipaddress.IPv6Address(int(ip))  # drop any %scope so network membership works
    if plain in _MAPPED_V6 or plain in _NAT64_V6:
        return is_public_address(_embedded_v4(plain))
    if plain in _COMPATIBLE_V6:
        # ::/128 and ::1 fall in here too; their "embedded" 0.0.0.0/0.0.0.1 are refused below.
        return is_public_address(_embedded_v4(plain))
    if plain not in _GLOBAL_UNICAST_V6:
        return False
    if any(plain in net for net in _BLOCKED_V6):
        return False
    return plain.is_global


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(_LOCAL_SUFFIXES)


def _port_ok(port: int) -> bool:
    return 1 <= port <= 65535


def check_url(url: str | httpx.URL, *, allow_private: bool) -> httpx.URL:
    """Refuse a URL before any connection: bad scheme, no host, credentials, or a host that is
    non-public without a DNS lookup (an IP literal or a `localhost`-style name).

    Returns the parsed URL. Hostnames are checked again after resolution by GuardedTransport.
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeURLError(f"{_short(str(url))}: not a valid URL ({exc})") from None
    shown = _short(str(url))
    allowed = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed:
        hint = (
            " (plain http only with --allow-private-addresses, for testing on one machine)"
            if parsed.scheme == "http"
            else ""
        )
        raise UnsafeURLError(f"{shown}: only https URLs are fetched{hint}")
    try:
        named_host = parsed.host
    except UnicodeError:  # idna decodes a malformed "xn--" label only when asked, and raises
        raise UnsafeURLError(f"{shown}: not a valid host name") from None
    if not named_host:
        raise UnsafeURLError(f"{shown}: URL has no host")
    # httpx parses any integer as a port (-1, 99999); the socket layer then fails with an
    # OverflowError that no caller expects from a fetch.
    if parsed.port is not None and not _port_ok(parsed.port):
        raise UnsafeURLError(f"{shown}: {parsed.port} is not a port number (1-65535)")
    if parsed.userinfo:
        raise UnsafeURLError(f"{shown}: URLs with user:password@ are refused")
    host = named_host.lower().rstrip(".")
    if host.endswith(_UNREACHABLE_SUFFIXES):
        raise UnsafeURLError(f"{shown}: .onion and .i2p hosts cannot be reached")
    if not allow_private:
        ip = _parse_ip(host)
        if ip is not None and not is_public_address(ip):
            raise UnsafeURLError(f"{shown}: {ip} is not a public address")
        if _is_local_name(host):
            raise UnsafeURLError(f"{shown}: {host} is a local name, not a public host")
    return parsed


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- resolution ---------------------------------------------------------------------------------


class Resolver(Protocol):
    """Turns a hostname into the addresses to connect to. Injected so tests never use DNS."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """getaddrinfo in a worker thread, bounded by `timeout` seconds (Mastodon uses 5 s)."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        def lookup() -> list[IPAddress]:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found: list[IPAddress] = []
            for _family, _type, _proto, _name, sockaddr in infos:
                ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
                if ip not in found:
                    found.append(ip)
            return found

        try:
            with anyio.fail_after(self.timeout):
                # A thread blocked in getaddrinfo cannot be interrupted; abandon it on timeout.
                return await anyio.to_thread.run_sync(lookup, abandon_on_cancel=True)
        except TimeoutError:
            raise FetchError(f"{host}: DNS lookup took longer than {self.timeout:g} s") from None
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"{host}: cannot resolve host ({exc})") from None


class FakeResolver:
    """A fixed table for tests: host -> addresses. `FakeResolver.rounds` gives a host a list of
    answers returned in turn (to play a rebinding DNS server; the last one repeats). Unknown
    hosts fail like NXDOMAIN. `calls` records every lookup."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self._answers: dict[str, list[list[IPAddress]]] = {
            host: [[ipaddress.ip_address(a) for a in addresses]]
            for host, addresses in table.items()
        }
        self.calls: list[tuple[str, int]] = []

    @classmethod
    def rounds(cls, table: Mapping[str, Sequence[Sequence[str]]]) -> FakeResolver:
        resolver = cls({})
        for host, answers in table.items():
            resolver._answers[host] = [[ipaddress.ip_address(a) for a in r] for r in answers]
        return resolver

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        rounds = self._answers.get(host)
        if not rounds:
            raise FetchError(f"{host}: cannot resolve host (not in the test table)")
        # Each call consumes one answer; the last one repeats.
        return rounds.pop(0) if len(rounds) > 1 else rounds[0]


# --- connecting ---------------------------------------------------------------------------------

# (ip, port, connect timeout) -> an open stream. The default opens a TCP socket; tests inject
# one that records the address, fails the test, or maps a public test address to loopback.
Connector = Callable[[str, int, float | None], Awaitable[httpcore.AsyncNetworkStream]]


async def _tcp_connector(ip: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:
    return await httpcore.AnyIOBackend().connect_tcp(ip, port, timeout=timeout)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks and connects to the checked address.

    httpcore passes the hostname here and later does TLS with `server_hostname` = that hostname,
    so SNI and certificate verification stay bound to the name while the socket goes to the
    address we validated.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver: Resolver = resolver if resolver is not None else SystemResolver()
        self.connector: Connector = connector if connector is not None else _tcp_connector

    async def resolve_checked(self, host: str, port: int) -> list[IPAddress]:
        """The addresses for `host`, all of them public (or the opt-in is on); else refuse."""
        literal = _parse_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            name = host.lower().rstrip(".")
            if name.endswith(_UNREACHABLE_SUFFIXES):
                raise UnsafeURLError(f"{host}: .onion and .i2p hosts cannot be reached")
            if not self.allow_private and _is_local_name(name):
                raise UnsafeURLError(f"{host}: is a local name, not a public host")
            addresses = list(await self.resolver.resolve(host, port))
        if not addresses:
            raise FetchError(f"{host}: DNS returned no addresses")
        if not self.allow_private:
            # One bad address refuses the host: a public-looking name with a private address
            # in its answer is how SSRF through DNS is usually attempted.
            for ip in addresses:
                if not is_public_address(ip):
                    raise UnsafeURLError(f"{host}: resolves to {ip}, which is not a public address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not _port_ok(port):  # check_url refuses these first; this guards other callers
            raise UnsafeURLError(f"{host}:{port}: {port} is not a port number (1-65535)")
        addresses = await self.resolve_checked(host, port)
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return await self.connector(str(ip), port, timeout)
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                last_error = exc  # try the next checked address, as browsers do
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURLError("unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport for remote fetches: scheme check per request, address check per
    connection, no proxies from the environment, HTTP/1.1.

    `verify` is the TLS trust (True = system CAs via httpx defaults, or an SSLContext; tests pass
    a context trusting their own CA).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        limits = limits if limits is not None else httpx.Limits(max_connections=20)
        self.allow_private = allow_private
        self.backend = GuardedNetworkBackend(
            allow_private=allow_private, resolver=resolver, connector=connector
        )
        # Replace the pool httpx built with one that connects through the guard. It has opened
        # nothing yet, so dropping it leaks nothing.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_url(request.url, allow_private=self.allow_private)
        return await super().handle_async_request(request)
