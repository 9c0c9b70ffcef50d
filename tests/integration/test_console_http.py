"""The web console over plain HTTP: sign-in, CSRF, the security headers, escaping, and that it
can do nothing the signed-in key could not."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

import pytest
import requests

from ringstore import Client
from ringstore.errors import NoSuchBucket
from ringstore.localcluster import LocalCluster
from tests.conftest import TEST_ROOT_KEY, bucket_name
from tests.integration.console_support import (  # noqa: F401  (cluster: the module's fixture)
    base_url,
    cluster,
    form_token,
    page_token,
    signin,
)

ROOT_ID, ROOT_SECRET = TEST_ROOT_KEY


@pytest.fixture(scope="module")
def base(cluster: LocalCluster) -> str:  # noqa: F811
    return base_url(cluster)


@pytest.fixture(scope="module")
def root(base: str) -> tuple[requests.Session, str]:
    return signin(base, ROOT_ID, ROOT_SECRET)


def upload(base: str, s: requests.Session, csrf: str, bucket: str, key: str, data: bytes) -> Any:
    """Upload as console.js does: ask for presigned URLs, PUT the bytes, complete."""
    plan = s.post(
        f"{base}/uploads/start",
        json={"bucket": bucket, "key": key, "size": len(data), "content_type": "text/plain"},
        headers={"X-CSRF-Token": csrf},
    )
    assert plan.status_code == 200, plan.text
    body = plan.json()
    if body["mode"] == "single":
        return requests.put(body["url"], data=data, headers={"Content-Type": "text/plain"})
    parts = []
    size = body["part_size"]
    for n, url in enumerate(body["urls"], start=1):
        put = requests.put(url, data=data[(n - 1) * size : n * size])
        assert put.status_code == 200, put.text
        parts.append([n, put.headers["ETag"]])
    return s.post(
        f"{base}/uploads/complete",
        json={"bucket": bucket, "key": key, "upload_id": body["upload_id"], "parts": parts},
        headers={"X-CSRF-Token": csrf},
    )


def test_every_page_carries_the_csp_and_no_inline_script(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    s, _ = root
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    client.put_object(bucket, "k", b"x")
    paths = ["/signin", "/buckets", f"/objects?bucket={bucket}", f"/object?bucket={bucket}&key=k"]
    for path in [*paths, "/cluster", "/keys", "/static/console.js"]:
        resp = (requests if path == "/signin" else s).get(base + path)
        assert resp.status_code == 200, (path, resp.text[:300])
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-store"
        if path != "/static/console.js":
            # Scripts only by src from the console itself; no inline handlers.
            assert re.findall(r"<script(?![^>]*\bsrc=\"/static/)", resp.text) == []
            assert not re.search(r"\son[a-z]+=", resp.text), path


def test_the_session_cookie_is_httponly_and_samesite_strict(base: str) -> None:
    s = requests.Session()
    token = form_token(s.get(f"{base}/signin").text)
    resp = s.post(
        f"{base}/signin",
        data={"csrf": token, "access_key_id": ROOT_ID, "secret_access_key": ROOT_SECRET},
        allow_redirects=False,
    )
    assert resp.status_code == 303
    cookie = next(c for c in resp.headers["set-cookie"].split(", ") if c.startswith("rs_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Max-Age" not in cookie and "Expires" not in cookie  # ends with the browser session
    assert ROOT_SECRET not in resp.text and ROOT_SECRET not in resp.headers["set-cookie"]


def test_pages_need_a_session(base: str) -> None:
    resp = requests.get(f"{base}/buckets", allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/signin"
    resp = requests.post(f"{base}/buckets/create", data={"name": "nope-bucket"})
    assert resp.status_code == 401
    ended = requests.get(f"{base}/keys", cookies={"rs_console": "forged"}, allow_redirects=False)
    assert ended.headers["location"] == "/signin?ended=1"


def test_a_wrong_secret_or_unknown_key_does_not_sign_in(base: str) -> None:
    for key_id, secret, code in ((ROOT_ID, "wrong", "SignatureDoesNotMatch"),
                                 ("AKNOSUCHKEY", "x", "InvalidAccessKeyId")):  # fmt: skip
        s = requests.Session()
        token = form_token(s.get(f"{base}/signin").text)
        resp = s.post(
            f"{base}/signin",
            data={"csrf": token, "access_key_id": key_id, "secret_access_key": secret},
            allow_redirects=False,
        )
        assert resp.status_code == 403 and code in resp.text
        assert "rs_console" not in s.cookies


def test_sign_in_needs_the_forms_own_token(base: str) -> None:
    s = requests.Session()
    s.get(f"{base}/signin")
    resp = s.post(
        f"{base}/signin",
        data={"csrf": "forged", "access_key_id": ROOT_ID, "secret_access_key": ROOT_SECRET},
        allow_redirects=False,
    )
    assert resp.status_code == 403 and "rs_console" not in s.cookies


def test_a_second_visit_to_the_sign_in_page_keeps_the_first_forms_token(base: str) -> None:
    """Chromium fetches /favicon.ico after the page; that (or a second tab) must not make the
    form already shown stale."""
    s = requests.Session()
    token = form_token(s.get(f"{base}/signin").text)
    assert s.get(f"{base}/favicon.ico", allow_redirects=False).status_code == 404
    s.get(f"{base}/signin")
    resp = s.post(
        f"{base}/signin",
        data={"csrf": token, "access_key_id": ROOT_ID, "secret_access_key": ROOT_SECRET},
        allow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/buckets"


def test_a_state_change_without_the_sessions_csrf_token_is_refused(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    s, csrf = root
    _, other_csrf = signin(base, ROOT_ID, ROOT_SECRET)
    name = bucket_name(request)
    for data, headers in (
        ({"name": name}, {}),  # no token
        ({"name": name, "csrf": "x" + csrf[1:]}, {}),  # a wrong one
        ({"name": name, "csrf": other_csrf}, {}),  # another session's
        ({"name": name, "csrf": csrf}, {"Origin": "http://evil.example"}),  # another site
    ):
        resp = s.post(f"{base}/buckets/create", data=data, headers=headers, allow_redirects=False)
        assert resp.status_code == 403, data
        with pytest.raises(NoSuchBucket):
            client.head_bucket(name)
    # JSON calls take the token in a header.
    resp = s.post(f"{base}/uploads/start", json={"bucket": name, "key": "k", "size": 1})
    assert resp.status_code == 403
    ok = s.post(f"{base}/buckets/create", data={"name": name, "csrf": csrf}, allow_redirects=False)
    assert ok.status_code == 303
    assert client.head_bucket(name).name == name


def test_sign_out_ends_the_session(base: str) -> None:
    s, csrf = signin(base, ROOT_ID, ROOT_SECRET)
    resp = s.post(f"{base}/signout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status_code == 303
    sid = resp.headers["set-cookie"]
    assert "Max-Age=0" in sid
    assert s.get(f"{base}/buckets", allow_redirects=False).status_code == 303


def test_keys_and_metadata_are_escaped(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    s, _ = root
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    evil = '<img src=x onerror="alert(1)">'
    client.put_object(bucket, f"dir/{evil}", b"x", metadata={"note": "<script>alert(2)</script>"})
    client.create_key("<script>alert(3)</script>")
    pages = [
        s.get(f"{base}/objects", params={"bucket": bucket, "prefix": "dir/"}).text,
        s.get(f"{base}/objects", params={"bucket": bucket, "search": "dir/"}).text,
        s.get(f"{base}/object", params={"bucket": bucket, "key": f"dir/{evil}"}).text,
        s.get(f"{base}/keys").text,
    ]
    for page in pages:
        assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in pages[0]
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in pages[2]
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in pages[3]


def test_upload_download_share_and_delete(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    s, csrf = root
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    data = os.urandom(100_000)
    put = upload(base, s, csrf, bucket, "docs/a file.bin", data)
    assert put.status_code == 200, put.text
    assert client.get_object(bucket, "docs/a file.bin").read() == data
    listing = s.get(f"{base}/objects", params={"bucket": bucket, "prefix": "docs/"})
    assert "a file.bin" in listing.text
    down = s.get(f"{base}/download", params={"bucket": bucket, "key": "docs/a file.bin"})
    assert down.status_code == 200 and down.content == data
    assert down.headers["content-disposition"].startswith("attachment")
    page = s.post(
        f"{base}/objects/share",
        data={"csrf": csrf, "bucket": bucket, "key": "docs/a file.bin", "expires": "1 hour"},
    )
    link = re.search(r'id="share-url" readonly value="([^"]+)"', page.text)
    assert link, page.text[:1000]
    shared = requests.get(link.group(1).replace("&amp;", "&"))  # no cookie, no credentials
    assert shared.status_code == 200 and shared.content == data
    gone = {"csrf": csrf, "bucket": bucket, "key": "docs/a file.bin"}
    s.post(f"{base}/objects/delete", data=gone)
    assert client.list_objects(bucket).objects == []


def test_a_large_file_goes_up_in_parts(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    s, csrf = root
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    data = os.urandom(17 * 1024 * 1024)  # over the 16 MiB threshold: parts of 8, 8 and 1 MiB
    done = upload(base, s, csrf, bucket, "big.bin", data)
    assert done.status_code == 200, done.text
    assert done.json()["etag"].endswith("-3")
    got = client.get_object(bucket, "big.bin").read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_the_console_port_serves_no_presigned_download(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    """Stored objects never render in the console's origin: only uploads are taken there."""
    s, _ = root
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    client.put_object(bucket, "page.html", b"<script>alert(1)</script>", content_type="text/html")
    down = s.get(
        f"{base}/download", params={"bucket": bucket, "key": "page.html"}, allow_redirects=False
    )
    s3_url = down.headers["location"]
    assert not s3_url.startswith(base)
    same_origin = base + "/" + s3_url.split("/", 3)[3]
    assert requests.get(same_origin).status_code == 403


def test_a_read_only_key_can_change_nothing(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    client.put_object(bucket, "keep", b"data")
    reader = client.create_key("reader")
    client.grant(bucket, reader.access_key_id, read=True)
    assert reader.secret_access_key is not None
    s, csrf = signin(base, reader.access_key_id, reader.secret_access_key)
    listing = s.get(f"{base}/objects", params={"bucket": bucket})
    assert "keep" in listing.text and "delete-object" not in listing.text
    assert "/keys" not in listing.text  # not an admin: no keys or cluster pages in the menu
    resp = s.post(f"{base}/objects/delete", data={"csrf": csrf, "bucket": bucket, "key": "keep"})
    assert "AccessDenied" in resp.text
    assert client.get_object(bucket, "keep").read() == b"data"
    put = upload(base, s, csrf, bucket, "new", b"no")
    assert put.status_code == 403
    assert [o.key for o in client.list_objects(bucket).objects] == ["keep"]
    keys = s.get(f"{base}/keys")
    assert "AccessDenied" in keys.text and "RKTEST" not in keys.text


def test_rename_a_folder(
    base: str, root: tuple[requests.Session, str], client: Client, request: Any
) -> None:
    """The objects page of a folder offers the metadata-only move (the SDK's rename_prefix):
    every key under the folder moves, a sibling that merely starts with the same letters stays,
    and the form needs the session's CSRF token like every other."""
    s, csrf = root
    bucket = bucket_name(request)
    client.create_bucket(bucket)
    for key in ("photos/2024/a.jpg", "photos/b.jpg", "photosx/c.jpg", "other/d.jpg"):
        client.put_object(bucket, key, key.encode())
    page = s.get(f"{base}/objects", params={"bucket": bucket, "prefix": "photos/"})
    assert 'action="/objects/rename"' in page.text and 'id="rename-to"' in page.text
    assert 'action="/objects/rename"' not in s.get(f"{base}/objects?bucket={bucket}").text
    move = {"bucket": bucket, "prefix": "photos/", "to": "albums"}
    refused = s.post(f"{base}/objects/rename", data=move, allow_redirects=False)
    assert refused.status_code == 403
    assert client.head_object(bucket, "photos/b.jpg").key == "photos/b.jpg"
    done = s.post(f"{base}/objects/rename", data={**move, "csrf": csrf}, allow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/objects?bucket={bucket}&prefix=albums%2F"
    keys = sorted(o.key for o in client.list_objects(bucket).objects)
    assert keys == ["albums/2024/a.jpg", "albums/b.jpg", "other/d.jpg", "photosx/c.jpg"]
    assert client.get_object(bucket, "albums/2024/a.jpg").read() == b"photos/2024/a.jpg"
    landed = s.get(base + done.headers["location"])
    assert "Moved 2 objects from photos/ to albums/." in landed.text
