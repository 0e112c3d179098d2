"""Shared transcripts: links and snapshots, the transcript page, continuing, review, audit."""

from __future__ import annotations

import csv
import datetime
import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from conversations.attachments import images
from conversations.models import (
    Attachment,
    Conversation,
    Message,
    ModelChoice,
    RetainedTranscript,
    ShareLink,
    SharingPolicy,
    TranscriptAccess,
)
from conversations.sharing import continuing
from conversations.sharing import links as sharing
from tests.support.messages import say

REVIEW = reverse("admin:conversations_reviewedconversation_changelist")
AUDIT = reverse("admin:conversations_transcriptaccess_changelist")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def conversation(user) -> Conversation:
    conversation = Conversation.objects.create(owner=user, title="Trip plans")
    say(conversation, "Where should we go?", "Try the coast.")
    return conversation


@pytest.fixture
def staff(make_user):
    """Return a factory for staff users holding only the named permissions."""

    def make(*codenames: str, username: str = "auditor"):
        member = make_user(username, is_staff=True)
        member.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        return member

    return make


def share(conversation, visibility: str = "team", expires: str = "") -> ShareLink:
    return sharing.create_link(conversation=conversation, visibility=visibility, expires=expires)


def url(link: ShareLink) -> str:
    return reverse("shared_transcript", args=[link.token])


def attach_image(message: Message) -> Attachment:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "teal").save(buffer, "PNG")
    upload = SimpleUploadedFile("boat.png", buffer.getvalue(), content_type="image/png")
    image = images.store_upload(user=message.conversation.owner, uploaded_file=upload)
    image.message = message
    image.save(update_fields=["message"])
    return image


def set_mode(mode: str) -> None:
    SharingPolicy.objects.update_or_create(pk=1, defaults={"mode": mode})


# --- Links and snapshots ---------------------------------------------------------------


def test_token_is_random_and_long(conversation):
    tokens = {share(conversation).token for _ in range(5)}

    assert len(tokens) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens)  # 256 bits


def test_snapshot_is_the_visible_branch(conversation):
    link = share(conversation)

    assert link.message_ids == [m.pk for m in conversation.visible_branch()]


def test_snapshot_leaves_out_an_answer_being_written(conversation):
    say(conversation, "And in winter?", "", status="streaming")

    assert len(share(conversation).message_ids) == 2


def test_create_link_refuses_an_unknown_expiry(conversation):
    with pytest.raises(sharing.SharingError):
        share(conversation, expires="365")


def test_share_dialog_opens_for_the_owner(client, user, conversation):
    client.force_login(user)

    response = client.get(reverse("share_conversation", args=[conversation.pk]), **HTMX)

    assert b'<dialog id="share-dialog"' in response.content


def test_share_dialog_is_404_for_someone_else(client, other_user, conversation):
    client.force_login(other_user)

    assert client.get(reverse("share_conversation", args=[conversation.pk])).status_code == 404


def test_share_dialog_creates_a_link(client, user, conversation):
    client.force_login(user)
    path = reverse("share_conversation", args=[conversation.pk])

    response = client.post(path, {"visibility": "public", "expires": "7"}, **HTMX)

    link = ShareLink.objects.get()
    assert link.visibility == "public" and link.expires_at is not None
    assert url(link).encode() in response.content


def test_shares_page_lists_only_the_users_links(client, user, other_user, conversation):
    secret = Conversation.objects.create(owner=other_user, title="Their secret")
    say(secret, "Hush", "Quiet")
    theirs = share(secret)
    client.force_login(user)
    share(conversation)

    page = client.get(reverse("shares")).content.decode()

    assert "Trip plans" in page and theirs.token not in page


# --- The transcript page ---------------------------------------------------------------


def test_transcript_shows_the_snapshot_with_owner_and_model(client, other_user, conversation):
    client.force_login(other_user)

    page = client.get(url(share(conversation))).content.decode()

    assert "Try the coast." in page and "ming" in page and "sim-chat" in page
    assert 'id="message-' in page  # the chat's own message partial


def test_snapshot_stays_fixed_when_the_owner_continues(client, other_user, conversation):
    link = share(conversation)
    say(conversation, "What about hotels?", "Book early.")
    client.force_login(other_user)

    assert b"Book early." not in client.get(url(link)).content


def test_update_snapshot_shows_later_messages(client, user, other_user, conversation):
    link = share(conversation)
    say(conversation, "What about hotels?", "Book early.")
    client.force_login(user)
    client.post(reverse("update_share", args=[link.pk]), **HTMX)
    client.force_login(other_user)

    assert b"Book early." in client.get(url(link)).content


def test_transcript_hides_the_owners_token_counts(client, other_user, user):
    conversation = Conversation.objects.create(owner=user, title="Counted")
    say(conversation, "Hi", "Hello", input_tokens=1234, output_tokens=5678)
    client.force_login(other_user)

    assert b"5678" not in client.get(url(share(conversation))).content


def test_revoked_link_is_a_clear_404(client, user, conversation):
    link = share(conversation)
    client.force_login(user)
    client.post(reverse("revoke_share", args=[link.pk]), **HTMX)

    response = client.get(url(link))

    assert response.status_code == 404
    assert b"not available" in response.content


def test_only_the_owner_can_revoke(client, other_user, conversation):
    link = share(conversation)
    client.force_login(other_user)

    assert client.post(reverse("revoke_share", args=[link.pk])).status_code == 404
    assert ShareLink.objects.get().revoked_at is None


def test_expired_link_is_404(client, other_user, conversation):
    link = share(conversation, expires="1")
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    client.force_login(other_user)

    assert client.get(url(link)).status_code == 404


def test_unknown_token_is_404(client, other_user):
    client.force_login(other_user)

    assert client.get(reverse("shared_transcript", args=["x" * 43])).status_code == 404


def test_team_link_sends_anonymous_visitors_to_sign_in(client, conversation):
    link = share(conversation, "team")

    response = client.get(url(link))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_public_link_opens_anonymously_and_is_not_indexed(client, conversation):
    response = client.get(url(share(conversation, "public")))

    assert response.status_code == 200 and b"Try the coast." in response.content
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert b'<meta name="robots" content="noindex, nofollow">' in response.content


def test_sharing_off_closes_every_link(client, other_user, conversation):
    link = share(conversation)
    set_mode("off")
    client.force_login(other_user)

    assert client.get(url(link)).status_code == 404


def test_sharing_off_refuses_new_links(conversation):
    set_mode("off")

    with pytest.raises(sharing.SharingError):
        share(conversation)


def test_team_only_refuses_new_public_links(conversation):
    set_mode("team")

    with pytest.raises(sharing.SharingError):
        share(conversation, "public")


def test_team_only_makes_public_links_ask_for_sign_in(client, conversation):
    link = share(conversation, "public")
    set_mode("team")

    assert client.get(url(link)).status_code == 302


def test_deleted_users_links_are_404(client, user, other_user, conversation):
    link = share(conversation, "public")
    user.delete()

    assert client.get(url(link)).status_code == 404


def test_deactivated_users_links_are_404(client, user, conversation):
    link = share(conversation, "public")
    user.is_active = False
    user.save()

    assert client.get(url(link)).status_code == 404


# --- Images through a link -------------------------------------------------------------


def image_url(link: ShareLink, image: Attachment, *, thumb: bool = False) -> str:
    name = "shared_image_thumbnail" if thumb else "shared_image"
    return reverse(name, args=[link.token, image.pk])


def test_snapshot_image_is_served_through_the_link(client, conversation):
    image = attach_image(conversation.visible_branch()[0])
    link = share(conversation, "public")

    assert client.get(image_url(link, image)).status_code == 200
    assert client.get(image_url(link, image, thumb=True)).status_code == 200


def test_transcript_points_images_at_the_link(client, conversation):
    image = attach_image(conversation.visible_branch()[0])
    link = share(conversation, "public")

    page = client.get(url(link)).content.decode()

    assert image_url(link, image) in page
    assert reverse("attachment", args=[image.pk]) not in page


def test_image_after_the_snapshot_is_refused(client, conversation):
    link = share(conversation, "public")
    later, _ = say(conversation, "And this one?", "Nice.")

    assert client.get(image_url(link, attach_image(later))).status_code == 404


def test_image_of_another_conversation_is_refused(client, user, conversation):
    link = share(conversation, "public")
    other = Conversation.objects.create(owner=user, title="Private")
    asked, _ = say(other, "Look", "Seen")

    assert client.get(image_url(link, attach_image(asked))).status_code == 404


def test_image_of_a_revoked_link_is_refused(client, user, conversation):
    image = attach_image(conversation.visible_branch()[0])
    link = sharing.revoke(share(conversation, "public"), by=user)

    assert client.get(image_url(link, image)).status_code == 404


# --- Continue in a new chat ------------------------------------------------------------


def continue_as(client, viewer, link: ShareLink):
    client.force_login(viewer)
    return client.post(reverse("continue_shared", args=[link.token]))


def test_continue_copies_the_snapshot_for_the_viewer(client, other_user, conversation):
    link = share(conversation)
    say(conversation, "Later question", "Later answer")

    response = continue_as(client, other_user, link)

    copy = Conversation.objects.get(owner=other_user)
    assert response["Location"] == reverse("conversation", args=[copy.pk])
    texts = [m.text for m in copy.visible_branch()]
    assert texts == ["Where should we go?", "Try the coast."]


def test_continue_drops_response_ids_and_instructions(client, user, other_user, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(instructions="Owner only")

    continue_as(client, other_user, share(conversation))

    copy = Conversation.objects.get(owner=other_user)
    assert copy.instructions == ""
    assert not copy.messages.exclude(response_id="").exists()


def test_continue_makes_a_linear_branch(client, other_user, conversation):
    continue_as(client, other_user, share(conversation))

    question, answer = Conversation.objects.get(owner=other_user).visible_branch()
    assert question.parent_id is None and answer.parent_id == question.pk


def test_continue_copies_images_as_the_viewers_files(client, other_user, conversation):
    original = attach_image(conversation.visible_branch()[0])

    continue_as(client, other_user, share(conversation))

    copy = Attachment.objects.exclude(pk=original.pk).get()
    assert copy.owner == other_user and copy.file.name != original.file.name
    assert copy.message.conversation.owner == other_user


def test_continue_that_fails_midway_leaves_no_copy_and_no_files(other_user, conversation, media):
    question = conversation.visible_branch()[0]
    kept, lost = attach_image(question), attach_image(question)
    lost.file.storage.delete(lost.file.name)  # the second copy cannot be read

    with pytest.raises(FileNotFoundError):
        continuing.continue_in_new_chat(link=share(conversation), user=other_user)

    assert not Conversation.objects.filter(owner=other_user).exists()
    stored = [p.name for p in media.rglob("*") if p.is_file()]
    assert stored == [kept.file.name.rsplit("/", 1)[-1]]  # the first copy was removed


def test_continue_needs_sign_in(client, conversation):
    link = share(conversation, "public")

    response = client.post(reverse("continue_shared", args=[link.token]))

    assert response.status_code == 302 and Conversation.objects.count() == 1


def test_continue_from_a_revoked_link_is_404(client, user, other_user, conversation):
    link = sharing.revoke(share(conversation), by=user)

    assert continue_as(client, other_user, link).status_code == 404


# --- Audit -----------------------------------------------------------------------------


def test_anonymous_view_is_audited_with_ip(client, conversation):
    link = share(conversation, "public")

    client.get(url(link), REMOTE_ADDR="203.0.113.7")

    row = TranscriptAccess.objects.get()
    assert (row.via, row.viewer, row.ip_address) == ("link", None, "203.0.113.7")
    assert (row.share_link, row.conversation_ref) == (link, conversation.pk)


def test_signed_in_view_is_audited_with_the_viewer(client, other_user, conversation):
    client.force_login(other_user)

    client.get(url(share(conversation)))

    assert TranscriptAccess.objects.get().viewer_name == "lena"


def test_continue_is_audited(client, other_user, conversation):
    continue_as(client, other_user, share(conversation))

    assert TranscriptAccess.objects.get().via == "continue"


def test_audit_row_outlives_the_owner(client, user, other_user, conversation):
    client.force_login(other_user)
    client.get(url(share(conversation)))
    user.delete()

    row = TranscriptAccess.objects.get()
    assert row.conversation is None
    assert (row.conversation_ref, row.conversation_title, row.owner_name) == (
        conversation.pk,
        "Trip plans",
        "ming",
    )


# --- Admin review ----------------------------------------------------------------------


def review_url(conversation) -> str:
    return reverse("admin:conversations_reviewedconversation_change", args=[conversation.pk])


def test_review_refuses_non_staff(client, other_user, conversation):
    client.force_login(other_user)

    response = client.get(review_url(conversation))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_review_refuses_staff_without_the_permission(client, staff, conversation):
    client.force_login(staff("view_sharelink", "view_transcriptaccess"))

    assert client.get(REVIEW).status_code == 403
    assert client.get(review_url(conversation)).status_code == 403
    assert not TranscriptAccess.objects.exists()


def test_review_shows_the_transcript_and_audits_it(client, staff, conversation):
    client.force_login(staff("review_conversations"))

    response = client.get(review_url(conversation), REMOTE_ADDR="198.51.100.2")

    assert b"Try the coast." in response.content
    row = TranscriptAccess.objects.get()
    assert (row.via, row.viewer_name, row.ip_address) == ("review", "auditor", "198.51.100.2")


def test_review_searches_message_text(client, staff, user, conversation):
    other = Conversation.objects.create(owner=user, title="Cooking")
    say(other, "Soup?", "Leek and potato.")
    client.force_login(staff("review_conversations"))

    page = client.get(REVIEW, {"q": "coast"}).content.decode()

    assert "Trip plans" in page and "Cooking" not in page


def test_review_shows_every_branch_with_its_place(client, staff, user, conversation):
    edited = Message.objects.create(conversation=conversation, role="user", text="Ski trip?")
    Message.objects.create(conversation=conversation, parent=edited, role="assistant", text="Alps.")
    client.force_login(staff("review_conversations"))

    page = client.get(review_url(conversation)).content.decode()

    assert page.index("Where should we go?") < page.index("Try the coast.") < page.index("Alps.")
    assert "Version 1 of 2" in page and "Version 2 of 2" in page
    assert page.count("on the owner") == 1


def test_review_and_shared_pages_name_the_model_by_its_label(client, staff, conversation):
    ModelChoice.objects.create(upstream_id="sim-chat", label="Sim Chat")
    client.force_login(staff("review_conversations"))

    review = client.get(review_url(conversation)).content.decode()
    shared = client.get(url(share(conversation, "public"))).content.decode()

    assert 'title="sim-chat">Sim Chat<' in review
    assert 'title="sim-chat">Sim Chat<' in shared


def test_review_search_counts_each_message_once(client, staff, user, conversation):
    say(conversation, "And the Eiffel tower?", "The Eiffel tower is in Paris.")
    client.force_login(staff("review_conversations"))

    page = client.get(REVIEW, {"q": "Eiffel"}).content.decode()

    assert re.search(r'<td class="field-message_count">4</td>', page)


def test_review_filters_by_model_and_dates(client, staff, user, conversation):
    other = Conversation.objects.create(owner=user, title="Cooking")
    say(other, "Soup?", "Leek.", model_name="sim-reasoner")
    Message.objects.filter(conversation=conversation).update(
        created_at=timezone.now() - datetime.timedelta(days=40)
    )
    client.force_login(staff("review_conversations"))
    today = timezone.localdate().isoformat()

    by_model = client.get(REVIEW, {"answered_by": "sim-reasoner"}).content.decode()
    by_date = client.get(REVIEW, {"created_from": today}).content.decode()

    assert "Cooking" in by_model and "Trip plans" not in by_model
    assert "Cooking" in by_date and "Trip plans" not in by_date


def test_review_model_filter_names_models_by_their_label(client, staff, conversation):
    ModelChoice.objects.create(upstream_id="sim-chat", label="Sim Chat")
    client.force_login(staff("review_conversations"))

    page = client.get(REVIEW).content.decode()

    assert ">Sim Chat</a>" in page
    assert ">sim-chat</a>" not in page


def test_review_serves_the_conversations_images(client, staff, conversation):
    image = attach_image(conversation.visible_branch()[0])
    client.force_login(staff("review_conversations"))
    name = "admin:conversations_reviewedconversation_image"

    assert client.get(reverse(name, args=[conversation.pk, image.pk])).status_code == 200


def test_review_refuses_images_of_other_conversations(client, staff, user, conversation):
    other = Conversation.objects.create(owner=user)
    asked, _ = say(other, "Look", "Seen")
    image = attach_image(asked)
    client.force_login(staff("review_conversations"))
    name = "admin:conversations_reviewedconversation_image"

    assert client.get(reverse(name, args=[conversation.pk, image.pk])).status_code == 404


def test_audit_log_cannot_be_edited_or_deleted(client, make_user, conversation):
    client.get(url(share(conversation, "public")))
    row = TranscriptAccess.objects.get()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    change = reverse("admin:conversations_transcriptaccess_change", args=[row.pk])
    delete = reverse("admin:conversations_transcriptaccess_delete", args=[row.pk])

    client.post(change, {"viewer_name": "nobody"})
    client.post(delete, {"post": "yes"})

    assert TranscriptAccess.objects.get().viewer_name == ""
    assert client.get(reverse("admin:conversations_transcriptaccess_add")).status_code == 403


def test_audit_log_exports_filtered_csv(client, staff, conversation):
    link = share(conversation, "public")
    client.get(url(link), REMOTE_ADDR="203.0.113.7")
    client.force_login(staff("view_transcriptaccess", "review_conversations"))
    client.get(review_url(conversation))

    response = client.get(reverse("admin:conversations_transcriptaccess_export"), {"via": "link"})

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["time", "via", "viewer"]
    assert [row[1:4] for row in rows[1:]] == [["link", "anonymous", "203.0.113.7"]]


def test_audit_log_lists_for_staff_with_view_permission(client, staff, conversation):
    client.get(url(share(conversation, "public")))
    client.force_login(staff("view_transcriptaccess"))

    assert b"Trip plans" in client.get(AUDIT).content


def test_admin_revokes_any_link(client, staff, conversation):
    link = share(conversation)
    admin_user = staff("view_sharelink", "change_sharelink")
    client.force_login(admin_user)

    client.post(
        reverse("admin:conversations_sharelink_changelist"),
        {"action": "revoke_links", "_selected_action": [link.pk]},
    )

    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by == admin_user


def test_admin_share_link_list_hides_tokens(client, staff, conversation):
    link = share(conversation)
    client.force_login(staff("view_sharelink"))

    page = client.get(reverse("admin:conversations_sharelink_changelist")).content.decode()

    assert "Trip plans" in page and link.token not in page


def test_admin_sets_the_sharing_policy(client, staff):
    client.force_login(staff("view_sharingpolicy", "change_sharingpolicy"))
    change = reverse("admin:conversations_sharingpolicy_change", args=[1])

    client.get(reverse("admin:conversations_sharingpolicy_changelist"))
    client.post(change, {"mode": "team"})

    assert SharingPolicy.load().mode == "team"


# --- Deleted users and retention -------------------------------------------------------


def test_deleting_a_user_keeps_nothing_by_default(user, conversation):
    user.delete()

    assert not RetainedTranscript.objects.exists()


def test_retention_keeps_a_frozen_transcript(settings, user, conversation):
    settings.RETAIN_DELETED_USER_CONVERSATIONS = True

    user.delete()

    retained = RetainedTranscript.objects.get()
    assert (retained.owner_name, retained.title) == ("ming", "Trip plans")
    assert [m["text"] for m in retained.messages] == ["Where should we go?", "Try the coast."]


def test_retained_transcript_is_reviewed_and_audited(client, settings, staff, user, conversation):
    settings.RETAIN_DELETED_USER_CONVERSATIONS = True
    attach_image(conversation.visible_branch()[0])
    user.delete()
    client.force_login(staff("review_conversations"))
    retained = RetainedTranscript.objects.get()

    change = reverse("admin:conversations_retainedtranscript_change", args=[retained.pk])
    response = client.get(change)

    assert b"Try the coast." in response.content
    assert TranscriptAccess.objects.get().retained == retained


def test_retained_transcripts_need_the_review_permission(client, settings, staff, user):
    settings.RETAIN_DELETED_USER_CONVERSATIONS = True
    user.delete()
    client.force_login(staff("view_transcriptaccess"))
    changelist = reverse("admin:conversations_retainedtranscript_changelist")

    assert client.get(changelist).status_code == 403


# --- Not found -------------------------------------------------------------------------


def test_not_found_page_is_the_sites_own(client, user):
    client.force_login(user)

    response = client.get("/no-such-page/")

    assert response.status_code == 404 and b"Page not found" in response.content


def test_retained_transcripts_are_searchable_by_text(client, settings, staff, user, conversation):
    settings.RETAIN_DELETED_USER_CONVERSATIONS = True
    user.delete()
    client.force_login(staff("review_conversations"))
    changelist = reverse("admin:conversations_retainedtranscript_changelist")

    assert b"Trip plans" in client.get(changelist, {"q": "coast"}).content
    assert b"Trip plans" not in client.get(changelist, {"q": "mountains"}).content


def test_retained_transcripts_are_searchable_in_chinese(client, settings, staff, user):
    settings.RETAIN_DELETED_USER_CONVERSATIONS = True
    trip = Conversation.objects.create(owner=user, title="Trip")
    say(trip, "长城有多长?", "长城很长。")
    user.delete()
    client.force_login(staff("review_conversations"))
    changelist = reverse("admin:conversations_retainedtranscript_changelist")

    assert b">Trip<" in client.get(changelist, {"q": "长城"}).content
    assert b">Trip<" not in client.get(changelist, {"q": "黄河"}).content


def test_admin_share_link_page_is_read_only(client, staff, conversation):
    link = share(conversation)
    client.force_login(staff("view_sharelink", "change_sharelink"))
    change = reverse("admin:conversations_sharelink_change", args=[link.pk])

    client.post(change, {"visibility": "public"})

    assert client.get(change).status_code == 200
    assert ShareLink.objects.get().visibility == "team"


def test_admin_share_link_list_says_which_links_allow_downloads(client, staff, conversation):
    sharing.create_link(conversation=conversation, visibility="team", allow_downloads=True)
    client.force_login(staff("view_sharelink"))

    page = client.get(
        reverse("admin:conversations_sharelink_changelist"), {"allow_downloads__exact": "1"}
    ).content.decode()

    assert "Trip plans" in page and "readers may download files" in page.lower()
