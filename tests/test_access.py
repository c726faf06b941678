"""Who may use the local apps: their own page and programs on this machine, never another web page.

Every route of `snapaction serve` and `snapaction studio` is enumerated from the apps themselves, so a route added
later is covered (or fails here): a foreign Host (DNS rebinding), a foreign Origin, a cross-site fetch, no token or
a wrong one where the app listens beyond loopback. And in Chromium, a page from another origin tries what a page can
(a form POST, no-cors fetches, a WebSocket) while the studio runs: nothing gets through, nothing changes.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from snapaction.studio.app import create_studio_app
from snapaction.web.app import create_app
from snapaction.web.guard import Access, host_name
from test_web_api import MeanColourPredictor

TOKEN = "t0ken-" + "x" * 30


def apps(tmp_path, access: Access | None = None) -> dict:
    uploads = tmp_path / "uploads"
    uploads.mkdir(exist_ok=True)
    return {"serve": create_app(MeanColourPredictor(), tmp_dir=uploads, access=access),
            "studio": create_studio_app(tmp_path / "project", access=access)}


def requests_of(app) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route, path parameters filled in; static mounts by one of their files."""
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute) or (hasattr(route, "methods") and not isinstance(route, WebSocketRoute)):
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            found += [(method, path) for method in sorted(route.methods - {"HEAD"})]
        elif isinstance(route, Mount):
            found.append(("GET", route.path + "/style.css"))
    assert found
    return found


def websockets_of(app) -> list[str]:
    return [re.sub(r"\{[^}]+\}", "x", r.path) for r in app.routes if isinstance(r, WebSocketRoute)]


FOREIGN = [
    ({"host": "evil.example:7861"}, 403, "does not answer to the name 'evil.example'"),  # DNS rebinding
    ({"host": "evil.example"}, 403, "does not answer to the name"),
    ({"origin": "http://evil.example"}, 403, "a page from http://evil.example may not use this app"),
    ({"origin": "http://127.0.0.1:9999"}, 403, "may not use this app"),  # another port is another origin
    ({"origin": "null"}, 403, "a page from null"),  # sandboxed frames and file:// pages
    ({"sec-fetch-site": "cross-site"}, 403, "a request from another site"),  # e.g. <video src> on another page
    ({"sec-fetch-site": "same-site"}, 403, "a request from another site"),  # localhost:OTHER_PORT is the same site
]


@pytest.mark.parametrize("headers, status, says", FOREIGN)
def test_every_route_refuses_a_foreign_host_origin_or_site_before_it_runs(tmp_path, headers, status, says):
    for name, app in apps(tmp_path).items():
        client = TestClient(app, raise_server_exceptions=False)
        for method, path in requests_of(app):
            response = client.request(method, path, headers=headers, json={"name": "wave"})
            assert response.status_code == status and says in response.json()["detail"], (name, method, path, response.text)
            assert response.headers["x-content-type-options"] == "nosniff"
        for path in websockets_of(app):
            with pytest.raises(WebSocketDisconnect) as refused:
                with client.websocket_connect(path, headers=headers):
                    pass
            assert refused.value.code == 1008, (name, path)
    assert not (tmp_path / "project" / "data" / "wave").exists()  # the POST /api/classes never ran


def test_the_apps_own_page_and_programs_on_this_machine_get_through(tmp_path):
    app = apps(tmp_path)["studio"]
    client = TestClient(app)
    own = {"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"}
    assert client.post("/api/classes", json={"name": "wave"}, headers=own).status_code == 201  # the page itself
    assert client.post("/api/classes", json={"name": "drop"}).status_code == 201  # curl: no Origin, no Sec-Fetch-*
    for host in ("localhost:7861", "127.0.0.1:7861", "[::1]:7861", "127.0.0.2"):
        assert client.get("/api/project", headers={"host": host}).status_code == 200, host
    # a link from another site still opens the page (a navigation), but nothing under it
    navigate = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    assert client.get("/", headers=navigate).status_code == 200
    assert client.get("/api/project", headers=navigate).status_code == 403
    page = client.get("/")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self' covers scripts
    assert "default-src 'self'" in page.headers["content-security-policy"] and page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/api/project").headers["cache-control"] == "no-store"
    with client.websocket_connect("/api/live/nope", headers={"origin": "http://127.0.0.1"}) as ws:  # own origin: accepted
        said = ws.receive_json()
        assert said["type"] == "error" and "nope" in said["detail"]  # past the guard: the route itself answered


def test_a_proxy_name_is_allowed_only_when_given():
    app = create_studio_app  # noqa: F841  (the names below are what the guard compares)
    assert host_name("Example.org:443") == "example.org" and host_name("[::1]:80") == "::1" and host_name("::1") == "::1"
    from snapaction.web.guard import Guard

    guard = Guard(None, Access("127.0.0.1", ("studio.lan",)))
    assert guard.host_allowed("studio.lan:8080") and guard.host_allowed("localhost")
    assert not guard.host_allowed("evil.example") and not guard.host_allowed("192.168.1.20")  # loopback: no LAN address
    beyond = Guard(None, Access.for_host("0.0.0.0"))
    assert beyond.host_allowed("192.168.1.20:7861") and not beyond.host_allowed("evil.example")
    assert beyond.access.token and len(beyond.access.token) >= 32 and Access.for_host("127.0.0.1").token is None


def test_beyond_loopback_every_route_needs_the_token(tmp_path):
    access = Access.for_host("0.0.0.0", token=TOKEN)
    for name, app in apps(tmp_path, access).items():
        client = TestClient(app, raise_server_exceptions=False)
        for method, path in requests_of(app):
            for headers in ({}, {"authorization": "Bearer wrong"}, {"cookie": "snapaction-token-0=wrong"}):
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401 and "asks for its token" in response.json()["detail"], (name, method, path)
        for path in websockets_of(app):
            with pytest.raises(WebSocketDisconnect):
                with client.websocket_connect(path):
                    pass
        assert client.get("/healthz", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200  # programs
        # the printed address: ?token= once, then the cookie carries it (HttpOnly, SameSite=Strict)
        first = client.get(f"/?token={TOKEN}")
        assert first.status_code == 200
        assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
        assert client.get("/healthz").status_code == 200  # the client kept the cookie
        client.cookies.clear()
        assert client.get("/healthz").status_code == 401
    assert access.address(7861) == f"http://127.0.0.1:7861/?token={TOKEN}"


ATTACK = """<!doctype html><html><body><form id=f method=post enctype=multipart/form-data action="{studio}/api/classes/wave/clips">
<input name=video value=x></form><script>
const results = {{}};
async function attempt(name, run) {{ try {{ await run(); results[name] = "sent"; }} catch (e) {{ results[name] = "failed"; }} }}
window.attack = async () => {{
  const clip = new Blob([new Uint8Array(4096)], {{type: "video/mp4"}});
  const form = new FormData(); form.append("video", clip, "clip.mp4");
  await attempt("upload", () => fetch("{studio}/api/classes/wave/clips", {{method: "POST", mode: "no-cors", body: form}}));
  await attempt("class", () => fetch("{studio}/api/classes", {{method: "POST", mode: "no-cors", body: '{{"name":"evil"}}',
                                                              headers: {{"Content-Type": "text/plain"}}}}));
  await attempt("stop", () => fetch("{studio}/api/train/stop", {{method: "POST", mode: "no-cors"}}));
  await attempt("read", async () => {{ const r = await fetch("{studio}/api/project"); results.listing = await r.text(); }});
  results.socket = await new Promise(done => {{
    const ws = new WebSocket("{socket}/api/live/run");
    ws.onopen = () => done("open"); ws.onerror = () => done("refused"); setTimeout(() => done("timeout"), 5000);
  }});
  return results;
}};
</script></body></html>"""


@pytest.mark.browser
def test_a_page_from_another_origin_gets_nothing_through_in_a_real_browser(browser, tmp_path):
    from conftest import serve_in_thread, stop_servers

    servers = []
    project = tmp_path / "project"
    studio = serve_in_thread(create_studio_app(project), servers)
    (project / "data" / "wave").mkdir(parents=True)
    page_html = ATTACK.format(studio=studio, socket=studio.replace("http://", "ws://"))

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)  # another port: another origin, the same site
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        results = page.evaluate("window.attack()")
        assert results["socket"] == "refused", results
        assert results["read"] == "failed" and "listing" not in results, results  # no CORS answer: nothing to read
        with page.expect_navigation():
            page.evaluate("document.getElementById('f').submit()")  # a plain form: no preflight, no script
        assert "may not use this app" in page.inner_text("body")  # the studio's refusal is what the form got back
        assert sorted(p.name for p in (project / "data").iterdir()) == ["wave"]  # no class "evil"
        assert not list((project / "data" / "wave").iterdir())  # no clip landed
        # the studio's own page, in the same browser, still works
        own = context.new_page()
        own.goto(studio)
        assert own.evaluate("fetch('/api/classes', {method: 'POST', headers: {'Content-Type': 'application/json'}, "
                            "body: JSON.stringify({name: 'mine'})}).then(r => r.status)") == 201
        assert (project / "data" / "mine").is_dir()
    finally:
        context.close()
        attacker.shutdown()
        stop_servers(servers)
