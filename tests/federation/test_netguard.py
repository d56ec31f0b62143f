"""The address guard: address classification, URL checks, and the transport refusing before any
connect. No packets leave the machine: DNS is a FakeResolver and the connector is a fake that
either fails the test or hands back an in-memory stream playing a canned HTTP response."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore
import httpx
import pytest

from fedipress.errors import FetchError, UnsafeURLError
from fedipress.federation.netguard import (
    FakeResolver,
    GuardedNetworkBackend,
    GuardedTransport,
    SystemResolver,
    check_url,
    is_public_address,
)

PUBLIC_V4 = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "151.101.1.1", "100.128.0.1", "172.32.0.1"]
NON_PUBLIC_V4 = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.0.9",
    "169.254.169.254",
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
]
PUBLIC_V6 = [
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped: judged by 8.8.8.8
    "::ffff:93.184.216.34",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]
NON_PUBLIC_V6 = [
    "::",
    "::1",
    "::ffff:127.0.0.1",  # mapped loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible loopback
    "::10.0.0.1",
    "::a9fe:a9fe",  # compatible 169.254.169.254 written in hex
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2002:808:808::1",  # 6to4, even of a public address: refused outright
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:db8::1",  # documentation
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",  # old site-local, outside 2000::/3
    "ff02::1",
    "ff0e::1",
    "100::1",  # discard-only
    "4000::1",  # outside 2000::/3
]


@pytest.mark.parametrize("ip", PUBLIC_V4 + PUBLIC_V6)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_public_address(ip) is True


@pytest.mark.parametrize("ip", NON_PUBLIC_V4 + NON_PUBLIC_V6)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert is_public_address(ip) is False


def test_not_an_address_is_not_public() -> None:
    assert is_public_address("example.com") is False
    assert is_public_address("") is False


# --- check_url ----------------------------------------------------------------------------------


def test_https_url_passes() -> None:
    assert check_url("https://remote.example/users/a", allow_private=False).host == "remote.example"


@pytest.mark.parametrize(
    "url",
    [
        "http://remote.example/actor",
        "ftp://remote.example/actor",
        "file:///etc/passwd",
        "gopher://remote.example/",
        "https://127.0.0.1/actor",
        "https://[::1]/actor",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost/actor",
        "https://LOCALHOST./actor",
        "https://api.localhost/",
        "https://printer.local/",
        "https://user:secret@remote.example/actor",
        "https://abcdefghijklmnop.onion/",
        "not a url",
        "https:///nohost",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_url(url, allow_private=False)


def test_http_refusal_names_the_opt_in() -> None:
    with pytest.raises(UnsafeURLError, match="--allow-private-addresses"):
        check_url("http://remote.example/", allow_private=False)


def test_opt_in_allows_http_and_loopback_but_not_other_schemes() -> None:
    assert check_url("http://127.0.0.1:8001/actor", allow_private=True).port == 8001
    assert check_url("http://localhost/actor", allow_private=True).host == "localhost"
    with pytest.raises(UnsafeURLError):
        check_url("ftp://127.0.0.1/", allow_private=True)
    with pytest.raises(UnsafeURLError):
        check_url("https://hidden.onion/", allow_private=True)


# --- the transport ------------------------------------------------------------------------------


class CannedStream(httpcore.AsyncNetworkStream):
    """An in-memory connection: records what was written and the TLS server name, and plays
    back one HTTP response."""

    def __init__(self, response: bytes) -> None:
        self._pending = response
        self.written = b""
        self.server_hostname: str | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.server_hostname = server_hostname
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


def http_response(
    status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RecordingConnector:
    """Connects only to addresses listed in `allowed`; any other connect attempt fails the test."""

    def __init__(self, allowed: dict[str, list[bytes]] | None = None) -> None:
        self.allowed = allowed or {}
        self.calls: list[tuple[str, int]] = []
        self.streams: list[CannedStream] = []

    async def __call__(
        self, ip: str, port: int, timeout: float | None
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append((ip, port))
        responses = self.allowed.get(ip)
        if not responses:
            pytest.fail(f"the guard let a connection to {ip}:{port} through")
        stream = CannedStream(responses.pop(0))
        self.streams.append(stream)
        return stream


def get(transport: httpx.AsyncBaseTransport, url: str) -> httpx.Response:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(url)
            await response.aread()
            return response

    return asyncio.run(run())


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.1"], ["169.254.169.254"], ["127.0.0.1"], ["::1"], ["93.184.216.34", "10.0.0.1"]],
)
def test_transport_refuses_private_resolution_before_connecting(addresses: list[str]) -> None:
    resolver = FakeResolver({"evil.example": addresses})
    connector = RecordingConnector()
    transport = GuardedTransport(resolver=resolver, connector=connector)
    with pytest.raises(UnsafeURLError, match="not a public address"):
        get(transport, "https://evil.example/actor")
    assert resolver.calls == [("evil.example", 443)]
    assert connector.calls == []


@pytest.mark.parametrize(
    "url",
    ["https://10.0.0.1/", "https://169.254.169.254/", "https://[fd00::1]/", "https://localhost/"],
)
def test_transport_refuses_literals_and_localhost_without_dns(url: str) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    connector = RecordingConnector()
    with pytest.raises(UnsafeURLError):
        get(GuardedTransport(resolver=resolver, connector=connector), url)
    assert resolver.calls == []
    assert connector.calls == []


def test_transport_refuses_plain_http_without_opt_in() -> None:
    resolver = FakeResolver({"remote.example": ["93.184.216.34"]})
    connector = RecordingConnector()
    with pytest.raises(UnsafeURLError, match="only https"):
        get(GuardedTransport(resolver=resolver, connector=connector), "http://remote.example/")
    assert resolver.calls == [] and connector.calls == []


def test_transport_connects_to_the_checked_address_keeping_host_and_sni() -> None:
    resolver = FakeResolver({"remote.example": ["93.184.216.34"]})
    connector = RecordingConnector({"93.184.216.34": [http_response(body=b'{"ok": 1}')]})
    response = get(
        GuardedTransport(resolver=resolver, connector=connector), "https://remote.example/a"
    )
    assert response.json() == {"ok": 1}
    assert connector.calls == [("93.184.216.34", 443)]
    stream = connector.streams[0]
    assert stream.server_hostname == "remote.example"  # TLS is verified for the name, not the IP
    assert b"\r\nHost: remote.example\r\n" in stream.written


def test_dns_rebinding_cannot_redirect_a_later_connection() -> None:
    # The rebinding server answers public first, loopback afterwards. The first connection goes
    # to the checked public address; the next one (new connection, because of Connection:
    # close) sees loopback and is refused; nothing ever connects to 127.0.0.1.
    resolver = FakeResolver.rounds({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    connector = RecordingConnector({"93.184.216.34": [http_response(), http_response()]})
    transport = GuardedTransport(resolver=resolver, connector=connector)

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            first = await client.get("https://rebind.example/one")
            assert first.status_code == 200
            with pytest.raises(UnsafeURLError, match="127.0.0.1"):
                await client.get("https://rebind.example/two")

    asyncio.run(run())
    assert connector.calls == [("93.184.216.34", 443)]
    assert len(resolver.calls) == 2


def test_connect_failure_tries_the_next_checked_address() -> None:
    calls: list[str] = []

    async def connector(ip: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:
        calls.append(ip)
        if ip == "2606:4700:4700::1111":
            raise httpcore.ConnectError("unreachable")
        return CannedStream(http_response())

    resolver = FakeResolver({"dual.example": ["2606:4700:4700::1111", "93.184.216.34"]})
    response = get(
        GuardedTransport(resolver=resolver, connector=connector), "https://dual.example/"
    )
    assert response.status_code == 200
    assert calls == ["2606:4700:4700::1111", "93.184.216.34"]


def test_opt_in_allows_private_addresses() -> None:
    resolver = FakeResolver({"lan.example": ["10.0.0.1"]})
    connector = RecordingConnector({"10.0.0.1": [http_response()]})
    transport = GuardedTransport(allow_private=True, resolver=resolver, connector=connector)
    assert get(transport, "http://lan.example/").status_code == 200
    assert connector.calls == [("10.0.0.1", 80)]


def test_backend_refuses_unix_sockets_and_unknown_hosts() -> None:
    backend = GuardedNetworkBackend(resolver=FakeResolver({}), connector=RecordingConnector())
    with pytest.raises(UnsafeURLError):
        asyncio.run(backend.connect_unix_socket("/var/run/docker.sock"))
    with pytest.raises(FetchError, match="cannot resolve"):
        asyncio.run(backend.connect_tcp("nowhere.example", 443))


def test_system_resolver_resolves_localhost_and_the_guard_refuses_it() -> None:
    # /etc/hosts answers this; no DNS query leaves the machine.
    addresses = asyncio.run(SystemResolver().resolve("localhost", 443))
    assert addresses and all(ip.is_loopback for ip in addresses)
    backend = GuardedNetworkBackend(connector=RecordingConnector())
    with pytest.raises(UnsafeURLError):
        asyncio.run(backend.resolve_checked("localhost", 443))


# --- ports out of range (httpx parses any integer; the socket layer raised OverflowError) -------


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "https://remote.example:-1/",
                                 "https://remote.example:0/", "https://remote.example:65536/"])
def test_check_url_refuses_ports_out_of_range(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="is not a port number"):
        check_url(url, allow_private=True)


def test_check_url_accepts_the_highest_port() -> None:
    assert check_url("https://remote.example:65535/", allow_private=False).port == 65535


@pytest.mark.parametrize("port", [0, -1, 65536, 10**20])
def test_backend_refuses_ports_out_of_range_before_connecting(port: int) -> None:
    connector = RecordingConnector({"10.0.0.1": [http_response()]})
    backend = GuardedNetworkBackend(allow_private=True, resolver=FakeResolver(
        {"lan.example": ["10.0.0.1"]}), connector=connector)
    with pytest.raises(UnsafeURLError, match="is not a port number"):
        asyncio.run(backend.connect_tcp("lan.example", port))
    assert connector.calls == []
