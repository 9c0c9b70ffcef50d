"""The web console in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium, against a real cluster.

Outside CI a machine without Chromium skips these tests with the reason; in CI (CI=true) they
fail. With RINGSTORE_CONSOLE_SCREENSHOTS=<dir> they save a PNG of each page there (the
screenshots in docs/console/ come from such a run).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ringstore import Client
from ringstore.errors import NoSuchKey
from ringstore.localcluster import LocalCluster
from tests.conftest import TEST_ROOT_KEY, bucket_name, need
from tests.integration.console_support import base_url, cluster  # noqa: F401

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 20.0  # seconds a step may take in the browser
DRIVER: list[Any] = []  # the module's browser, for what a timeout reports
SHOTS = os.environ.get("RINGSTORE_CONSOLE_SCREENSHOTS", "")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    need(
        CHROMIUM is not None and CHROMEDRIVER is not None,
        "headless Chromium is not installed (apt-get install chromium chromium-driver)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    DRIVER[:] = [driver]
    try:
        yield driver
    finally:
        driver.quit()


def until(check: Callable[[], Any], what: str, wait: float = WAIT) -> Any:
    deadline = time.monotonic() + wait
    while True:
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            at = f"; the browser is at {DRIVER[0].current_url}" if DRIVER else ""
            raise AssertionError(f"timed out waiting for {what}{at}")
        time.sleep(0.1)


def shot(driver: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def by(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def all_by(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def sign_in(driver: Any, base: str, key_id: str, secret: str) -> None:
    driver.get(f"{base}/signin")
    by(driver, "#access_key_id").send_keys(key_id)
    by(driver, "#secret_access_key").send_keys(secret)
    by(driver, "#signin").click()
    until(lambda: driver.current_url.endswith("/buckets"), "the buckets page after sign-in")


def sign_out(driver: Any) -> None:
    by(driver, "#signout").click()
    until(lambda: "/signin" in driver.current_url, "the sign-in page")


def accept_confirm(driver: Any) -> None:
    until(lambda: driver.switch_to.alert, "the confirmation").accept()


def test_sign_in_upload_download_share_delete(
    browser: Any,
    cluster: LocalCluster,  # noqa: F811
    client: Client,
    request: Any,
    tmp_path: Path,
) -> None:
    base = base_url(cluster)
    browser.get(f"{base}/signin")
    shot(browser, "signin")
    sign_in(browser, base, *TEST_ROOT_KEY)

    bucket = bucket_name(request, "web")
    by(browser, "#new-bucket").send_keys(bucket)
    by(browser, "#create-bucket").click()
    until(lambda: by(browser, f'tr[data-bucket="{bucket}"]'), "the new bucket in the list")
    shot(browser, "buckets")

    by(browser, f'tr[data-bucket="{bucket}"] a.bucket-link').click()
    until(lambda: by(browser, "#files"), "the objects page")
    data = os.urandom(300_000)
    path = tmp_path / "photo.bin"
    path.write_bytes(data)
    by(browser, "#files").send_keys(str(path))
    row = until(lambda: by(browser, 'tr.object[data-key="photo.bin"]'), "the uploaded file listed")
    assert client.get_object(bucket, "photo.bin").read() == data
    shot(browser, "objects")

    row.find_element("css selector", "a.object-link").click()
    until(lambda: by(browser, "#object-key").text == "photo.bin", "the object's details")
    assert by(browser, "#object-size").text.startswith("300000 bytes")
    by(browser, "#download").click()
    saved = browser.downloads / "photo.bin"
    until(lambda: saved.exists() and saved.read_bytes() == data, "the download, byte for byte")

    by(browser, "#share").click()
    link = until(lambda: by(browser, "#share-url").get_attribute("value"), "the share link")
    shot(browser, "object")
    shared = requests.get(link)  # no cookie, no credentials
    assert shared.status_code == 200 and shared.content == data

    by(browser, "#delete-object").click()
    accept_confirm(browser)
    until(lambda: "/objects" in browser.current_url, "the listing after the delete")
    assert not all_by(browser, 'tr.object[data-key="photo.bin"]')
    with pytest.raises(NoSuchKey):
        client.head_object(bucket, "photo.bin")

    browser.get(f"{base}/cluster")
    until(lambda: len(all_by(browser, "tr.node")) == 3, "three nodes on the cluster page")
    assert by(browser, "#ring-epoch").text.isdigit()
    shot(browser, "cluster")
    sign_out(browser)


def test_a_read_only_key_sees_no_delete_and_its_forged_posts_are_refused(
    browser: Any,
    cluster: LocalCluster,  # noqa: F811
    client: Client,
    request: Any,
) -> None:
    base = base_url(cluster)
    bucket = bucket_name(request, "ro")
    client.create_bucket(bucket)
    client.put_object(bucket, "keep.txt", b"keep me")

    # The admin makes the key in the browser: the secret is shown once.
    sign_in(browser, base, *TEST_ROOT_KEY)
    browser.get(f"{base}/keys")
    by(browser, "#new-key-name").send_keys("reader")
    by(browser, "#create-key").click()
    key_id = until(lambda: by(browser, "#new-key-id").get_attribute("value"), "the new key's id")
    secret = by(browser, "#new-key-secret").get_attribute("value")
    browser.refresh()
    assert not all_by(browser, "#new-key-secret")  # never shown again
    from selenium.webdriver.support.ui import Select

    Select(by(browser, "#grant-key")).select_by_value(key_id)
    Select(by(browser, "#grant-bucket")).select_by_visible_text(bucket)
    by(browser, "#grant-read").click()
    by(browser, "#grant").click()
    until(lambda: f"{bucket}: read" in by(browser, f'tr[data-key-id="{key_id}"]').text, "grant")
    shot(browser, "keys")
    sign_out(browser)

    sign_in(browser, base, key_id, secret)
    browser.get(f"{base}/objects?bucket={bucket}")
    until(lambda: by(browser, 'tr.object[data-key="keep.txt"]'), "the object listed")
    assert not all_by(browser, ".delete-object") and not all_by(browser, "#upload")

    forge = """
        const [token, done] = [arguments[0], arguments[arguments.length - 1]];
        const body = new URLSearchParams({bucket: arguments[1], key: "keep.txt"});
        if (token !== null) body.set("csrf", token);
        fetch("/objects/delete", {method: "POST", body, redirect: "manual"})
            .then(r => done(r.status)).catch(e => done(String(e)));
    """
    assert browser.execute_async_script(forge, None, bucket) == 403
    assert browser.execute_async_script(forge, "wrong-token", bucket) == 403
    own = by(browser, 'meta[name="csrf-token"]').get_attribute("content")
    # With its own valid token the console passes the call on, and the API refuses it.
    assert browser.execute_async_script(forge, own, bucket) in (0, 303)
    browser.get(f"{base}/buckets")
    assert "AccessDenied" in by(browser, "main").text
    assert client.get_object(bucket, "keep.txt").read() == b"keep me"
    sign_out(browser)


def test_a_key_named_with_a_script_does_not_run_it(
    browser: Any,
    cluster: LocalCluster,  # noqa: F811
) -> None:
    base = base_url(cluster)
    name = '<script>document.title="pwned"</script><b>bold?</b>'  # a name holds up to 64
    sign_in(browser, base, *TEST_ROOT_KEY)
    browser.get(f"{base}/keys")
    by(browser, "#new-key-name").send_keys(name)
    by(browser, "#create-key").click()
    until(lambda: by(browser, "#new-key-id"), "the new key")
    cells = [c.text for c in all_by(browser, "td.key-name")]
    assert name in cells  # shown as text, exactly as typed
    assert browser.title != "pwned"
    assert browser.execute_script("return document.querySelectorAll('main script').length") == 0
    sign_out(browser)


def test_upload_a_folder_then_rename_it(
    browser: Any,
    cluster: LocalCluster,  # noqa: F811
    client: Client,
    request: Any,
    tmp_path: Path,
) -> None:
    """A folder picked with the folder input goes up with its relative paths as keys under the
    page's prefix; then the folder is renamed from its own page (the metadata-only move)."""
    base = base_url(cluster)
    bucket = bucket_name(request, "dir")
    client.create_bucket(bucket)
    files = {"trip/a.txt": b"alpha\n", "trip/sub/b.bin": os.urandom(70_000), "trip/c d.txt": b"c"}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    sign_in(browser, base, *TEST_ROOT_KEY)
    browser.get(f"{base}/objects?bucket={bucket}&prefix=in%2F")
    # Chromedriver fills a webkitdirectory input from a directory's path, as a user's pick.
    by(browser, "#folder").send_keys(str(tmp_path / "trip"))
    until(lambda: by(browser, "tr.folder a").text == "trip/", "the uploaded folder listed")
    for rel, data in files.items():
        assert client.get_object(bucket, f"in/{rel}").read() == data

    by(browser, "tr.folder a").click()
    until(lambda: by(browser, 'tr.object[data-key="in/trip/a.txt"]'), "the folder's page")
    to = by(browser, "#rename-to")
    to.clear()
    to.send_keys("in/journey")
    by(browser, "#rename").click()
    until(lambda: "prefix=in%2Fjourney%2F" in browser.current_url, "the renamed folder's page")
    until(lambda: by(browser, 'tr.object[data-key="in/journey/a.txt"]'), "the moved object")
    assert "Moved 3 objects" in by(browser, "main").text
    keys = sorted(o.key for o in client.list_objects(bucket).objects)
    assert keys == sorted(f"in/{rel.replace('trip/', 'journey/')}" for rel in files)
    sign_out(browser)


def test_the_cluster_page_shows_a_killed_datanode_down_and_back_up(
    browser: Any,
    cluster: LocalCluster,  # noqa: F811
) -> None:
    """The cluster page refreshes itself: without a reload it shows a datanode killed with
    SIGKILL turn down (after the metanode's heartbeat timeout) and up again once restarted."""
    base = base_url(cluster)
    sign_in(browser, base, *TEST_ROOT_KEY)
    browser.get(f"{base}/cluster")
    node = cluster.datanode_id(cluster.datanodes)
    state = f'tr.node[data-node="{node}"] td.state'
    until(lambda: by(browser, state).text == "up", f"{node} up")
    browser.execute_script("window.notReloaded = true;")
    # Generous: the heartbeat timeout, the page's 3 s refresh, and a loaded machine.
    wait = cluster.heartbeat_timeout + 60.0
    cluster.processes[node].kill()
    try:
        until(lambda: by(browser, state).text == "down", f"{node} shown down", wait)
        shot(browser, "cluster-down")
    finally:
        cluster.restart(node)
    until(lambda: by(browser, state).text == "up", f"{node} shown up again", wait)
    assert browser.execute_script("return window.notReloaded === true")
    sign_out(browser)
