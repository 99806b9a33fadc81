"""The console's pages and safety rules, through HTTP (no browser)."""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import Future

import pytest

from tests.console.conftest import TOKEN, csrf_of, login
from tests.console.fakeroot import make_collection, make_failed_output, make_root


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "out"
    make_collection(r / "grb", obs_id="GRB1", mode="XBAND-CP", total_s=40.0,
                    sources=[(1, 270.09554, 59.96648, 29.9, 2900.9)])  # fmt: skip
    make_collection(r / "field", obs_id="FLD1", status="PARTIAL", total_s=5.0, started="2026-03-01T00:00:00Z")
    make_failed_output(r / "bad", "BAD1")
    (tmp_path / "secret.txt").write_text("outside the root")
    return r


@pytest.fixture
def client(root, make_client):
    c = make_client(root)
    assert login(c).status_code == 303
    return c


def test_pages_need_a_login(root, make_client):
    c = make_client(root)
    r = c.get("/run/grb", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Frun%2Fgrb"
    api = c.get("/api/runs")
    assert api.status_code == 401 and api.headers["www-authenticate"].startswith("Bearer")
    assert c.get("/files/grb/latest.json", follow_redirects=False).status_code == 303
    assert c.get("/health").json() == {"status": "ok"}


def test_login_sets_an_httponly_strict_session_and_never_shows_the_token(root, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    c = make_client(root)
    r = login(c, next_="/harness")
    assert r.status_code == 303 and r.headers["location"] == "/harness"
    cookie = [h for k, h in r.headers.multi_items() if k == "set-cookie" and h.startswith("mxt_console_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    pages = [c.get(p).text for p in ("/", "/run/grb/xband-cp_GRB1_c20250615-f166a0_p0.1.0_v001", "/reprocess", "/harness")]
    assert all(TOKEN not in p for p in pages)
    assert TOKEN not in caplog.text


def test_a_wrong_token_is_refused_and_logins_are_throttled(root, make_client, caplog):
    c = make_client(root)
    r = login(c, token="guess-1")
    assert r.status_code == 401 and "not accepted" in r.text and "guess-1" not in r.text
    assert "mxt_console_session" not in r.headers.get("set-cookie", "")
    for i in range(4):
        login(c, token=f"guess-{i + 2}")
    assert login(c).status_code == 429  # even the right token waits after 5 failures
    assert "guess-" not in caplog.text


def test_login_without_its_csrf_token_is_refused(root, make_client):
    c = make_client(root)
    c.get("/login")
    r = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 403


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil", "javascript:alert(1)"])
def test_login_never_redirects_off_site(root, make_client, target):
    assert login(make_client(root), next_=target).headers["location"] == "/"


def test_bearer_header_for_scripts(root, make_client):
    c = make_client(root)
    ok = c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["total"] == 3
    assert c.get("/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_runs_table_lists_filters_and_sorts(client):
    html = client.get("/").text
    assert all(x in html for x in ("GRB1", "FLD1", "BAD1", "CALDB_ERROR", "18h00m22.93s", "+59°57&#39;59.3&#34;", "29.9″"))
    assert "no PSF for this date" in html  # why the failed run stopped
    partial = client.get("/?status=PARTIAL").text
    assert "FLD1" in partial and "GRB1" not in partial
    cp = client.get("/?mode=XBAND-CP").text
    assert "GRB1" in cp and "FLD1" not in cp
    rows = client.get("/api/runs?sort=duration&order=asc").json()["runs"]
    assert [r["obs_id"] for r in rows] == ["BAD1", "FLD1", "GRB1"]  # no duration first, then 5 s, 40 s
    rows = client.get("/api/runs?sort=det_ml&order=desc").json()["runs"]
    assert rows[0]["obs_id"] == "GRB1"
    assert [r["obs_id"] for r in client.get("/api/runs?q=fld").json()["runs"]] == ["FLD1"]


def test_run_page_shows_bricks_products_caldb_and_previews(client):
    key = "grb/xband-cp_GRB1_c20250615-f166a0_p0.1.0_v001"
    html = client.get(f"/run/{key}").text
    for text in ("calibrate", "detect", "n_events", "mxt_sop_sky_GRB1.fits", "mxt_psf.fits", "270.09554", "2900.90"):
        assert text in html, text
    img = re.search(r'<img src="([^"]+)"', html).group(1)
    assert img == f"/files/{key}/mxt_img_GRB1.png"
    r = client.get(img)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content.startswith(b"\x89PNG")
    fits_ = client.get(f"/files/{key}/mxt_sop_sky_GRB1.fits")
    assert fits_.status_code == 200 and fits_.headers["content-disposition"].startswith("attachment")


def test_failed_run_page_says_why(client):
    html = client.get("/run/bad").text
    assert "CALDB_ERROR" in html and "no PSF for this date" in html and "brick=calibrate" in html


@pytest.mark.parametrize("path", ["/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/grb/../../secret.txt",
                                  "/files/grb/.lock", "/files//etc/passwd", "/run/%2e%2e", "/files/nothing-here",
                                  "/run/grb/xband-cp_NOPE_v001"])  # fmt: skip
def test_no_path_outside_the_root_is_served(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "outside the root" not in r.text


def test_a_symlink_out_of_the_root_is_not_followed(client, root):
    os.symlink(root.parent / "secret.txt", root / "grb" / "leak.txt")
    r = client.get("/files/grb/leak.txt")
    assert r.status_code == 404 and "outside the root" not in r.text


def test_pages_carry_a_strict_content_security_policy(client):
    h = client.get("/").headers
    assert "script-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff" and h["cache-control"] == "no-store"


def test_values_from_files_are_escaped(tmp_path, make_client):
    import json

    d = make_collection(tmp_path, obs_id="X1")
    man = json.loads((d / "manifest.json").read_text())
    man["target"]["object"] = "<script>alert(1)</script>"
    (d / "manifest.json").write_text(json.dumps(man))
    c = make_client(tmp_path)
    login(c)
    html = c.get("/").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


class _Controlled:
    """Stands in for the executor: futures the test completes by hand."""

    def __init__(self):
        self.futures: list[Future] = []

    def __call__(self, collection_dir, caldb):
        f: Future = Future()
        self.futures.append(f)
        return f


def test_post_without_csrf_is_refused_and_with_it_launches_once(client, monkeypatch):
    app_config = client.app.state.config
    fake = _Controlled()
    monkeypatch.setattr(app_config.jobs, "_submit", fake)
    key = "grb/xband-cp_GRB1_c20250615-f166a0_p0.1.0_v001"
    assert client.post("/reprocess", data={"collection": key, "caldb": "default"}).status_code == 403
    assert client.post("/reprocess", data={"collection": key, "caldb": "default", "csrf_token": "forged"}).status_code == 403
    assert fake.futures == []
    csrf = csrf_of(client.get("/reprocess").text)
    r1 = client.post("/reprocess", data={"collection": key, "caldb": "default", "csrf_token": csrf}, follow_redirects=False)
    r2 = client.post("/reprocess", data={"collection": key, "caldb": "default", "csrf_token": csrf}, follow_redirects=False)
    assert r1.status_code == r2.status_code == 303 and r1.headers["location"] == r2.headers["location"]
    assert len(fake.futures) == 1  # the second launch found the running job
    job_id = r1.headers["location"].rsplit("/", 1)[1]
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "RUNNING"
    fake.futures[0].set_result({"ok": True, "status": "SUCCESS", "already_done": True, "collection": None})
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "DONE"
    assert "Already processed" in client.get(f"/jobs/{job_id}").text
    client.post("/reprocess", data={"collection": key, "caldb": "default", "csrf_token": csrf})
    assert len(fake.futures) == 2  # finished: a new launch runs again (the pipeline decides it is done)


def test_reprocess_refuses_unknown_caldb_and_foreign_paths(client, monkeypatch):
    monkeypatch.setattr(client.app.state.config.jobs, "_submit", _Controlled())
    csrf = csrf_of(client.get("/reprocess").text)
    r = client.post("/reprocess", data={"collection": "grb/xband-cp_GRB1_c20250615-f166a0_p0.1.0_v001",
                                        "caldb": "mine", "csrf_token": csrf})  # fmt: skip
    assert r.status_code == 400 and "unknown CALDB" in r.text
    r = client.post("/reprocess", data={"collection": "../", "caldb": "default", "csrf_token": csrf})
    assert r.status_code == 404
    r = client.post("/reprocess", data={"collection": "grb", "caldb": "default", "csrf_token": csrf})
    assert r.status_code == 400 and "not a published collection" in r.text


def test_api_post_with_bearer_needs_no_csrf(root, make_client, monkeypatch):
    c = make_client(root)
    fake = _Controlled()
    monkeypatch.setattr(c.app.state.config.jobs, "_submit", fake)
    r = c.post("/api/reprocess", data={"collection": "grb/xband-cp_GRB1_c20250615-f166a0_p0.1.0_v001"},
               headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 202 and r.json()["jobs"][0]["started_now"] is True and len(fake.futures) == 1


def test_logout_needs_csrf_and_ends_the_session(client):
    assert client.post("/logout").status_code == 403
    csrf = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_harness_page_with_the_project_reports(root, make_client):
    from pathlib import Path

    reports = Path(__file__).resolve().parents[2] / "reports"
    c = make_client(root, reports=reports)
    login(c)
    html = c.get("/harness").text
    assert html.count("<svg") == 2 and "Line coverage per run" in html


def test_runs_page_lists_every_generated_run(tmp_path, make_client):
    make_root(tmp_path, 60)
    c = make_client(tmp_path)
    login(c)
    html = c.get("/").text
    assert html.count('class="obs"') == 60


def test_harness_page_shows_the_last_report_and_sandboxes_its_html(root, make_client, tmp_path):
    reports = tmp_path / "reports"
    (reports / "benchmarks").mkdir(parents=True)
    (reports / "regression.md").write_text("# Regression report\n\n| check | result |\n| golden | PASS <b>x</b> |\n")
    (reports / "regression.html").write_text("<html><script>alert(1)</script>report</html>")
    (reports / "coverage-history.csv").write_text("commit,date,package,line_pct\na,2026-01-01T00:00:00Z,mxt_pipeline,90\n")
    c = make_client(root, reports=reports)
    login(c)
    html = c.get("/harness").text
    assert "# Regression report" in html and "PASS &lt;b&gt;x&lt;/b&gt;" in html and 'href="/harness/regression.html"' in html
    r = c.get("/harness/regression.html")
    assert r.status_code == 200 and r.headers["content-security-policy"].startswith("sandbox")


def test_sessions_expire_when_idle():
    import time

    from mxt_pipeline.console.auth import SessionStore

    store = SessionStore(idle_s=0.05)
    s = store.create()
    assert store.get(s.sid) is s and store.get("forged") is None
    time.sleep(0.1)
    assert store.get(s.sid) is None
    old = store.create()
    time.sleep(0.1)
    store.create()
    assert len(store) == 1 and store.get(old.sid) is None  # idle sessions are forgotten
