"""Who may talk to the server and which files it touches: token (header, ?token= then cookie),
Host check, folder confinement (.., absolute paths, symlinks out, URL-encoded tricks), and the
``autoinpaint serve`` command (binding, token, lazy imports)."""
from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from autoinpaint.server.security import cookie_name, generate_token, is_loopback  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = EditOptions(segmenter="classical", inpainter="telea")
TOKEN = "0123456789abcdef0123456789abcdef0123456789abcdef"


def png(color=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("sec")
    root = base / "served"
    (root / "sub").mkdir(parents=True)
    (root / "inside.png").write_bytes(png())
    (root / "sub" / "deep.png").write_bytes(png((1, 2, 3)))
    (root / "%2e%2e").mkdir()
    (base / "secret.png").write_bytes(png((255, 0, 0)))
    (root / "link_out.png").symlink_to(base / "secret.png")
    (root / "dir_out").symlink_to(base)
    return root


@pytest.fixture(scope="module")
def open_client(folder):
    with TestClient(create_app(folder, OPTIONS, preload=False), base_url="http://127.0.0.1") as c:
        yield c


# ------------------------------------------------------------------------------------------- folder
@pytest.mark.parametrize("path, status, message", [
    ("../secret.png", 400, "without '..'"),
    ("sub/../../secret.png", 400, "without '..'"),
    ("/etc/passwd", 400, "relative"),
    ("C:/Windows/win.ini", 400, "relative"),
    ("..\\secret.png", 400, "with '/'"),
    ("inside.png\u0000.jpg", 400, "bad path"),
    ("link_out.png", 403, "outside the served folder"),
    ("dir_out/secret.png", 403, "outside the served folder"),
    ("%2e%2e/secret.png", 404, "no such photo"),        # percent-escapes are plain characters
    ("..%2fsecret.png", 404, "no such photo"),
    ("%2e%2e%2fsecret.png", 404, "no such photo"),
    ("missing.png", 404, "no such photo"),
    ("sub", 404, "no such photo"),
])
def test_folder_escapes_are_refused(open_client, path, status, message):
    r = open_client.post("/api/images", json={"path": path})
    assert r.status_code == status and message in r.json()["error"], r.json()


def test_inside_paths_open_and_the_listing_stays_inside(open_client):
    assert open_client.post("/api/images", json={"path": "sub/deep.png"}).status_code == 201
    assert open_client.post("/api/images", json={"path": "./inside.png"}).status_code == 201
    listed = [f["path"] for f in open_client.get("/api/files").json()["files"]]
    assert listed == ["inside.png", "sub/deep.png"]


@pytest.mark.parametrize("url", ["/static/../app.py", "/static/..%2f..%2fapp.py", "/static/%2e%2e/app.py",
                                 "/static/..%5c..%5capp.py", "/api/images/..%2f..%2fetc%2fpasswd"])
def test_url_tricks_reach_no_file(open_client, url):
    r = open_client.get(url)
    assert r.status_code in (404, 405) and "import" not in r.text


def test_without_a_folder_paths_are_refused(folder):
    with TestClient(create_app(None, OPTIONS, preload=False), base_url="http://127.0.0.1") as c:
        r = c.post("/api/images", json={"path": "inside.png"})
        assert r.status_code == 400 and "no folder" in r.json()["error"]
        assert c.get("/api/files").json()["files"] == []


# ------------------------------------------------------------------------------------------- token
def test_token_header_query_and_cookie(folder):
    app = create_app(folder, OPTIONS, token=TOKEN, preload=False)
    with TestClient(app, base_url="http://192.168.1.20:8765") as c:  # a LAN address: any Host is fine
        r = c.get("/api/info")
        assert r.status_code == 401 and "token" in r.json()["error"] and r.headers["www-authenticate"]
        assert c.get("/", headers={"accept": "text/html"}).headers["content-type"].startswith("text/html")
        assert c.get("/static/app.js").status_code == 401
        assert c.get("/api/info", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/info", headers={"authorization": f"Bearer {TOKEN}"}).json()["token_required"]
        assert c.get(f"/api/info?token={TOKEN}").status_code == 200
        assert c.get("/api/info?token=nope").status_code == 401
        r = c.get(f"/?token={TOKEN}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"  # the token leaves the address bar
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{cookie_name(TOKEN)}={TOKEN}")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.get("/").status_code == 200 and c.get("/api/info").status_code == 200  # the cookie
        c.cookies.clear()
        assert c.get("/api/info").status_code == 401
        c.cookies.set(cookie_name(TOKEN), "forged")
        assert c.get("/api/info").status_code == 401


def test_without_a_token_only_loopback_hosts(folder):
    app = create_app(folder, OPTIONS, preload=False)
    for host, status in [("127.0.0.1:8765", 200), ("localhost:8765", 200), ("[::1]:8765", 200),
                         ("evil.example:8765", 403), ("127.0.0.1.evil.example", 403)]:
        with TestClient(app, base_url=f"http://{host}") as c:
            assert c.get("/api/info").status_code == status, host


def test_tokens_and_loopback():
    assert re.fullmatch(r"[0-9a-f]{48}", generate_token()) and generate_token() != generate_token()
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")


# ------------------------------------------------------------------------------------------- command
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "AUTOINPAINT_HOME": str(tmp_path / "home")}


def test_help_imports_nothing_heavy():
    code = ("import sys; from autoinpaint.cli import main; import click\n"
            "for args in (['--help'], ['serve', '--help']):\n"
            "    try: main.main(args=args, standalone_mode=False)\n"
            "    except SystemExit: pass\n"
            "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'torch', 'cv2') if m in sys.modules]\n"
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--no-open" in r.stdout and "--token" in r.stdout and "--segmenter" in r.stdout


def test_serve_command_with_a_token(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(ROOT / "samples" / "rocket.jpg", folder)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "autoinpaint", "serve", str(folder), "--port", str(port),
                             "--no-open", "--token", TOKEN, "--segmenter", "classical"],
                            cwd=tmp_path, env=_env(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline() for _ in range(3)]
        assert "inpainter auto -> hybrid" in lines[0]
        assert "detector auto -> omdet-turbo" in lines[1]   # no detector here: its name, loaded on use
        assert f"autoinpaint serve: http://127.0.0.1:{port}/?token={TOKEN}" in lines[2], lines
        for _ in range(100):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/files",
                                             headers={"authorization": f"Bearer {TOKEN}"})
                files = urllib.request.urlopen(req, timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert '"rocket.jpg"' in files
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/files", timeout=2)
        assert err.value.code == 401
        # the port is taken now: a second server says so (exit 2), before loading anything
        r = subprocess.run([sys.executable, "-m", "autoinpaint", "serve", "--port", str(port), "--no-open"],
                           cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "cannot listen" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_non_loopback_address_gets_a_generated_token(cli, monkeypatch, tmp_path):
    """``--host 0.0.0.0`` (not bound here: the test stops before listening) prints a URL with a
    generated token, and the app it would serve refuses requests without it."""
    import importlib

    serve_cli = importlib.import_module("autoinpaint.cli.serve")  # the module, not the command

    served = {}
    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path))
    monkeypatch.setattr(serve_cli, "_bind", lambda host, port: socket.socket())
    monkeypatch.setattr(serve_cli, "_run", lambda app, sock, quiet: served.update(app=app))
    r = cli("serve", "--host", "0.0.0.0", "--no-open", "--segmenter", "classical")
    assert r.code == 0, r.err
    token = re.search(r"\?token=([0-9a-f]{48})", r.err).group(1)
    assert "every request needs the token" in r.err
    with TestClient(served["app"], base_url="http://192.168.1.20:8765") as c:
        assert c.get("/api/info").status_code == 401
        assert c.get("/api/info", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_the_listening_socket_sends_small_responses_at_once():
    """TCP_NODELAY (inherited by accepted connections): without it each response waited ~40 ms."""
    import importlib

    sock = importlib.import_module("autoinpaint.cli.serve")._bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
