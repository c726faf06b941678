"""Who may use a local app (`snapaction serve` and `snapaction studio`): its own page, and programs on this machine.

Listening on 127.0.0.1 keeps other machines out, but not other web pages: any page
open in the same browser can send requests to 127.0.0.1, and a page whose name
is re-pointed at 127.0.0.1 (DNS rebinding) can read the answers. So every
request and WebSocket passes three checks before any route runs:

1. **Host.** The ``Host`` header must name this app: ``localhost``, a loopback
   address, the address it listens on, this machine's own name, an IP address
   when it listens beyond loopback, or a name given with ``--allow-host`` (a
   reverse proxy). A rebinding page sends its own name, which is none of these.
2. **Origin.** A request that carries ``Origin`` (browsers send it with every
   POST, PATCH, DELETE, cross-origin fetch and WebSocket) must come from the
   app's own origin; ``Sec-Fetch-Site`` (sent by current browsers even where
   ``Origin`` is not, e.g. on a ``<video src>`` of another page) must be
   ``same-origin`` or ``none``, except for a plain navigation to the page
   itself (a link to the app still opens it). A request with neither header
   is not from a browser page: a program on this machine (``curl``), which can
   read the user's files anyway, so it is let through.
3. **Token**, where the app listens beyond loopback (or ``--token`` is given):
   the address printed once carries ``?token=...``; the page trades it for an
   HttpOnly, SameSite=Strict cookie, and programs send
   ``Authorization: Bearer TOKEN``. Every route and the WebSocket need it.

Every answer also carries ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer`` and a Content-Security-Policy that lets a page
load only this app's own scripts, styles, images, media and WebSocket; answers
under ``/api/`` are ``Cache-Control: no-store`` unless a route says otherwise.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""The pages may load nothing from anywhere but their own server (blob: and mediastream: are the chosen clip and the
webcam, both local)."""


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A token for an app reachable from other machines: 32 random URL-safe characters."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Access:
    """Who may use an app: where it listens, extra names it answers to, and its token (None: no token asked)."""

    bound: str = "127.0.0.1"
    """The address the app listens on (``--host``)."""
    allow_hosts: tuple[str, ...] = ()
    """Other names the ``Host`` header may carry (``--allow-host``: a reverse proxy's name)."""
    token: str | None = None

    @classmethod
    def for_host(cls, bound: str, allow_hosts=(), token: str | None = None) -> "Access":
        """Beyond loopback a token is always asked for: `token`, or a new one."""
        if not token and not is_loopback(bound):
            token = new_token()
        return cls(bound, tuple(allow_hosts), token or None)

    def address(self, port: int) -> str:
        """The address to print: where a browser on this machine opens the app, with the token when there is one."""
        host = self.bound.strip("[]")
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        base = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        return base + (f"?{urlencode({'token': self.token})}" if self.token else "")


def cookie_name(port: int | None) -> str:
    """Cookies are kept per host name, not per port: two apps on one machine get a cookie each."""
    return f"snapaction-token-{port or 0}"


def host_name(host_header: str) -> str:
    """The name or address in a ``Host`` header, without its port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware that applies `Access` to every HTTP request and WebSocket before any route runs."""

    def __init__(self, app, access: Access):
        self.app = app
        self.access = access
        names = {"localhost", *(h.lower().strip("[]") for h in access.allow_hosts)}
        bound = access.bound.strip("[]").lower()
        if bound not in ("0.0.0.0", "::"):
            names.add(bound)
        if not is_loopback(access.bound):
            hostname = socket.gethostname().lower()
            names |= {hostname, hostname.split(".")[0], socket.getfqdn().lower()}
        self.names = frozenset(names)
        self.loopback = is_loopback(access.bound)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        refusal = self.refusal(scope, headers, query)
        if refusal is not None:
            return await self.refuse(scope, receive, send, *refusal)
        set_cookie = None
        if self.access.token and query.get("token") == self.access.token:
            port = (scope.get("server") or (None, None))[1]
            set_cookie = (f"{cookie_name(port)}={self.access.token}; Path=/; HttpOnly; SameSite=Strict").encode("latin-1")
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                if api and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                if set_cookie:
                    extra.append((b"set-cookie", set_cookie))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, send_with_headers)

    def refusal(self, scope, headers: dict[str, str], query: dict[str, str]) -> tuple[int, str] | None:
        """(status, one sentence) when the request may not reach the app; None when it may."""
        host = headers.get("host", "")
        if not self.host_allowed(host):
            return 403, (f"this app does not answer to the name {host_name(host) or '(none)'!r}; open it as "
                         f"http://localhost or http://127.0.0.1 with its port, or start it with --allow-host NAME "
                         "when it is reached through that name (a reverse proxy)")
        if self.access.token and not self.has_token(scope, headers, query):
            return 401, ("this app asks for its token: open the address it printed (with ?token=...), "
                         "or send the header 'Authorization: Bearer TOKEN'")
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") != f"{scheme}://{host.lower()}":
            return 403, f"a page from {origin} may not use this app; only its own page ({scheme}://{host}) may"
        site = headers.get("sec-fetch-site", "").lower()
        if site and site not in ("same-origin", "none"):
            navigation = (scope["type"] == "http" and scope.get("method") == "GET" and scope.get("path") == "/"
                          and headers.get("sec-fetch-mode") == "navigate")
            if not navigation:
                return 403, "a request from another site may not use this app; open the app's own page instead"
        return None

    def host_allowed(self, host_header: str) -> bool:
        name = host_name(host_header)
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False  # a name this app was not told of: what a DNS-rebinding page sends
        return address.is_loopback or not self.loopback  # a rebinding page cannot send an address as its name

    def has_token(self, scope, headers: dict[str, str], query: dict[str, str]) -> bool:
        token = self.access.token.encode()
        offered = [query.get("token", "")]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        port = (scope.get("server") or (None, None))[1]
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no token
            pass
        if cookie_name(port) in jar:
            offered.append(jar[cookie_name(port)].value)
        return any(hmac.compare_digest(token, o.encode()) for o in offered if o)

    async def refuse(self, scope, receive, send, status: int, message: str) -> None:
        if scope["type"] == "websocket":  # closing before accepting refuses the handshake (HTTP 403)
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = json.dumps({"detail": message}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})


def add_access_arguments(parser) -> None:
    """``--allow-host`` and ``--token``, the same for `serve` and `studio`."""
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another name the app answers to, e.g. a reverse proxy's (repeatable); any other name in a "
                             "request's Host header is refused, which keeps DNS-rebinding pages out")
    parser.add_argument("--token", default=None,
                        help="the token every request must carry (the printed address has it); beyond loopback one is "
                             "made when none is given, on loopback none is asked for unless given")


def beyond_loopback_warning(access: Access, what: str) -> str | None:
    """The warning printed when `access` lets other machines reach the app, or None on loopback."""
    if is_loopback(access.bound):
        return None
    return (f"warning: listening on {access.bound} lets other machines on the network reach {what}; each needs the "
            "token in the address printed below (keep it to yourself), and the connection is not encrypted: "
            "use --host 127.0.0.1 to keep it on this machine, or an HTTPS reverse proxy (--allow-host NAME)")
