"""The web client (ui/) in Debian's headless Chromium, driven by Selenium
(python3-selenium + chromium-driver), against nginx and real agents.

Two browsers with their own profiles (two separate sessions, as two
people on two machines): alice and bob register through the UI, alice
invites bob, bob sees the invitation and accepts it, and alice's open
calendar shows his answer without a reload (the WSS notification made it
refetch).  On the way: an API error (422) and an edit conflict (412)
shown to the user with the API's message.  Assertions are on the DOM;
screenshots of both browsers land in the test's tmp dir.

Races are made deterministic rather than waited out: Holder (HOLD_JS)
keeps chosen REST answers of the page until the test releases them —
after a logout, after another user's login, after a change made on the
shard meanwhile.

Chromium trusts the test's development certificate by its public key
(--ignore-certificate-errors-spki-list), not by ignoring every error.
Skipped, with the reason, only when Chromium, chromedriver or Selenium is
missing or Chromium cannot start.
"""
from __future__ import annotations

import base64
import datetime
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        ElementNotInteractableException, NoSuchElementException,
        StaleElementReferenceException, TimeoutException, WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover
    webdriver = None

from edge_client import Client, shard_op

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORD = "correct horse battery"
WAIT = 20  # seconds; two browsers share two cores with the cluster

# Flags: headless, no sandbox (root in a container), nothing fetched from
# the internet by Chromium itself (updates, sync, field trials, ...).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--no-default-browser-check",
    "--disable-default-apps", "--disable-extensions",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--metrics-recording-only", "--disable-dev-shm-usage",
    "--window-size=1280,900", "--lang=en-GB",
)


def spki_sha256(cert_pem: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate: what
    --ignore-certificate-errors-spki-list takes."""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert_pem),
                          "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
                         input=pub, check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"],
                            input=der, check=True,
                            capture_output=True).stdout
    return base64.b64encode(digest).decode()


class Browser:
    """One Chromium with a fresh profile, and DOM helpers."""

    def __init__(self, name: str, base: str, spki: str, shots: Path):
        if webdriver is None:
            pytest.skip("python3-selenium is not installed "
                        "(config/deps.sh installs it)")
        for exe, pkg in ((CHROMIUM, "chromium"),
                         (CHROMEDRIVER, "chromium-driver")):
            if not Path(exe).is_file():
                pytest.skip(f"{exe} not found (apt-get install {pkg}; "
                            "config/deps.sh installs it)")
        self.name = name
        self.base = base
        self.shots = shots
        self.profile = Path(tempfile.mkdtemp(prefix=f"agenda-ui-{name}-"))
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in CHROMIUM_FLAGS:
            opts.add_argument(f)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.add_argument(f"--ignore-certificate-errors-spki-list={spki}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.d = webdriver.Chrome(
                service=Service(executable_path=CHROMEDRIVER,
                                log_path=str(shots / f"chromedriver-"
                                             f"{name}.log")),
                options=opts)
        except WebDriverException as e:
            shutil.rmtree(self.profile, ignore_errors=True)
            pytest.skip(f"chromium cannot start: {e.msg or e}")
        self.d.set_page_load_timeout(WAIT)

    def quit(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- DOM --------------------------------------------------------------

    def open(self, path="/"):
        self.d.get(self.base + path)

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def wait(self, what, fn, timeout=WAIT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(
                lambda d: fn())
        except TimeoutException:
            self.screenshot("timeout")
            raise AssertionError(
                f"{self.name}: timed out waiting for {what}; messages: "
                f"{self.messages()!r}; console: {self.console()!r}")

    # Live updates re-render parts of the page at any time: helpers look
    # elements up again on every try instead of holding on to them.

    def _retry(self, what, fn, timeout=WAIT):
        def attempt():
            try:
                return fn()
            except (StaleElementReferenceException,
                    ElementNotInteractableException):
                return None
        return self.wait(what, attempt, timeout)

    def _first_visible(self, css):
        return next((e for e in self.d.find_elements(By.CSS_SELECTOR, css)
                     if e.is_displayed()), None)

    def _first_usable(self, css):
        """The first visible match once it is enabled too: a form busy
        with its request disables its controls, and typing into one or
        clicking it then fails or does nothing."""
        el = self._first_visible(css)
        return el if el is not None and el.is_enabled() else None

    def visible(self, css):
        return self._retry(f"{css} visible",
                           lambda: self._first_visible(css) and True)

    def text_of(self, css, text, timeout=WAIT) -> str:
        """The text of the first element matching css that contains
        text, once there is one."""
        def find():
            for e in self.d.find_elements(By.CSS_SELECTOR, css):
                t = e.text
                if text in t:
                    return t
            return None
        return self._retry(f"{css} containing {text!r}", find, timeout)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def fill(self, css, value):
        def do():
            el = self._first_usable(css)
            if el is None:
                return None
            el.clear()
            el.send_keys(value)
            return True
        self._retry(f"{css} to fill", do)

    def set_value(self, css, value):
        """For inputs whose typing is locale-dependent (datetime-local)."""
        self.d.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "e.value = arguments[1];"
            "e.dispatchEvent(new Event('input', {bubbles: true}));",
            css, value)

    def choose(self, css, value):
        """Picks the option of a <select> by value, as a user would (the
        options may be re-rendered meanwhile: looked up on every try)."""
        def do():
            el = self._first_visible(css)
            if el is None:
                return None
            try:
                Select(el).select_by_value(value)
            except NoSuchElementException:
                return None
            return True
        self._retry(f"{css} option {value!r}", do)

    def options(self, css) -> list[str]:
        """The values of a <select>'s options."""
        return self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' option')]"
            "  .map((o) => o.value);", css)

    def click(self, css):
        def do():
            el = self._first_usable(css)
            if el is None:
                return None
            el.click()
            return True
        self._retry(f"{css} to click", do)

    def messages(self):
        return [e.text for e in self.d.find_elements(By.CSS_SELECTOR,
                                                     ".message")]

    def console(self):
        try:
            return [f"{e['level']}: {e['message']}"
                    for e in self.d.get_log("browser")]
        except WebDriverException:
            return []

    def screenshot(self, tag):
        path = self.shots / f"{self.name}-{tag}.png"
        self.d.save_screenshot(str(path))
        return path

    def emulate_zone(self, zone: str) -> None:
        """The page's local time zone from now on (DevTools)."""
        self.d.execute_cdp_cmd("Emulation.setTimezoneOverride",
                               {"timezoneId": zone})

    def today(self) -> str:
        """The browser's local date, YYYY-MM-DD."""
        return self.d.execute_script(
            "const d = new Date(), p = (n) => String(n).padStart(2, '0');"
            "return `${d.getFullYear()}-${p(d.getMonth() + 1)}-"
            "${p(d.getDate())}`;")

    # -- the app ----------------------------------------------------------

    def register(self, user):
        self.fill("#reg-username", user)
        self.fill("#reg-display", user.title())
        self.fill("#reg-email", f"{user}@example.org")
        self.fill("#reg-password", PASSWORD)
        self.click("#register-form button[type=submit]")
        self.text_of("#whoami", f"({user})")

    def login(self, user):
        self.fill("#login-username", user)
        self.fill("#login-password", PASSWORD)
        self.click("#login-form button[type=submit]")
        self.text_of("#whoami", f"({user})")

    def logout(self):
        self.click("#logout")
        self.visible("#login-form")

    def live(self):
        self.text_of("#live-status", "Live")

    def channels(self) -> list[str]:
        """The notification channels the page is subscribed to now."""
        return (self.find("#live-status").get_attribute("data-channels")
                or "").split()


@pytest.fixture
def browsers(stack, tmp_path):
    """A factory of Browsers on the stack's edge, all quit at the end."""
    _, edge = stack
    base = f"https://localhost:{edge.https_port}"
    spki = spki_sha256(edge.tls_dir / "server.pem")
    made = []

    def make(name):
        b = Browser(name, base, spki, tmp_path)
        made.append(b)
        return b

    yield make
    for b in made:
        b.quit()


def csp_violations(console):
    return [m for m in console if "Content Security Policy" in m
            or "Refused to" in m]


def script_errors(console):
    """Console errors other than answers the API refused (those are
    logged as failed loads): a script exception, a blocked load."""
    return [m for m in console if m.startswith("SEVERE")
            and "the server responded with a status of" not in m]


def assert_clean_console(b, csp=True):
    console = b.console()
    if csp:
        assert not csp_violations(console), console
    assert not script_errors(console), console


def test_invite_accept_and_live_update_across_two_browsers(browsers,
                                                           tmp_path):
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name = f"alice{tag}", f"bob{tag}"
    title = f"Planning {tag}"

    alice = browsers("alice")
    alice.open("/")
    assert "Agenda" in alice.d.title
    alice.visible("#login-form")

    # Two accounts made through the UI (registering logs in), then a
    # plain login as alice.
    alice.register(bob_name)
    alice.logout()
    alice.register(alice_name)
    alice.logout()
    alice.login(alice_name)
    alice.live()

    # A refused create shows the API's error, in the dialog.
    day = alice.today()
    alice.click("#cal-new")
    alice.visible("#event-dialog[open]")
    alice.fill("#ev-title", title)
    alice.set_value("#ev-start", f"{day}T10:00")
    alice.set_value("#ev-end", f"{day}T09:00")
    alice.fill("#ev-participants", bob_name)
    alice.click("#ev-save")
    err = alice.text_of("#event-errors .message.error", "422")
    assert "end_before_start" in err

    alice.set_value("#ev-end", f"{day}T11:00")
    alice.click("#ev-save")
    alice.text_of("#messages .message.info", f"Saved “{title}”")
    chip = alice.text_of("#cal-grid .chip.own", title)
    assert f"{bob_name}: not answered" in chip
    event_id, chip_day = alice.js(
        "const c = [...document.querySelectorAll('#cal-grid .chip.own')]"
        "  .find((e) => e.textContent.includes(arguments[0]));"
        "return [c.dataset.eventId, c.closest('[data-date]').dataset.date];",
        title)
    assert len(event_id) == 32
    assert chip_day == day
    chip = f'#cal-grid .chip[data-event-id="{event_id}"]'

    # Alice opens the event for editing (its version now) and leaves it
    # open while bob answers.
    alice.click(chip)
    alice.visible("#event-dialog[open]")
    assert alice.find("#ev-title").get_attribute("value") == title

    # Bob, in a browser of his own.
    bob = browsers("bob")
    bob.open("/")
    bob.login(bob_name)
    bob.live()
    bob.text_of("#invitation-count", "1")
    bob.click('#nav a[data-view="invitations"]')
    item = f'#inv-pending li[data-event-id="{event_id}"]'
    text = bob.text_of(item, title)
    assert f"from {alice_name}" in text
    assert "not answered" in text
    bob.click(f'{item} [data-answer="accepted"]')
    bob.text_of(f'#inv-answered li[data-event-id="{event_id}"]',
                "Your answer: accepted")
    bob.text_of("#messages .message.info", "accepted")
    bob.click('#nav a[data-view="calendar"]')
    bob_chip = bob.text_of(chip, title)
    assert f"from {alice_name}" in bob_chip
    assert "you: accepted" in bob_chip

    # Alice never reloaded: the notification refreshed her calendar, and
    # her open editor warns that the event changed under her.
    alice.text_of(chip, f"{bob_name}: accepted")
    alice.text_of("#event-errors .message.info", "changed by someone else")

    # Saving her now stale edit is refused with 412, and said so.
    alice.fill("#ev-title", f"{title} (moved)")
    alice.click("#ev-save")
    stale = alice.text_of("#event-errors .message.error", "412")
    assert "version_mismatch" in stale
    assert "Someone changed this event" in stale
    assert alice.find("#event-dialog").get_attribute("open") is not None

    # Loading the latest version, then saving, works; bob's calendar
    # follows live.
    alice.click("#ev-reload")
    alice.wait("the latest version", lambda: "accepted" in
               alice.find("#ev-responses").text)
    alice.fill("#ev-title", f"{title} (moved)")
    alice.click("#ev-save")
    alice.text_of("#messages .message.info", f"Saved “{title} (moved)”")
    bob.text_of(chip, f"{title} (moved)")

    # The month view has it too.
    alice.click("#cal-month")
    alice.text_of(f'#cal-grid.month .chip[data-event-id="{event_id}"]',
                  f"{title} (moved)")

    shots = [alice.screenshot("calendar"), bob.screenshot("calendar")]
    for p in shots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
    print("screenshots:", *shots)

    # The app ran under the strict Content-Security-Policy untouched.
    for b in (alice, bob):
        assert_clean_console(b)


def test_login_errors_are_shown_with_the_api_message(browsers):
    b = browsers("stranger")
    b.open("/")
    b.fill("#login-username", f"nobody{uuid.uuid4().hex[:8]}")
    b.fill("#login-password", "wrong password")
    b.click("#login-form button[type=submit]")
    msg = b.text_of("#messages .message.error", "401")
    assert "invalid_credentials" in msg
    # the token never lands in a cookie
    assert b.d.get_cookies() == []

    # a taken username is 409 with the API's message
    name = f"carol{uuid.uuid4().hex[:8]}"
    b.register(name)
    b.logout()
    b.fill("#reg-username", name)
    b.fill("#reg-display", "Carol")
    b.fill("#reg-email", f"{name}@example.org")
    b.fill("#reg-password", PASSWORD)
    b.click("#register-form button[type=submit]")
    msg = b.text_of("#messages .message.error", "409")
    assert "username_taken" in msg


def test_a_live_group_refresh_keeps_the_member_being_typed(stack, browsers):
    """A change to the group shown (here a rename from another session,
    which reaches the leader's user channel) re-renders its detail; what
    the leader is typing into the add-member form stays there, focused (it
    used to be wiped, which a busy machine turned into a submitted empty
    username)."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    lead, other = f"lead{tag}", f"other{tag}"
    api = {n: Client(edge).register_login(n) for n in (lead, other)}
    r = api[lead].req("POST", "/groups", {"name": f"Keep {tag}"})
    assert r.status_code == 201, r.text
    gid = r.json()["group"]["id"]
    r = api[lead].req("POST", f"/groups/{gid}/members",
                      {"user": other, "role": "member"})
    assert r.status_code == 201, r.text

    b = browsers("leader")
    b.open("/")
    b.login(lead)
    b.live()
    b.click('#nav a[data-view="groups"]')
    b.click(f'#group-list li[data-group-id="{gid}"] button')
    b.text_of(f'#group-detail li[data-member="{other}"]', other)
    b.choose("#member-role", "leader")
    b.fill("#member-user", f"half{tag}")

    r = api[lead].req("PATCH", f"/groups/{gid}", {"name": f"Kept {tag}"})
    assert r.status_code == 200, r.text
    b.text_of("#group-detail h3", f"Kept {tag}")
    assert b.find("#member-user").get_attribute("value") == f"half{tag}"
    assert b.find("#member-role").get_attribute("value") == "leader"
    assert b.d.execute_script(
        "return document.activeElement && document.activeElement.id") \
        == "member-user"


def test_groups_create_add_and_remove_a_member(browsers):
    tag = uuid.uuid4().hex[:8]
    b = browsers("leader")
    b.open("/")
    member = f"dave{tag}"
    b.register(member)
    b.logout()
    b.register(f"erin{tag}")
    b.click('#nav a[data-view="groups"]')
    b.fill("#group-name", f"Team {tag}")
    b.click("#group-form button[type=submit]")
    b.text_of("#group-list li", f"Team {tag}")
    b.text_of("#group-detail h3", f"Team {tag}")
    b.text_of("#group-detail .members li", f"erin{tag} (leader)")

    # an unknown account: the API's 404 is shown
    b.fill("#member-user", f"nobody{tag}")
    b.click("#group-detail form button[type=submit]")
    b.text_of("#messages .message.error", "404")

    b.fill("#member-user", member)
    b.click("#group-detail form button[type=submit]")
    b.text_of(f'#group-detail li[data-member="{member}"]',
              f"{member} (member)")
    b.d.execute_script("window.confirm = () => true;")
    b.click(f'#group-detail li[data-member="{member}"] button')
    b.wait("the member to go", lambda: not b.d.find_elements(
        By.CSS_SELECTOR, f'#group-detail li[data-member="{member}"]'))
    b.text_of("#messages .message.info", f"Removed {member}")


def test_group_calendar_picker_create_and_live_update(stack, browsers):
    """Group calendars: alice leads a group (made through the API) and
    creates an event in its calendar through the picker and the dialog;
    bob, added to the group while his page is open, gets the group in his
    picker without a reload, reads its calendar (creation offered to
    leaders only) and sees alice's event appear live over the group's
    channel; promoted to leader, he may create.  carol, no member, never
    gets the group in her picker (in the same browser alice used)."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name, carol_name = (f"alice{tag}", f"bob{tag}",
                                        f"carol{tag}")
    team, title = f"Team {tag}", f"Retro {tag}"

    api = {n: Client(edge).register_login(n)
           for n in (alice_name, bob_name, carol_name)}
    r = api[alice_name].req("POST", "/groups", {"name": team})
    assert r.status_code == 201, r.text
    gid = r.json()["group"]["id"]
    cal = f"g:{gid}"
    r = api[carol_name].req("POST", "/groups", {"name": f"Other {tag}"})
    assert r.status_code == 201, r.text
    other_cal = f"g:{r.json()['group']['id']}"

    # Alice opens her group's calendar from the groups view (bob uses the
    # picker below): she leads it, so may create.
    alice = browsers("alice")
    alice.open("/")
    alice.login(alice_name)
    alice.live()
    alice.text_of(f'#cal-picker option[value="{cal}"]', team)
    alice.click('#nav a[data-view="groups"]')
    alice.click(f'#group-list li[data-group-id="{gid}"] button')
    alice.text_of("#group-detail h3", team)
    # no description given: none shown (not "null")
    assert "null" not in alice.find("#group-detail").text
    alice.screenshot("group")
    alice.click("#group-detail .show-calendar")
    alice.visible(f'#cal-grid[data-calendar="{cal}"]')
    assert alice.find("#cal-picker").get_attribute("value") == cal
    alice.wait("the group's channel", lambda: f"group/{gid}" in
               alice.channels())
    alice.visible("#cal-new")
    assert not alice.find("#cal-note").is_displayed()

    # Bob's page is open before he is a member: no group in his picker.
    bob = browsers("bob")
    bob.open("/")
    bob.login(bob_name)
    bob.live()
    bob.visible('#cal-grid[data-calendar="%s"]' % bob_name)
    assert cal not in bob.options("#cal-picker")

    # Added (through the API): his user channel says so, the picker follows.
    r = api[alice_name].req("POST", f"/groups/{gid}/members",
                            {"user": bob_name, "role": "member"})
    assert r.status_code == 201, r.text
    bob.text_of(f'#cal-picker option[value="{cal}"]', team)
    bob.choose("#cal-picker", cal)
    bob.visible(f'#cal-grid[data-calendar="{cal}"]')
    bob.wait("the group's channel", lambda: f"group/{gid}" in
             bob.channels())
    bob.live()
    # A member reads the calendar; only leaders are offered creation.
    note = bob.text_of("#cal-note", "Only the leaders")
    assert team in note
    assert not bob.find("#cal-new").is_displayed()
    assert not bob.d.find_elements(By.CSS_SELECTOR, "#cal-grid .chip")

    # Alice creates in the group calendar through the dialog.
    day = alice.today()
    alice.click("#cal-new")
    alice.visible("#event-dialog[open]")
    alice.text_of("#event-dialog-title", f"New event in “{team}”")
    alice.fill("#ev-title", title)
    alice.set_value("#ev-start", f"{day}T10:00")
    alice.set_value("#ev-end", f"{day}T11:00")
    alice.click("#ev-save")
    alice.text_of("#messages .message.info",
                  f"Saved “{title}” in “{team}”")
    alice.text_of(f'#cal-grid[data-calendar="{cal}"] .chip.in-group', title)
    event_id = alice.js(
        "return [...document.querySelectorAll('#cal-grid .chip')]"
        "  .find((e) => e.textContent.includes(arguments[0]))"
        "  .dataset.eventId;", title)
    # It is in the group's calendar, not alice's.
    r = api[bob_name].req("GET", f"/calendars/{cal}/events/{event_id}")
    assert r.status_code == 200, r.text
    assert r.json()["event"]["calendar"] == cal

    # Bob did nothing: the group channel's notification refreshed his view.
    in_grid = f'.chip[data-event-id="{event_id}"]'
    chip = f'#cal-grid[data-calendar="{cal}"] {in_grid}'
    bob.text_of(chip, title)
    bob.screenshot("group-calendar")
    bob.click(chip)
    bob.visible("#event-dialog[open]")
    bob.text_of("#ev-readonly", "Only the leaders")
    assert not bob.find("#ev-save").is_displayed()
    assert bob.find("#ev-title").get_attribute("disabled") is not None
    bob.click("#ev-cancel")
    bob.wait("the dialog to close", lambda: bob.find(
        "#event-dialog").get_attribute("open") is None)

    # His own calendar does not have it (he is not invited); the month
    # view of the group's has.
    bob.choose("#cal-picker", bob_name)
    bob.visible(f'#cal-grid[data-calendar="{bob_name}"]')
    assert not bob.d.find_elements(By.CSS_SELECTOR, f"#cal-grid {in_grid}")
    bob.wait("the group's channel to close", lambda: f"group/{gid}" not in
             bob.channels())
    bob.choose("#cal-picker", cal)
    bob.click("#cal-month")
    bob.text_of(f'#cal-grid.month[data-calendar="{cal}"] {in_grid}', title)

    # Promoted to leader (through the API): creation is offered live.
    r = api[alice_name].req("PATCH", f"/groups/{gid}/members/{bob_name}",
                            {"role": "leader"})
    assert r.status_code == 200, r.text
    bob.visible("#cal-new")
    assert not bob.find("#cal-note").is_displayed()

    # carol, in the browser alice leaves: her own group, never alice's.
    alice.logout()
    alice.login(carol_name)
    alice.text_of(f'#cal-picker option[value="{other_cal}"]', f"Other {tag}")
    assert cal not in alice.options("#cal-picker")
    assert alice.find("#cal-picker").get_attribute("value") == carol_name
    r = api[carol_name].req("GET", f"/calendars/{cal}/events?"
                            "from=2026-01-01T00:00:00Z&"
                            "to=2026-02-01T00:00:00Z")
    assert r.status_code == 404, r.text

    for b in (alice, bob):
        assert_clean_console(b)


# Holds answers of the page's own REST calls (installed in the page with
# execute_script, after the app loaded: api.js looks `fetch` up at every
# call).  While armed, GETs whose URL matches `pattern` (up to `limit` of
# them) are sent to the server at once — their answer is read in full,
# without the page's AbortSignal, as if already on the wire — and handed
# to the page only on release(): an answer that arrives after the user
# logged out, whatever the client did to cancel it.  `aborted` records
# whether the page had aborted the request by then.  `inflight` counts
# the page's requests until their body is read (Holder.idle()); the
# page's WebSockets are kept in window.__sockets.
HOLD_JS = """
const real = window.fetch;
const hold = window.__hold = {pattern: null, limit: 0, held: [],
    inflight: 0, seen: []};
const done = (resp, read) => {
    resp.text = async () => {
        try {
            return await read();
        } finally {
            hold.inflight -= 1;
        }
    };
    return resp;
};
window.fetch = async function (input, init = {}) {
    const url = typeof input === 'string' ? input : input.url;
    const re = hold.pattern && new RegExp(hold.pattern);
    hold.inflight += 1;
    hold.seen.push(url);
    if (!re || (init.method || 'GET') !== 'GET' || !re.test(url) ||
        hold.held.length >= hold.limit) {
        let resp;
        try {
            resp = await real.call(window, input, init);
        } catch (e) {
            hold.inflight -= 1;
            throw e;
        }
        return done(resp, resp.text.bind(resp));
    }
    const entry = {url, ready: false, delivered: false, aborted: null};
    hold.held.push(entry);
    const resp = await real.call(window, input, {...init, signal: null});
    const body = await resp.text();
    entry.ready = true;
    await new Promise((resolve) => { entry.release = resolve; });
    entry.aborted = !!(init.signal && init.signal.aborted);
    entry.delivered = true;
    // Read at once: what the page does with the answer then runs in
    // microtasks only, all done before the next task (see release()).
    return done(new Response(body, {status: resp.status,
        statusText: resp.statusText, headers: resp.headers}),
    async () => body);
};
const RealWebSocket = window.WebSocket;
window.__sockets = [];
window.WebSocket = function (url, protocols) {
    const ws = new RealWebSocket(url, protocols);
    window.__sockets.push(ws);
    return ws;
};
window.WebSocket.prototype = RealWebSocket.prototype;
"""


class Holder:
    """HOLD_JS in one page."""

    def __init__(self, browser):
        self.b = browser
        browser.js(HOLD_JS)

    def arm(self, pattern, limit):
        self.b.js("Object.assign(window.__hold, {pattern: arguments[0],"
                  " limit: arguments[1], held: []});", pattern, limit)

    def disarm(self):
        self.b.js("window.__hold.pattern = null;")

    def held(self):
        return self.b.js("return window.__hold.held.map((e) => ({url: e.url,"
                         " ready: e.ready, delivered: e.delivered,"
                         " aborted: e.aborted}));")

    def wait_held(self, n):
        """Until n requests are held with their answers read."""
        self.b.wait(f"{n} held answers", lambda: (
            len(h := self.held()) == n and all(e["ready"] for e in h)))

    def release(self, pattern=""):
        """Hands the held answers whose URL matches to the page and
        returns after the page dealt with them: the answer resolves the
        page's fetch() and everything that follows (parsing, rendering,
        showing an error) are promise reactions, run before the next
        task; so a task queued after the release sees their outcome."""
        self.b.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const re = new RegExp(arguments[0]);"
            "window.__hold.held.filter((e) => re.test(e.url) && e.release)"
            "  .forEach((e) => e.release());"
            "setTimeout(() => setTimeout(done, 0), 0);", pattern)

    def resynced(self):
        """Returns once the page has caught up with /changes since its
        tokens (what it does 150 ms after its socket opens) and is idle:
        a write made before that catch-up would be seen by it and by the
        notification's reload, two reloads where a test expects one."""
        self.b.wait("the socket's first catch-up", lambda: any(
            "/api/v1/changes?" in u and "since=" in u
            for u in self.b.js("return window.__hold.seen")))
        self.idle()

    def idle(self):
        """Returns once no request of the page is in flight (answered and
        read).  Seen between two tasks, that is final for a chain of
        requests: the page makes each next one in the promise reactions
        of the answer before, which all ran by then."""
        self.b.wait("no request in flight", lambda: self.b.d
                    .execute_async_script(
                        "const done = arguments[arguments.length - 1];"
                        "setTimeout(() => done(window.__hold.inflight), 0);"
                        ) == 0)


def rsvp_on_shard(agents, calendar, event_id, user, response):
    """user answers calendar's event directly on its events shard: no
    edge, so no notification at all.  calendar: a username from "a" to
    "m" (events_am's range, "" .. "n")."""
    st, ans = shard_op(agents, "events_am", True, "event.rsvp",
                       {"calendar": calendar, "id": event_id,
                        "response": response},
                       actor={"user": user, "role": "user",
                              "calendar_role": "none"})
    assert st == 200, ans


def test_answers_of_an_ended_session_are_never_shown(stack, browsers):
    """REST answers still in flight when the user logs out are dropped:
    a notification's reload answered after the logout neither renders nor
    fails, and alice's first load answered after she logged out and bob
    logged in in the same tab never shows alice's calendar, invitations or
    groups to bob.  The page aborts those requests at the logout; the
    answers are delivered anyway (held in the page, Holder) to prove that
    the client drops an answer of an ended session by itself."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name, carol_name = (f"alice{tag}", f"bob{tag}",
                                        f"carol{tag}")
    api = {n: Client(edge).register_login(n)
           for n in (alice_name, bob_name, carol_name)}

    b = browsers("shared")
    b.open("/")
    b.visible("#login-form")
    hold = Holder(b)
    start = b.js("const d = new Date(); d.setHours(10, 0, 0, 0);"
                 "return d.toISOString();")
    end = b.js("const d = new Date(); d.setHours(11, 0, 0, 0);"
               "return d.toISOString();")

    def event(owner, title, participants=()):
        r = api[owner].req("POST", f"/calendars/{owner}/events",
                           {"title": title, "start": start, "end": end,
                            "time_zone": "UTC",
                            "participants": list(participants)})
        assert r.status_code == 201, r.text

    def group(owner, name):
        r = api[owner].req("POST", "/groups", {"name": name})
        assert r.status_code == 201, r.text
        return f"g:{r.json()['group']['id']}"

    secret, later = f"Alice secret {tag}", f"Alice later {tag}"
    invite, bobs = f"Carol invites {tag}", f"Bob own {tag}"
    event(alice_name, secret)
    event(carol_name, invite, [alice_name])
    alice_cal = group(alice_name, f"Alice team {tag}")
    event(bob_name, bobs)
    bob_cal = group(bob_name, f"Bob team {tag}")

    def text(css):
        """textContent of every match (hidden views included)."""
        return b.js("return [...document.querySelectorAll(arguments[0])]"
                    "  .map((e) => e.textContent).join('\\n');", css)

    def alice_visible():
        """What of alice's the page shows, anywhere."""
        page = b.js("return document.body.textContent;")
        shown = [w for w in (secret, later, invite, f"Alice team {tag}",
                             alice_name) if w in page]
        if alice_cal in b.options("#cal-picker"):
            shown.append(alice_cal)
        return shown

    def clean():
        """No error message, no script error in the console."""
        errors = text("#messages .message.error, "
                      "#event-errors .message.error")
        assert not errors, errors
        assert_clean_console(b)

    # Alice's page, all of it: what must not leak below is really hers.
    b.login(alice_name)
    b.live()
    b.text_of("#cal-grid .chip.own", secret)
    b.text_of("#invitation-count", "1")
    b.text_of(f'#cal-picker option[value="{alice_cal}"]', f"Alice team {tag}")

    # 1. A notification's reload in flight at the logout: a new event
    # (made through the API) makes the page reload its calendar; the
    # answer comes after the logout.
    hold.arm(r"/api/v1/agenda\?", 1)
    event(alice_name, later)
    hold.wait_held(1)
    b.logout()
    hold.release()
    hold.idle()
    assert [e["delivered"] for e in hold.held()] == [True]
    b.visible("#login-form")
    assert not b.find("#whoami").text
    assert alice_visible() == [], alice_visible()
    clean()
    assert hold.held()[0]["aborted"], "the logout aborts what is in flight"

    # 2. Alice's first load in flight when she logs out and bob logs in.
    hold.arm(r"/api/v1/(agenda|invitations|groups)\b", 3)
    b.login(alice_name)
    hold.wait_held(3)
    b.live()
    b.logout()
    hold.disarm()
    b.login(bob_name)
    b.text_of("#cal-grid .chip.own", bobs)
    b.text_of(f'#cal-picker option[value="{bob_cal}"]', f"Bob team {tag}")
    b.wait("bob's invitations", lambda: "Nothing waiting for you." in
           text("#inv-pending"))
    b.live()
    hold.release()
    hold.idle()
    assert all(e["delivered"] for e in hold.held()), hold.held()
    assert b.find("#whoami").text.endswith(f"({bob_name})")
    assert alice_visible() == [], alice_visible()
    assert b.find("#invitation-count").get_attribute("hidden") is not None
    assert b.js("return document.getElementById('cal-grid')"
                ".dataset.calendar;") == bob_name
    assert bobs in text("#cal-grid")
    assert f"Bob team {tag}" in text("#group-list")
    assert b.channels() == [f"user/{bob_name}"]
    clean()
    assert all(e["aborted"] for e in hold.held()), hold.held()

    # Bob's page keeps working: his groups view, then his calendar.
    b.click('#nav a[data-view="groups"]')
    b.text_of("#group-list li", f"Bob team {tag}")
    assert f"Alice team {tag}" not in text("#group-list")
    b.screenshot("after-stale-answers")


def test_a_change_during_a_reload_is_not_skipped(stack, browsers):
    """A reload moves the /changes sync tokens before it loads, never
    after: bob answers alice's invitation directly on the events shard (no
    notification) while her page's reload, started by a notification, waits
    for its calendar; the answer lies after the tokens, so once her socket
    reconnects /changes tells it and the page shows it.  (Moved after the
    load, the tokens would pass it without the page ever loading it: under
    CPU load that lost the answer of the next test when nginx restarted
    under such a reload.)"""
    agents, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name = f"alice{tag}", f"bob{tag}"
    api = {n: Client(edge).register_login(n) for n in (alice_name, bob_name)}

    b = browsers("reload")
    b.open("/")
    b.visible("#login-form")
    hold = Holder(b)
    b.login(alice_name)
    b.live()
    b.visible(f'#cal-grid[data-calendar="{alice_name}"]')
    hold.resynced()
    start = b.js("const d = new Date(); d.setHours(16, 0, 0, 0);"
                 "return d.toISOString();")
    end = b.js("const d = new Date(); d.setHours(17, 0, 0, 0);"
               "return d.toISOString();")

    # Her new event (through the API) makes the page reload its calendar;
    # the calendar's answer waits while bob answers.
    hold.arm(r"/api/v1/agenda\?", 1)
    r = api[alice_name].req("POST", f"/calendars/{alice_name}/events",
                            {"title": f"Review {tag}", "start": start,
                             "end": end, "time_zone": "UTC",
                             "participants": [bob_name]})
    assert r.status_code == 201, r.text
    event_id = r.json()["event"]["id"]
    hold.wait_held(1)
    rsvp_on_shard(agents, alice_name, event_id, bob_name, "tentative")
    hold.release()
    hold.idle()
    chip = f'#cal-grid .chip[data-event-id="{event_id}"]'
    b.text_of(chip, f"{bob_name}: not answered")

    # Her socket drops (closed in the page) and reconnects: the resync
    # asks /changes since the tokens.
    b.js("window.__sockets.forEach((ws) => ws.close());")
    b.text_of(chip, f"{bob_name}: tentative")
    b.live()
    assert_clean_console(b, csp=False)


def open_sockets(b, part=""):
    """The page's WebSockets (Holder) not closed nor closing whose URL
    contains part."""
    return b.js("return window.__sockets.filter((ws) => ws.readyState <= 1"
                "  && ws.url.includes(arguments[0])).length;", part)


def test_switching_back_to_a_group_opens_one_socket(stack, browsers):
    """Group A, then "My calendar", then A again, all before A's first
    /changes answers (held): only the last switch opens A's socket.  Both
    calls for A used to pass the check after their await (the group shown
    was A again), and the socket of the first, no longer the page's, stayed
    open through the logout for good."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name = f"alice{tag}"
    api = Client(edge).register_login(alice_name)
    r = api.req("POST", "/groups", {"name": f"Switch {tag}"})
    assert r.status_code == 201, r.text
    gid = r.json()["group"]["id"]
    cal = f"g:{gid}"
    channel = f"channel=group%2F{gid}"

    b = browsers("switch")
    b.open("/")
    b.visible("#login-form")
    hold = Holder(b)
    b.login(alice_name)
    b.live()
    b.text_of(f'#cal-picker option[value="{cal}"]', f"Switch {tag}")
    hold.idle()

    hold.arm(r"/api/v1/changes\?target=calendar%3Ag%3A", 2)
    b.choose("#cal-picker", cal)
    hold.wait_held(1)
    b.choose("#cal-picker", alice_name)
    b.choose("#cal-picker", cal)
    hold.wait_held(2)
    hold.release()
    assert open_sockets(b, channel) == 1
    hold.idle()
    b.wait("the group's channel", lambda: f"group/{gid}" in b.channels())
    b.live()
    assert open_sockets(b, channel) == 1

    # Logged out: nothing left open, and nothing opened again later (the
    # backoff's first retries come within 3 s).
    b.logout()
    assert open_sockets(b) == 0
    made = b.js("return window.__sockets.length;")
    time.sleep(3)
    assert b.js("return window.__sockets.length;") == made
    assert open_sockets(b) == 0


def page_and_values(b) -> str:
    """Everything the page holds as text: its text and every control's
    value (which textContent leaves out)."""
    return b.js("return [document.body.textContent, ...[...document"
                "  .querySelectorAll('input, textarea, select')]"
                "  .map((e) => e.value)].join('\\n');")


def change_password(client, old, new):
    """Through the API: every token issued before, the page's included,
    is refused from then on.  client keeps the new token."""
    r = client.req("POST", "/me/password",
                   {"current_password": old, "new_password": new})
    assert r.status_code == 200, r.text
    client.token = r.json()["access_token"]


def test_an_edit_survives_the_end_of_its_session(stack, browsers):
    """The token dies under an open, changed event dialog (alice's
    password changed elsewhere): Save is 401, the page logs out saying so,
    and keeps her edits in memory only; when she logs in again the dialog
    is back with them and saving works.  Then a new event typed when the
    session ends again, and bob logs in in the same tab: no dialog, and
    nothing of her draft anywhere in the page — not for alice either,
    after him.  Every GET of the page is held meanwhile, so the end comes
    from the Save (the password change's notification and socket close
    would end it on their own, see the next test)."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name = f"alice{tag}", f"bob{tag}"
    api = {n: Client(edge).register_login(n) for n in (alice_name, bob_name)}
    pw2, pw3 = f"{PASSWORD} 2", f"{PASSWORD} 3"

    b = browsers("draft")
    b.open("/")
    b.visible("#login-form")
    hold = Holder(b)
    start = b.js("const d = new Date(); d.setHours(13, 0, 0, 0);"
                 "return d.toISOString();")
    end = b.js("const d = new Date(); d.setHours(14, 0, 0, 0);"
               "return d.toISOString();")
    title = f"Budget {tag}"
    r = api[alice_name].req("POST", f"/calendars/{alice_name}/events",
                            {"title": title, "start": start, "end": end,
                             "time_zone": "UTC"})
    assert r.status_code == 201, r.text
    event_id = r.json()["event"]["id"]

    def login(user, password):
        b.fill("#login-username", user)
        b.fill("#login-password", password)
        b.click("#login-form button[type=submit]")
        b.text_of("#whoami", f"({user})")

    def ended_by_save(secret):
        """The page's GETs held, the password changed, Save: logged
        out with the message, nothing of secret in the page or in the
        tab's storage."""
        hold.arm(r"/api/v1/", 100)
        change_password(api[alice_name], *passwords.pop(0))
        b.click("#ev-save")
        b.text_of("#messages .message.info", "Your session ended")
        b.visible("#login-form")
        assert b.find("#event-dialog").get_attribute("open") is None
        assert secret not in page_and_values(b)
        assert secret not in b.js(
            "return JSON.stringify([sessionStorage, localStorage]);")
        hold.disarm()
        hold.release()
        hold.idle()

    passwords = [(PASSWORD, pw2), (pw2, pw3)]

    # 1. Editing her event; she logs in again.
    login(alice_name, PASSWORD)
    b.live()
    b.click(f'#cal-grid .chip[data-event-id="{event_id}"]')
    b.visible("#event-dialog[open]")
    b.wait("the event in the dialog", lambda: b.find(
        "#ev-title").get_attribute("value") == title)
    edited, notes = f"Budget v2 {tag}", f"Figures for Q3 {tag}"
    b.fill("#ev-title", edited)
    b.fill("#ev-description", notes)
    ended_by_save(notes)
    assert "comes back when you do" in b.text_of("#messages .message.info",
                                                 "Your session ended")
    login(alice_name, pw2)
    b.visible("#event-dialog[open]")
    assert b.find("#ev-title").get_attribute("value") == edited
    assert b.find("#ev-description").get_attribute("value") == notes
    b.text_of("#event-errors .message.info", "save again")
    b.click("#ev-save")
    b.text_of("#messages .message.info", f"Saved “{edited}”")
    r = api[alice_name].req("GET", f"/calendars/{alice_name}/events/"
                            f"{event_id}")
    assert r.status_code == 200, r.text
    assert (r.json()["event"]["title"],
            r.json()["event"]["description"]) == (edited, notes)

    # 2. A new event; bob logs in in her tab, then she does.
    b.live()
    b.click("#cal-new")
    b.visible("#event-dialog[open]")
    secret = f"Private {tag}"
    b.fill("#ev-title", secret)
    b.fill("#ev-description", f"{secret} details")
    ended_by_save(secret)
    login(bob_name, PASSWORD)
    b.live()
    hold.idle()
    assert b.find("#event-dialog").get_attribute("open") is None
    assert secret not in page_and_values(b)
    b.logout()
    login(alice_name, pw3)
    b.live()
    hold.idle()
    assert b.find("#event-dialog").get_attribute("open") is None
    assert secret not in page_and_values(b)


def test_a_revoked_token_ends_the_session_through_its_socket(stack,
                                                            browsers):
    """The server closes the user's socket when the token is revoked (a
    password change; at its expiry likewise), and the browser never shows
    the page the 401 of the next handshake.  The page checks the session
    when a socket closes: logged out with the message within seconds, and
    no WebSocket tried after.  The reload that the password change's
    notification starts is held: only the socket tells, as at an expiry,
    which sends no notification."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name = f"alice{tag}"
    api = Client(edge).register_login(alice_name)

    b = browsers("revoked")
    b.open("/")
    b.visible("#login-form")
    hold = Holder(b)
    b.login(alice_name)
    b.live()
    hold.idle()
    hold.arm(r"/api/v1/changes\?", 100)
    change_password(api, PASSWORD, f"{PASSWORD} 2")
    b.text_of("#messages .message.info", "Your session ended", timeout=10)
    b.visible("#login-form")
    assert open_sockets(b) == 0
    made = b.js("return window.__sockets.length;")
    time.sleep(3)       # the first retries come within 3 s
    assert b.js("return window.__sockets.length;") == made
    hold.disarm()
    hold.release()
    hold.idle()
    assert not b.find("#whoami").text


# The page's WebSockets fail at once while window.__wsRefuse is set (a
# handshake refused: the page sees the socket close without opening);
# window.__wsRefused counts them.  Installed after HOLD_JS.
REFUSE_WS_JS = """
const Inner = window.WebSocket;
window.__wsRefuse = true;
window.__wsRefused = 0;
window.WebSocket = function (url, protocols) {
    const ws = new Inner(url, protocols);
    if (window.__wsRefuse) {
        window.__wsRefused += 1;
        ws.close();
    }
    return ws;
};
window.WebSocket.prototype = Inner.prototype;
"""


def test_a_late_first_socket_resyncs(stack, browsers):
    """The user's socket whose first handshakes fail opens only after the
    page's first load: bob's invitation, committed in between, was told
    to no socket of alice's.  The first open resyncs through /changes like
    any reconnect, so her page shows it without a reload."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name = f"alice{tag}", f"bob{tag}"
    api = {n: Client(edge).register_login(n) for n in (alice_name, bob_name)}

    b = browsers("late")
    b.open("/")
    b.visible("#login-form")
    hold = Holder(b)
    b.js(REFUSE_WS_JS)
    b.login(alice_name)
    b.visible(f'#cal-grid[data-calendar="{alice_name}"]')
    b.wait("her invitations", lambda: "Nothing waiting for you." in b.js(
        "return document.getElementById('inv-pending').textContent;"))
    b.wait("a refused handshake", lambda: b.js(
        "return window.__wsRefused;") >= 1)
    hold.idle()
    assert b.channels() == []

    start = b.js("const d = new Date(); d.setHours(15, 0, 0, 0);"
                 "return d.toISOString();")
    end = b.js("const d = new Date(); d.setHours(16, 0, 0, 0);"
               "return d.toISOString();")
    r = api[bob_name].req("POST", f"/calendars/{bob_name}/events",
                          {"title": f"Lunch {tag}", "start": start,
                           "end": end, "time_zone": "UTC",
                           "participants": [alice_name]})
    assert r.status_code == 201, r.text
    b.js("window.__wsRefuse = false;")
    b.live()
    b.text_of("#invitation-count", "1")
    b.text_of("#cal-grid .chip", f"Lunch {tag}")


def test_an_all_day_conflict_is_shown_on_its_day(stack, browsers):
    """Conflicts with an all-day event come as dates ("2026-12-24"): in
    New York the refused save lists it on its own day, "(all day)" — not
    as the UTC midnight it is not, the evening before at 19:00."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name = f"alice{tag}"
    api = Client(edge).register_login(alice_name)
    r = api.req("POST", f"/calendars/{alice_name}/events",
                {"title": f"Holiday {tag}", "start": "2026-12-24",
                 "end": "2026-12-25", "all_day": True,
                 "time_zone": "America/New_York"})
    assert r.status_code == 201, r.text

    b = browsers("newyork")
    b.emulate_zone("America/New_York")
    b.open("/")
    assert b.js("return Intl.DateTimeFormat().resolvedOptions()"
                ".timeZone;") == "America/New_York"
    b.login(alice_name)
    b.live()
    b.click("#cal-new")
    b.visible("#event-dialog[open]")
    b.fill("#ev-title", f"Call {tag}")
    b.set_value("#ev-start", "2026-12-24T10:00")
    b.set_value("#ev-end", "2026-12-24T11:00")
    b.choose("#ev-conflicts", "reject")
    b.click("#ev-save")
    err = b.text_of("#event-errors .message.error", "409")
    assert "double_booked" in err
    # The page's own day format (the locale's): 24 Dec, local; not the
    # 23rd, where that UTC midnight falls in New York.
    fmt = ("return new Intl.DateTimeFormat(undefined, {weekday: 'short',"
           " day: 'numeric', month: 'short'}).format(%s);")
    day = b.js(fmt % "new Date(2026, 11, 24)")
    eve = b.js(fmt % "new Date('2026-12-24')")
    assert day != eve
    assert f"you {day} (all day)" in err, err
    assert eve not in err, err


# Loses the answer of the page's next write whose URL matches
# window.__lose.pattern: the request reaches the server, which applies it,
# and the page is told the network failed, as when a connection drops
# after sending.  window.__lose.keys: the Idempotency-Key of every write.
LOSE_JS = """
const real = window.fetch;
const lose = window.__lose = {pattern: null, keys: []};
window.fetch = async function (input, init = {}) {
    const url = typeof input === 'string' ? input : input.url;
    if ((init.method || 'GET') === 'GET') {
        return real.call(window, input, init);
    }
    lose.keys.push((init.headers || {})['Idempotency-Key'] || null);
    if (!lose.pattern || !new RegExp(lose.pattern).test(url)) {
        return real.call(window, input, init);
    }
    lose.pattern = null;
    await (await real.call(window, input, init)).text();
    throw new TypeError('Failed to fetch');
};
"""


def test_saving_again_after_a_lost_answer_makes_one_event(stack, browsers):
    """The answer to a create is lost; the dialog says the server could
    not be reached and the user saves again: the retry carries the same
    Idempotency-Key, so the server answers the first result and holds the
    event once (with a new key, as before, it made a second one)."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    name, title = f"carol{tag}", f"Once {tag}"
    api = Client(edge).register_login(name)

    b = browsers("lost")
    b.open("/")
    b.login(name)
    b.live()
    b.js(LOSE_JS)
    b.js("window.__lose.pattern = arguments[0];", "/events$")
    b.click("#cal-new")
    b.visible("#event-dialog[open]")
    b.fill("#ev-title", title)
    b.set_value("#ev-start", "2026-12-10T10:00")
    b.set_value("#ev-end", "2026-12-10T11:00")
    b.click("#ev-save")
    b.text_of("#event-errors .message.error", "Cannot reach the server")
    b.click("#ev-save")
    b.text_of("#messages .message.info", f"Saved “{title}”")
    keys = b.js("return window.__lose.keys;")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1], keys
    r = api.req("GET", f"/calendars/{name}/events?from=2026-12-08T00:00:00Z"
                       "&to=2026-12-12T00:00:00Z")
    assert r.status_code == 200, r.text
    assert [e["title"] for e in r.json()["events"]] == [title]
    # a write after it is another request: a key of its own
    b.click("#cal-new")
    b.visible("#event-dialog[open]")
    b.fill("#ev-title", f"{title} again")
    b.set_value("#ev-start", "2026-12-10T12:00")
    b.set_value("#ev-end", "2026-12-10T13:00")
    b.click("#ev-save")
    b.text_of("#messages .message.info", f"Saved “{title} again”")
    keys = b.js("return window.__lose.keys;")
    assert len(keys) == 3 and keys[2] and keys[2] != keys[0], keys
    assert_clean_console(b)


def test_an_all_day_event_of_a_zone_a_day_behind_shows_on_its_day(
        stack, browsers):
    """A browser in Kiritimati (UTC+14) shows the week holding Sunday D; an
    all-day event on D in Honolulu (UTC-10) begins at D 10:00Z, which is
    where that week ends in Kiritimati: the page asks the server for 26
    more hours on each side, so the event is on Sunday, not missing."""
    _, edge = stack
    tag = uuid.uuid4().hex[:8]
    name, title = f"dora{tag}", f"Far west {tag}"
    api = Client(edge).register_login(name)
    today = datetime.datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    sunday = today + datetime.timedelta(days=6 - today.weekday())
    r = api.req("POST", f"/calendars/{name}/events", {
        "title": title, "all_day": True, "start": sunday.isoformat(),
        "end": (sunday + datetime.timedelta(days=1)).isoformat(),
        "time_zone": "Pacific/Honolulu"})
    assert r.status_code == 201, r.text

    b = browsers("kiritimati")
    b.emulate_zone("Pacific/Kiritimati")
    b.open("/")
    b.login(name)
    b.live()
    assert b.today() == today.isoformat()
    b.text_of(f'#cal-grid [data-date="{sunday.isoformat()}"] .chip', title)
    assert_clean_console(b)


def test_reconnect_resyncs_what_no_notification_told(stack, browsers):
    """A change made while the socket is down reaches the page through
    /changes after the reconnect: bob answers directly on the events
    shard (no edge, so no notification at all) while nginx is stopped;
    when nginx is back, alice's page reconnects, asks /changes since its
    sync token and shows the answer.  Last test of the file: it restarts
    the shared nginx."""
    agents, edge = stack
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name = f"alice{tag}", f"bob{tag}"
    title = f"Resync {tag}"

    b = browsers("resync")
    b.open("/")
    b.register(bob_name)
    b.logout()
    b.register(alice_name)
    b.live()
    day = b.today()
    b.click("#cal-new")
    b.fill("#ev-title", title)
    b.set_value("#ev-start", f"{day}T14:00")
    b.set_value("#ev-end", f"{day}T15:00")
    b.fill("#ev-participants", bob_name)
    b.click("#ev-save")
    b.text_of("#cal-grid .chip.own", f"{bob_name}: not answered")
    event_id = b.js(
        "return [...document.querySelectorAll('#cal-grid .chip.own')]"
        "  .find((e) => e.textContent.includes(arguments[0]))"
        "  .dataset.eventId;", title)

    edge.stop()
    b.text_of("#live-status", "Offline")
    rsvp_on_shard(agents, alice_name, event_id, bob_name, "tentative")
    edge.start()
    b.text_of(f'#cal-grid .chip[data-event-id="{event_id}"]',
              f"{bob_name}: tentative", timeout=WAIT + 30)
    b.text_of("#live-status", "Live")
    b.screenshot("resynced")
