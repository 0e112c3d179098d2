"""Every admin page opens: each model's list and a row's page, with a row of each to show.

The admin is one module per feature; a module left out of the package's imports would
drop its pages from the index without any other test noticing.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from conversations.assistants.library import record_version
from conversations.models import (
    Assistant,
    Conversation,
    DefaultQuota,
    GroupQuota,
    Message,
    ModelChoice,
    Quota,
    SharingPolicy,
)
from conversations.sharing import links
from conversations.usage.ledger import record_usage

# Every model this app's admin shows, by app label and model name (sso has its own).
EXPECTED = {
    "auth.user",
    "auth.group",
    "conversations.assistant",
    "conversations.modelchoice",
    "conversations.defaultquota",
    "conversations.usagerecord",
    "conversations.sharingpolicy",
    "conversations.sharelink",
    "conversations.reviewedconversation",
    "conversations.retainedtranscript",
    "conversations.transcriptaccess",
}


@pytest.fixture
def site_with_one_of_everything(settings, client, make_user, user):
    """A row for every admin page: a model, limits, usage, a link read once, a retained copy."""
    settings.RETAIN_DELETED_USER_CONVERSATIONS = True
    model = ModelChoice.objects.create(upstream_id="sim-chat", label="Sim Chat", is_default=True)
    team = Group.objects.create(name="Team")
    GroupQuota.objects.create(group=team, tokens_per_day=5_000)
    Quota.objects.create(user=user, tokens_per_day=1_000)
    DefaultQuota.objects.create(pk=1, tokens_per_day=2_000)
    SharingPolicy.load()
    helper = record_version(Assistant(owner=user, name="Planner", model=model))
    conversation = Conversation.objects.create(
        owner=user, title="Trip plans", model=model, assistant=helper
    )
    question = Message.objects.create(conversation=conversation, role="user", text="Where?")
    Message.objects.create(
        conversation=conversation, parent=question, role="assistant", text="The coast."
    )
    record_usage(
        user_id=user.pk,
        conversation_id=conversation.pk,
        message=None,
        model_choice=model,
        model_name="sim-chat",
        input_tokens=10,
        cached_tokens=0,
        output_tokens=20,
        reasoning_tokens=0,
        total_tokens=30,
        estimated=False,
    )
    link = links.create_link(conversation=conversation, visibility="team")
    client.force_login(make_user("reader"))
    client.get(reverse("shared_transcript", args=[link.token]))  # one audit row
    leaving = make_user("leaving")
    Conversation.objects.create(owner=leaving, title="Kept for review")
    leaving.delete()  # one retained transcript


def test_every_admin_page_opens_with_its_rows(admin_client, site_with_one_of_everything):
    index = admin_client.get(reverse("admin:index"))
    shown = {
        f"{app['app_label']}.{model['object_name'].lower()}": model
        for app in index.context["app_list"]
        for model in app["models"]
    }

    assert set(shown) >= EXPECTED
    for name in sorted(EXPECTED):
        listing = admin_client.get(shown[name]["admin_url"], follow=True)
        assert listing.status_code == 200, name
        changelist = listing.context.get("cl")
        if changelist is None:  # the sharing policy's list is its one row's page
            continue
        assert changelist.result_count >= 1, name
        row = changelist.result_list[0]
        app_label, model_name = name.split(".")
        change = reverse(f"admin:{app_label}_{model_name}_change", args=[row.pk])
        assert admin_client.get(change).status_code == 200, name
