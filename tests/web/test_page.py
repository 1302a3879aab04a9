"""The browser chat page (issue 17), in Debian's chromium, against the real server.

Each test starts the server with ``--ws-port 0``, opens the page it serves, and chats
with plain TCP peers: what the page shows is read from ``#log``'s ``div.line``
elements, exactly as the user reads them. Nothing sleeps: every wait is Playwright's
``expect`` (which polls until its deadline) or a peer's bounded read.
"""

from __future__ import annotations

import datetime
import re

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import Cutter, LinePeer, Server, Watch, plain_peer

TIME = r"\d\d:\d\d"


def join(page: Page, url: str, nick: str = "alice", password: str = "") -> None:
    page.goto(url)
    page.fill("#nick", nick)
    page.fill("#password", password)
    page.click("#join")
    expect(
        page.locator("#status"), page.locator("#login-error").text_content() or ""
    ).to_have_attribute("data-state", "connected")


def say(page: Page, text: str) -> None:
    page.fill("#say", text)
    page.press("#say", "Enter")


def line(page: Page, pattern: str) -> Locator:
    """The log's lines whose whole text matches ``pattern``."""
    return page.locator("#log div.line").filter(has_text=re.compile(f"^{pattern}$"))


def shown(page: Page, pattern: str) -> None:
    """Wait until the log has exactly one line matching ``pattern``."""
    expect(line(page, pattern)).to_have_count(1)


def test_login_and_chat_both_ways(server: Server, page: Page, peers: list[LinePeer]) -> None:
    page.goto(server.url)
    expect(page.locator("#nick")).to_be_focused()  # keyboard first: type, Enter
    page.keyboard.type("alice")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#say")).to_be_focused()
    expect(page.locator("#room")).to_have_text("lobby")
    shown(page, r"\[SUCCESS\] Connected to server at 127\.0\.0\.1:\d+")
    shown(page, r"\[INFO\] You are alice \(127\.0\.0\.1:\d+\) in #lobby; 1 online: alice")
    expect(page.locator("#online")).to_have_text("1")

    bob = plain_peer(peers, server.port, "bob")
    shown(page, r"\[INFO\] .*is now known as bob")
    expect(page.locator("#online")).to_have_text("2")
    bob.send("hello from nc")
    expect(line(page, rf"\[RECEIVED\] {TIME} <bob> hello from nc")).to_have_class(
        re.compile(r"\btag-received\b")
    )
    say(page, "hi bob")
    assert bob.expect("hi bob") == "<alice> hi bob"
    expect(line(page, rf"\[SENT\] {TIME} hi bob")).to_have_class(re.compile(r"\btag-sent\b"))
    expect(page.locator("#say")).to_have_value("")

    bob.send("/quit lunch")
    shown(page, r"\[INFO\] bob left #lobby: quit: lunch \(1 online\)")
    expect(page.locator("#online")).to_have_text("1")


def test_a_line_of_html_shows_as_text(
    server: Server, page: Page, peers: list[LinePeer], watch: Watch
) -> None:
    join(page, server.url)
    bob = plain_peer(peers, server.port, "bob")
    attacks = [
        "<img src=x onerror=alert(1)>",
        "<script>alert(2)</script>",
        '"><svg onload=alert(3)>',
        "&lt;b&gt;not bold&lt;/b&gt;",
    ]
    for attack in attacks:
        bob.send(attack)
    for attack in attacks:
        shown(page, rf"\[RECEIVED\] {TIME} <bob> {re.escape(attack)}")
    bob.send("/nick <b>x</b>")  # refused by the server; nothing to show here
    bob.send("/me <i>waves</i>")
    shown(page, rf"\[RECEIVED\] {TIME} \* bob <i>waves</i>")
    assert page.locator("#log img, #log script, #log svg, #log b, #log i").count() == 0
    assert watch.dialogs == []


def test_typing_is_not_disturbed_by_arriving_messages(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    join(page, server.url)
    bob = plain_peer(peers, server.port, "bob")
    page.locator("#say").press_sequentially("half typed line")
    page.evaluate("document.getElementById('say').setSelectionRange(5, 10)")
    for n in range(15):
        bob.send(f"busy {n}")
    shown(page, rf"\[RECEIVED\] {TIME} <bob> busy 14")
    state = page.evaluate(
        "(() => { const s = document.getElementById('say');"
        " return [s.value, s.selectionStart, s.selectionEnd, document.activeElement.id]; })()"
    )
    assert state == ["half typed line", 5, 10, "say"]
    page.keyboard.type("X")  # replaces the selection, as if nothing had happened
    expect(page.locator("#say")).to_have_value("half X line")


def test_log_follows_new_lines_only_from_the_bottom(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    page.set_viewport_size({"width": 800, "height": 400})
    join(page, server.url)
    bob = plain_peer(peers, server.port, "bob")
    say(page, "/help")
    say(page, "/help")  # more than a screenful
    bob.send("one")
    shown(page, rf"\[RECEIVED\] {TIME} <bob> one")
    at_bottom = "(() => { const l = document.getElementById('log');" \
        " return l.scrollHeight - l.scrollTop - l.clientHeight < 8; })()"  # fmt: skip
    assert page.evaluate(at_bottom)
    page.evaluate("document.getElementById('log').scrollTop = 0")  # reading back
    bob.send("two")
    shown(page, rf"\[RECEIVED\] {TIME} <bob> two")
    assert page.evaluate("document.getElementById('log').scrollTop") == 0


def test_up_and_down_recall_lines_and_keep_the_draft(server: Server, page: Page) -> None:
    join(page, server.url)
    for text in ("first", "second"):
        say(page, text)
        shown(page, rf"\[SENT\] {TIME} {text}")
    box = page.locator("#say")
    box.press_sequentially("draft")
    for key, value in [
        ("ArrowUp", "second"), ("ArrowUp", "first"), ("ArrowUp", "first"),
        ("ArrowDown", "second"), ("ArrowDown", "draft"), ("ArrowDown", "draft"),
    ]:  # fmt: skip
        box.press(key)
        expect(box).to_have_value(value)


def test_tab_completes_nicks_and_commands(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    join(page, server.url)
    plain_peer(peers, server.port, "carol")
    plain_peer(peers, server.port, "carmen")
    shown(page, r"\[INFO\] .*is now known as carmen")
    box = page.locator("#say")
    box.press_sequentially("hi car")
    box.press("Tab")
    first = box.input_value()
    assert first in ("hi carol", "hi carmen")
    box.press("Tab")  # again: the other one
    expect(box).to_have_value("hi carmen" if first == "hi carol" else "hi carol")
    box.press("Tab")
    expect(box).to_have_value(first)
    expect(box).to_be_focused()  # Tab completed instead of moving the focus

    box.fill("")
    box.press_sequentially("/ms")
    box.press("Tab")
    expect(box).to_have_value("/msg")
    box.press_sequentially(" carm")
    box.press("Tab")
    expect(box).to_have_value("/msg carmen")
    box.press_sequentially(" psst")
    box.press("Enter")
    shown(page, rf"\[SENT\] {TIME} \[PM to carmen\] psst")

    box.press_sequentially("zzz")  # nothing to complete: Tab moves on, as everywhere
    box.press("Tab")
    expect(page.locator("#send")).to_be_focused()
    expect(box).to_have_value("zzz")


def test_actions_private_messages_and_mentions(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    join(page, server.url)
    bob = plain_peer(peers, server.port, "bob")
    say(page, "/me waves")
    assert bob.expect("waves") == "* alice waves"
    shown(page, rf"\[SENT\] {TIME} \* alice waves")
    bob.send("/me dances")
    shown(page, rf"\[RECEIVED\] {TIME} \* bob dances")

    say(page, "/msg bob psst")
    assert bob.expect("psst") == "[PM from alice] psst"
    expect(line(page, rf"\[SENT\] {TIME} \[PM to bob\] psst")).to_have_class(
        re.compile(r"\bprivate\b")
    )
    bob.send("/msg alice yes?")
    got = line(page, rf"\[RECEIVED\] {TIME} \[PM from bob\] yes\?")
    expect(got).to_have_class(re.compile(r"\bprivate\b"))
    expect(got).to_have_class(re.compile(r"\bmention\b"))

    bob.send("look, alice: a mention")
    bob.send("malice is not one")
    expect(line(page, rf"\[RECEIVED\] {TIME} <bob> look, alice: a mention")).to_have_class(
        re.compile(r"\bmention\b")
    )
    plain = line(page, rf"\[RECEIVED\] {TIME} <bob> malice is not one")
    expect(plain).to_have_count(1)
    expect(plain).not_to_have_class(re.compile(r"\bmention\b"))


def test_history_is_dimmed_and_tagged(server: Server, page: Page, peers: list[LinePeer]) -> None:
    bob = plain_peer(peers, server.port, "bob")
    bob.send("said before alice came")
    bob.send("/who")  # answered once the line before it was handled
    bob.expect("online:")
    join(page, server.url)
    expect(line(page, rf"\[HISTORY\] {TIME} <bob> said before alice came")).to_have_class(
        re.compile(r"\btag-history\b")
    )


def test_history_command_shows_more_than_the_join_history(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    bob = plain_peer(peers, server.port, "bob")
    for n in range(25):  # more than the 20 a newcomer gets
        bob.send(f"old line {n}")
    bob.send("/who")  # answered once the lines before it were handled
    bob.expect("online:")
    join(page, server.url)
    shown(page, rf"\[HISTORY\] {TIME} <bob> old line 24")
    expect(line(page, rf"\[HISTORY\] {TIME} <bob> old line 4")).to_have_count(0)
    say(page, "/history 25")
    expect(line(page, rf"\[HISTORY\] {TIME} <bob> old line 0")).to_have_count(1)
    shown(page, r"\[INFO\] End of history: 25 messages of #lobby\.")
    say(page, "/history x")
    shown(page, r"\[ERROR\] usage: /history \[N\].*")


def test_commands_help_unknown_rooms_and_nick(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    join(page, server.url)
    say(page, "/help")
    shown(page, r"\[INFO\]   /msg NICK TEXT +send a private message to one person")
    say(page, "/frobnicate now")
    shown(page, r"\[ERROR\] unknown command /frobnicate: type /help for the list .*")
    say(page, "/join #games")
    expect(page.locator("#room")).to_have_text("games")
    shown(page, r"\[INFO\] You are now in #games: 1 online: alice")
    say(page, "/rooms")
    shown(page, r"\[INFO\] 2 rooms: .*#games \(1 online\).*")
    say(page, "/leave")
    expect(page.locator("#room")).to_have_text("lobby")
    say(page, "/nick alicia")
    shown(page, r"\[INFO\] alice is now known as alicia")
    expect(page.locator("#prompt")).to_have_text("alicia@#lobby")
    say(page, "/who")
    shown(page, r"\[INFO\] #lobby: 1 online: alicia \(127\.0\.0\.1:\d+\)")
    say(page, "/clear")
    expect(page.locator("#log div.line")).to_have_count(0)


def test_a_taken_nick_gets_the_next_free_one(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    plain_peer(peers, server.port, "alice")
    join(page, server.url, "alice")
    expect(page.locator("#prompt")).to_have_text("alice_2@#lobby")
    shown(page, r"\[ERROR\] the nickname 'alice' .*so you are 'alice_2'.*")


def test_the_start_form_checks_the_nickname(server: Server, page: Page) -> None:
    page.goto(server.url)
    page.click("#join")
    expect(page.locator("#login-error")).to_have_text("Enter a nickname.")
    page.fill("#nick", "two words")
    page.press("#nick", "Enter")
    expect(page.locator("#login-error")).to_contain_text("Cannot use that nickname")
    expect(page.locator("#nick")).to_be_focused()
    expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
    page.fill("#nick", "server")  # the server has the last word
    page.press("#nick", "Enter")
    expect(page.locator("#login-error")).to_contain_text("reserved")
    expect(page.locator("#nick")).to_be_focused()


@pytest.mark.parametrize("server_options", [("--password", "s3cret")])
def test_password_prompt(server: Server, page: Page) -> None:
    page.goto(server.url)
    page.fill("#nick", "alice")
    page.click("#join")
    error = page.locator("#login-error")
    expect(error).to_contain_text("password")
    expect(page.locator("#password")).to_be_focused()
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
    page.keyboard.type("s3cret")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#say")).to_be_focused()


def test_join_while_the_server_is_down(server: Server, page: Page) -> None:
    page.goto(server.url)
    server.stop()
    page.fill("#nick", "alice")
    page.click("#join")
    expect(page.locator("#login-error")).to_contain_text("Could not connect to 127.0.0.1:")
    expect(page.locator("#join")).to_be_enabled()
    server.start()
    page.click("#join")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def test_a_server_back_with_a_password_asks_for_it(
    server: Server, page: Page, peers: list[LinePeer]
) -> None:
    join(page, server.url)
    server.stop()
    shown(page, r"\[DISCONNECTED\] .*")
    say(page, "typed before the password")
    server.extra = ("--password", "s3cret")
    server.start()
    expect(page.locator("#login-error")).to_contain_text("password")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type("s3cret")
    page.keyboard.press("Enter")
    shown(page, r"\[RECONNECTED\] Back on .* you are alice in #lobby\.")
    expect(page.locator("#say")).to_be_focused()
    bob = LinePeer(server.port)
    peers.append(bob)
    bob.send("/pass s3cret")
    bob.send("/nick bob")
    bob.expect("is now known as bob")
    say(page, "sentinel")
    bob.expect("<alice> sentinel")
    assert sum("typed before the password" in text for text in bob.lines) == 1, bob.lines


def test_quit_leaves_for_good(server: Server, page: Page, peers: list[LinePeer]) -> None:
    join(page, server.url)
    bob = plain_peer(peers, server.port, "bob")
    say(page, "/quit off to lunch")
    assert "alice left" in bob.expect("quit: off to lunch")
    expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
    expect(page.locator("#banner")).to_contain_text("You left the chat")
    shown(page, r"\[INFO\] You left the chat\. Goodbye!")
    expect(line(page, r"\[DISCONNECTED\] .*")).to_have_count(0)  # no reconnecting
    say(page, "anyone?")
    shown(page, r"\[ERROR\] not sent: you left the chat .*")
    page.click("#again")  # "Join again": a new session
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(line(page, r"\[SUCCESS\] Connected to server at .*")).to_have_count(2)
    bob.expect("alice joined")


@pytest.mark.parametrize("goodbye", [False, True], ids=["SIGKILL", "SIGTERM"])
def test_reconnect_after_the_server_is_killed_and_restarted(
    server: Server, page: Page, peers: list[LinePeer], goodbye: bool
) -> None:
    join(page, server.url)
    if goodbye:
        server.stop()
        shown(
            page,
            r"\[DISCONNECTED\] The server closed the connection: The server is "
            r"shutting down\. Reconnect when it is back\. Reconnecting to .*",
        )
    else:
        server.kill()
    shown(page, r"\[DISCONNECTED\] .*Reconnecting to .*")
    expect(page.locator("#banner")).to_contain_text("reconnecting")
    say(page, "typed while away")
    shown(page, r"\[WAIT\] Not connected; will be sent once reconnected: typed while away")

    server.start()  # the same ports
    bob = plain_peer(peers, server.port, "bob")
    shown(page, r"\[RECONNECTED\] Back on .* you are alice in #lobby\.")
    shown(page, r"\[WARNING\] The server restarted.*")
    crashed = line(page, r"\[WARNING\] It went away without a goodbye.*")
    expect(crashed).to_have_count(0 if goodbye else 1)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#banner")).to_be_hidden()
    say(page, "sentinel")
    bob.expect("<alice> sentinel")
    # Live or in the history bob got on arrival: once.
    assert sum("typed while away" in text for text in bob.lines) == 1, bob.lines


def test_resume_after_a_cut_catches_up_and_resends(
    server: Server, cutter: Cutter, page: Page, peers: list[LinePeer]
) -> None:
    join(page, cutter.url)
    bob = plain_peer(peers, server.port, "bob")
    say(page, "before the cut")
    bob.expect("before the cut")
    cutter.blocked.set()
    cutter.cut()
    shown(page, r"\[DISCONNECTED\] .*")
    expect(page.locator("#status")).not_to_have_attribute("data-state", "connected")
    bob.send("said while alice was away")
    bob.send("and again")
    say(page, "typed while cut off")
    shown(page, r"\[WAIT\] .*typed while cut off")
    cutter.blocked.clear()
    shown(page, r"\[RECONNECTED\] Back on .* you are alice in #lobby\.")
    shown(page, r"\[INFO\] 2 messages you missed follow\.")
    shown(page, rf"\[HISTORY\] {TIME} <bob> and again")
    bob.expect("<alice> typed while cut off")
    say(page, "sentinel")
    bob.expect("<alice> sentinel")
    assert sum("typed while cut off" in text for text in bob.lines) == 1
    assert sum("before the cut" in text for text in bob.lines) == 1


def test_keepalive_notices_a_silent_network_and_online_reconnects_at_once(
    server: Server, cutter: Cutter, page: Page, peers: list[LinePeer]
) -> None:
    page.clock.install()  # the page's timers and Date.now() run only when told below
    join(page, cutter.url)
    bob = plain_peer(peers, server.port, "bob")
    shown(page, r"\[INFO\] .*is now known as bob")  # nothing more on its way to the page
    page.clock.pause_at(datetime.datetime.now() + datetime.timedelta(seconds=2))
    cutter.frozen.set()  # a pulled cable: nothing arrives, nothing says so
    page.clock.run_for(16_000)  # quiet for 15 s: the page pings
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    page.clock.run_for(16_000)  # 15 s more without an answer: dead
    shown(
        page,
        r"\[DISCONNECTED\] No answer from .* for 3\d s: the network or the server "
        r"is down\. Reconnecting to .*",
    )
    say(page, "typed while unplugged")
    shown(page, r"\[WAIT\] .*typed while unplugged")
    page.context.set_offline(True)
    cutter.frozen.clear()
    page.context.set_offline(False)  # "online": at once, though the page's time stands still
    shown(page, r"\[RECONNECTED\] Back on .* after \d\.\d s: you are alice in #lobby\.")
    assert bob.expect("typed while unplugged") == "<alice> typed while unplugged"
    assert not any("alice left" in text for text in bob.lines)  # resumed: replaced unseen


def test_phone_sized_screen(server: Server, page: Page, peers: list[LinePeer]) -> None:
    page.set_viewport_size({"width": 360, "height": 640})
    page.goto(server.url)
    no_sideways = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_sideways)
    page.fill("#nick", "alice_with_a_long_nickname")
    page.click("#join")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    bob = plain_peer(peers, server.port, "bob")
    bob.send("x" * 400)  # one long word
    bob.send("https://example.com/" + "a/" * 100)
    shown(page, rf"\[RECEIVED\] {TIME} <bob> https://.*")
    assert page.evaluate(no_sideways)
    assert page.evaluate("document.getElementById('log').scrollWidth <= "
                         "document.getElementById('log').clientWidth")  # fmt: skip
    for hook in ("#say", "#send", "#status"):
        box = page.locator(hook).bounding_box()
        assert box is not None
        assert box["x"] >= 0, hook
        assert box["x"] + box["width"] <= 360, hook
        assert box["y"] >= 0, hook
        assert box["y"] + box["height"] <= 640, hook


def _luminance(rgb: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(n) for n in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


TAGS = ["success", "info", "wait", "warning", "sent", "received", "error", "history",
        "disconnected", "reconnected"]  # fmt: skip


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_colour_schemes_are_readable(server: Server, page: Page, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    page.goto(server.url)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = _luminance(background) < 0.2
    assert dark == (scheme == "dark"), background
    # Every tag's colour, as a line of that tag draws it, against the background.
    colours = page.evaluate(
        """tags => tags.map(tag => {
            const div = document.createElement('div');
            div.className = 'line tag-' + tag;
            const span = document.createElement('span');
            span.className = 'tag';
            div.append(span);
            document.getElementById('log').append(div);
            return getComputedStyle(span).color;
        })""",
        TAGS,
    )
    for tag, colour in zip(TAGS, colours, strict=True):
        assert _contrast(colour, background) >= 4.5, (scheme, tag, colour, background)
    # The time, a private line, and a mention's text on its highlight.
    time_, private, mention, mention_bg = page.evaluate(
        """() => {
            const make = (cls, inner) => {
                const div = document.createElement('div');
                div.className = 'line tag-received ' + cls;
                const span = document.createElement('span');
                span.className = inner;
                div.append(span);
                document.getElementById('log').append(div);
                return [getComputedStyle(span).color, getComputedStyle(div).backgroundColor];
            };
            return [make('', 'time')[0], make('private', 'text')[0], ...make('mention', 'text')];
        }"""
    )
    assert _contrast(time_, background) >= 4.5
    assert _contrast(private, background) >= 4.5
    assert _contrast(mention, mention_bg) >= 4.5
