"""The Chinese interface: every page in zh-hans, the language switch, the catalogue."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import translation

from conversations.management.commands import check_translations
from conversations.models import Conversation, Message, ModelChoice, UserPreference
from conversations.rendering import errortext
from conversations.sharing import links
from tests.support.usage import record

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}

# Latin words a Chinese page may show: the brand, product and format names, keys,
# units, the test data (usernames, titles, model labels) and the language menu.
ALLOWED = {
    "chatweb",
    "Django",
    "English",
    "token",
    "Ctrl",
    "Shift",
    "Enter",
    "Tab",
    "Esc",
    "Mac",
    "CSV",
    "JSON",
    "json",
    "Markdown",
    "md",
    "zip",
    "PNG",
    "JPEG",
    "WebP",
    "GIF",
    "PDF",
    "Word",
    "MB",
    "ms",
    "UTC",
    "sim",
    "chat",
    "reasoning",
    "ming",
    "admin",
    "Trip",
    "plans",
    "Where",
    "should",
    "we",
    "go",
    "Try",
    "the",
    "coast",
    "print",
    "python",
    "hi",
    "Sim",
    "Chat",
    "Reasoner",
    "OSS",
    "Mini",
    # Product names in the empty chat's example prompts.
    "HTTPS",
    "Python",
}
# Attributes whose text a person reads or hears.
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "hx-confirm", "hx-prompt"}


@pytest.fixture(autouse=True)
def english_afterwards():
    """Leave English active: a request in Chinese activates it for the whole thread."""
    yield
    translation.activate("en")


class VisibleText(HTMLParser):
    """Collect the text of a page a reader sees or hears, without scripts and templates."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template", "code", "pre"):
            self.hidden += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.chunks.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template", "code", "pre") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.chunks.append(data.strip())


def visible(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.chunks


def english_leftovers(html: str) -> list[str]:
    """Return the visible chunks holding a Latin word outside the allow-list."""
    leftovers = []
    for chunk in visible(html):
        without_urls = re.sub(r"\S+://\S+|\S+@\S+|/\S*", " ", chunk)
        words = set(re.findall(r"[A-Za-z]{2,}", without_urls)) - ALLOWED
        if words:
            leftovers.append(chunk)
    return leftovers


@pytest.fixture
def chat_data(user, catalogue):
    conversation = Conversation.objects.create(owner=user, title="Trip plans")
    question = Message.objects.create(
        conversation=conversation, role="user", text="Where should we go?"
    )
    model = ModelChoice.objects.enabled().default()
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        text="Try the coast.\n\n```python\nprint('hi')\n```",
        model_name=model.upstream_id,
        reasoning_effort="high",
        status="cancelled",
        error="Stopped.",
        error_code="stopped",
        input_tokens=12,
        output_tokens=34,
    )
    link = links.create_link(conversation=conversation, visibility="public", expires="7")
    record(user, model, tokens=1_500)
    return conversation, link


def pages(conversation, link) -> list[str]:
    return [
        reverse("chat"),
        reverse("conversation", args=[conversation.pk]),
        reverse("usage"),
        reverse("search") + "?q=coast",
        reverse("search") + "?q=火星",
        reverse("archive"),
        reverse("shares"),
        reverse("share_conversation", args=[conversation.pk]),
        reverse("shared_transcript", args=[link.token]),
        "/no-such-page/",
    ]


def test_i18n_login_page_in_chinese():
    response = Client().get(reverse("login"), **ZH)

    assert "登录" in response.content.decode()
    assert english_leftovers(response.content.decode()) == []


def test_i18n_every_page_in_chinese(client, user, chat_data):
    client.force_login(user)

    leftovers = {
        path: english_leftovers(client.get(path, **ZH).content.decode())
        for path in pages(*chat_data)
    }

    assert {path: found for path, found in leftovers.items() if found} == {}


def test_i18n_admin_index_in_chinese(client, make_user):
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))

    html = client.get(reverse("admin:index"), **ZH).content.decode()

    assert "分享链接" in html
    assert english_leftovers(html) == []


def test_i18n_admin_field_labels_and_choices_in_chinese(client, make_user, catalogue):
    admin_user = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    model = ModelChoice.objects.enabled().default()
    record(admin_user, model, tokens=1_500, purpose="tool_round")

    form = client.get(
        reverse("admin:conversations_modelchoice_change", args=[model.pk]), **ZH
    ).content.decode()
    usage = client.get(reverse("admin:conversations_usagerecord_changelist"), **ZH)
    usage = usage.content.decode()

    for label in ("上游模型 ID", "联网搜索", "函数工具", "输入价格", "每百万 token。"):
        assert label in form
    for label in ("Upstream model id", "Web search", "Function tools", "Per million tokens."):
        assert label not in form
    for label in ("用途", "估算", "回答", "工具轮次", "标题"):
        assert label in usage
    for label in ("By purpose", "By estimated", "Tool round", "tool round"):
        assert label not in usage


def test_i18n_english_pages_unchanged(client, user, chat_data):
    client.force_login(user)

    html = client.get(reverse("conversation", args=[chat_data[0].pk])).content.decode()

    assert "New chat" in html and "Stopped." in html and "high effort" in html
    assert "Enter to send · Shift+Enter for a new line" in html
    assert "新建对话" not in html


def test_i18n_error_text_translates_stored_errors():
    with translation.override("zh-hans"):
        busy = errortext.error_text(
            "The model service is busy right now. Please try again in 3 seconds."
        )
        assert errortext.error_text("Stopped.") == "已停止。"
        assert busy == "模型服务当前繁忙，请在 3 秒后重试。"  # noqa: RUF001
    with translation.override("en"):
        assert errortext.error_text("Stopped.") == "Stopped."


def test_i18n_set_language_is_remembered_on_the_account(client, user):
    client.force_login(user)

    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})

    assert UserPreference.objects.get(user=user).language == "zh-hans"
    assert "新建对话" in client.get(reverse("chat")).content.decode()


def test_i18n_language_follows_the_user_to_a_new_device(user):
    UserPreference.objects.create(user=user, language="zh-hans")
    device = Client()  # an English browser with no language cookie

    device.post(reverse("login"), {"username": "ming", "password": "pw-for-tests-123"})
    response = device.get(reverse("chat"), HTTP_ACCEPT_LANGUAGE="en")

    assert "新建对话" in response.content.decode()
    assert response.cookies["django_language"].value == "zh-hans"


def test_i18n_anonymous_set_language_uses_the_cookie(client):
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/accounts/login/"})

    assert "登录" in client.get(reverse("login")).content.decode()


def test_i18n_javascript_catalogue_is_public():
    response = Client().get(reverse("javascript-catalog"), **ZH)

    assert response.status_code == 200
    assert '"Copied": "\\u5df2\\u590d\\u5236"' in response.content.decode()


def test_i18n_error_pages_render_without_a_request():
    from django.template.loader import render_to_string

    with translation.override("zh-hans"):
        pages = [
            render_to_string(name) for name in ("400.html", "403.html", "404.html", "500.html")
        ]

    assert [
        "地址不正确" in pages[0],
        "你无法打开此页面" in pages[1],
        "页面不存在" in pages[2],
        "出错了" in pages[3],
    ] == [True, True, True, True]
    assert not any(english_leftovers(html) for html in pages)


def test_i18n_catalogue_is_complete_and_fresh():
    call_command("check_translations", verbosity=0)


def test_i18n_check_fails_on_a_stale_catalogue(settings, tmp_path):
    po = tmp_path / "zh_Hans" / "LC_MESSAGES"
    po.mkdir(parents=True)
    for domain in ("django", "djangojs"):
        source = settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po"
        text = source.read_text(encoding="utf-8")
        (po / f"{domain}.po").write_text(
            text.replace('msgstr "已复制"', 'msgstr ""') + '\nmsgid "Gone"\nmsgstr "没了"\n',
            encoding="utf-8",
        )

    found = check_translations.problems(tmp_path)

    assert any("untranslated: 'Copied'" in line for line in found)
    assert any("no longer in the sources" in line and "Gone" in line for line in found)


def test_i18n_check_command_raises_when_incomplete(monkeypatch):
    monkeypatch.setattr(check_translations, "problems", lambda: ["django: untranslated: 'x'"])

    with pytest.raises(CommandError):
        call_command("check_translations")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_i18n_socket_speaks_the_browser_language(user, catalogue):
    from channels.testing import WebsocketCommunicator

    from chatweb.asgi import application
    from tests.support.chat import ORIGIN, receive_until, send, session_cookie

    cookie = await session_cookie(user)
    headers = [ORIGIN, (b"cookie", cookie), (b"accept-language", b"zh-CN,zh;q=0.9")]
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert (await socket.connect())[0]

    await send(socket, action="send", text="   ")
    frames = await receive_until(socket, lambda frame: "composer-error" in frame)

    assert "请先输入消息。" in frames[-1]
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_i18n_socket_uses_the_account_language(user, catalogue):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from chatweb.asgi import application
    from tests.support.chat import ORIGIN, receive_until, send

    @sync_to_async
    def sign_in() -> bytes:
        UserPreference.objects.create(user=user, language="zh-hans")
        device = Client()
        device.post(reverse("login"), {"username": "ming", "password": "pw-for-tests-123"})
        return f"sessionid={device.cookies['sessionid'].value}".encode()

    headers = [ORIGIN, (b"cookie", await sign_in()), (b"accept-language", b"en")]
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert (await socket.connect())[0]

    await send(socket, action="send", text="   ")
    frames = await receive_until(socket, lambda frame: "composer-error" in frame)

    assert "请先输入消息。" in frames[-1]
    await socket.disconnect()


def test_i18n_tool_rounds_message_counts_rounds_in_both_languages():
    one = "The model kept calling tools; stopped after 1 round."
    two = "The model kept calling tools; stopped after 2 rounds."
    with translation.override("en"):
        assert (errortext.error_text(one), errortext.error_text(two)) == (one, two)
    with translation.override("zh-hans"):
        assert "1" in errortext.error_text(one) and errortext.error_text(one) != one
        assert "2" in errortext.error_text(two) and errortext.error_text(two) != two
