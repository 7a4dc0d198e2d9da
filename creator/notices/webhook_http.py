"""Where a webhook may be sent, and sending it there: plain Python, no Django.

A webhook URL is a URL a creator typed that this server then requests, so it is checked as one
would check any server-side request: http(s) only, no credentials, and (unless the operator
allows it) no address on a private, loopback or link-local network — for every address the name
resolves to. The connection then goes to the address that was checked, never to a second
lookup (DNS rebinding), while the Host header and TLS (SNI and certificate) use the host name.
Redirects are not followed: a 3xx is an answer like any other that is not 2xx.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from config.refusal import Refusal

URL_MAX = 500
URL_SCHEME = "Webhook URLs must start with https:// or http://."
URL_TOO_LONG = f"That URL is too long: at most {URL_MAX} characters."
URL_CREDENTIALS = (
    "Webhook URLs can't carry a user name or password. Check the webhook-signature header "
    "instead: it proves the request came from Candor."
)
URL_NO_HOST = "That URL has no host name."
URL_BAD_PORT = "That URL's port isn't a number from 1 to 65535."
URL_SPACES = "Webhook URLs can't contain spaces or line breaks."
URL_UNRESOLVED = "The host name “{host}” could not be found. Check the URL for typos."
URL_PRIVATE = (
    "This address is on a private network; Candor only sends to public addresses unless the "
    "operator allows private ones (WEBHOOK_ALLOW_PRIVATE)."
)
# What a receiver sends back is kept only as far as a log line needs.
BODY_READ_MAX = 4096
USER_AGENT = "Candor-Webhooks/1"


class UrlRefused(Refusal):
    """A webhook URL Candor won't send to, and why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`ip`) and what to ask for there."""

    scheme: str
    host: str
    port: int
    ip: str
    path: str  # with its query string


@dataclass(frozen=True)
class Answer:
    code: int | None  # the HTTP status; None when no answer came
    error: str  # short, for the delivery log; empty on a 2xx

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, allow_private: bool = False, resolve=socket.getaddrinfo) -> Target:
    """The target a webhook URL names, resolved once; raises UrlRefused saying why not."""
    url = url.strip()
    if len(url) > URL_MAX:
        raise UrlRefused(URL_TOO_LONG)
    if any(c.isspace() for c in url):
        raise UrlRefused(URL_SPACES)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not url.lower().startswith(f"{scheme}://"):
        raise UrlRefused(URL_SCHEME)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused(URL_CREDENTIALS)
    host = parts.hostname
    if not host:
        raise UrlRefused(URL_NO_HOST)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UrlRefused(URL_BAD_PORT) from None
    if not 0 < port < 65536:
        raise UrlRefused(URL_BAD_PORT)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlRefused(URL_UNRESOLVED.format(host=host)) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise UrlRefused(URL_UNRESOLVED.format(host=host))
    # Every address, not only the first: a name may resolve to a public and a private one.
    if not allow_private and not all(_public(ip) for ip in addresses):
        raise UrlRefused(URL_PRIVATE)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, ip=str(addresses[0]), path=path)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the host."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._ip = target.ip

    def connect(self):
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to the checked address; SNI and the certificate check use the host name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._ip = target.ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to a checked target once; never raises for what the network does."""
    connection_class = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = connection_class(target, timeout)
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Connection": "close",
            },
        )
        response = conn.getresponse()
        response.read(BODY_READ_MAX)  # a receiver can't make us read (or keep) more
    except ssl.SSLError as exc:
        return Answer(None, _short(f"TLS failed: {exc.reason or exc}"))
    except TimeoutError:
        return Answer(None, f"No answer within {timeout:g} s.")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, _short(f"Could not connect: {exc or type(exc).__name__}"))
    finally:
        conn.close()
    code = response.status
    if 200 <= code < 300:
        return Answer(code, "")
    if 300 <= code < 400:
        return Answer(code, "Redirects are not followed; give the final URL.")
    return Answer(code, _short(f"Answered {code} {response.reason}".strip()))


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
