"""A browser tab left idle on a page served by `candor up` can still submit its form."""

import time

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.test_up import Up

# Past gunicorn's 30 s worker timeout.
IDLE_SECONDS = 40


@pytest.fixture
def up(tmp_path):
    server = Up(tmp_path)
    yield server
    server.kill()


@pytest.fixture
def predicting_page(playwright):
    """A page in a Chromium that preconnects as a desktop one does.

    Chromium learns which origins a site's pages need and opens sockets to them before they
    are asked for; a socket it then does not use sits idle. Playwright (and our CHROMIUM_ARGS)
    turn that off with --disable-background-networking, which would hide the idle connection.
    """
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[arg for arg in CHROMIUM_ARGS if arg != "--disable-background-networking"],
        ignore_default_args=["--disable-background-networking"],
    )
    page = chromium.new_context().new_page()
    page.set_default_timeout(15_000)
    yield page
    chromium.close()


@pytest.mark.browser
def test_a_form_submitted_after_the_tab_sat_idle_for_40_seconds_goes_through(up, predicting_page):
    page = predicting_page
    up.wait_until_serving()
    # Back to a page seen before: Chromium, having learnt the site, opens a spare connection
    # that this page (its files already cached) never uses. It stays open, idle.
    for _ in range(3):
        page.goto(up.url + "signup/")
        page.click("a[href='/login/']")
        page.go_back()
    page.fill("#id_handle", "idle")
    page.fill("#id_email", "idle@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)

    time.sleep(IDLE_SECONDS)  # the creator reads, fetches a coffee, comes back
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")

    assert navigation.value.ok, page.content()
    page.wait_for_url("**/dashboard/")
    assert "Hello, @idle" in page.content()
