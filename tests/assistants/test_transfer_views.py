"""Export and import pages: who may take an assistant away, and what import answers."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations.assistants import portable
from conversations.assistants.library import record_version
from conversations.models import Assistant, Visibility

IMPORT = reverse("assistant_import")


@pytest.fixture
def assistant(user) -> Assistant:
    return record_version(
        Assistant(
            owner=user, name="Tax helper", instructions="Cite the law.", visibility=Visibility.TEAM
        )
    )


def export_url(assistant: Assistant) -> str:
    return reverse("assistant_export", args=[assistant.pk])


def exported(**changes) -> dict:
    return {"format": "chatweb.assistant", "version": 1, "name": "Tax helper", **changes}


def test_export_downloads_the_owners_assistant(client, user, assistant):
    client.force_login(user)
    response = client.get(export_url(assistant))
    assert response["Content-Disposition"] == 'attachment; filename="tax-helper.assistant.json"'
    assert json.loads(response.content)["instructions"] == "Cite the law."


def test_export_is_a_404_to_someone_who_may_only_use_it(client, other_user, assistant):
    client.force_login(other_user)
    assert client.get(export_url(assistant)).status_code == 404


def test_export_open_to_staff(client, make_user, assistant):
    client.force_login(make_user("boss", is_staff=True))
    assert client.get(export_url(assistant)).status_code == 200


def test_import_page_shows_the_form(client, user):
    client.force_login(user)
    assert b'name="file"' in client.get(IMPORT).content


def test_import_of_a_file_opens_the_new_assistant(client, other_user, assistant):
    client.force_login(other_user)
    upload = SimpleUploadedFile("a.json", json.dumps(portable.to_json(assistant)).encode())
    response = client.post(IMPORT, {"file": upload}, follow=True)
    copy = Assistant.objects.get(owner=other_user)
    assert response.redirect_chain[-1][0] == reverse("assistant_edit", args=[copy.pk])
    assert "Imported Tax helper as your own private assistant." in response.content.decode()


def test_import_of_pasted_json_warns_about_a_missing_model(client, user):
    client.force_login(user)
    response = client.post(IMPORT, {"json": json.dumps(exported(model="gpt-9"))}, follow=True)
    assert "“gpt-9” is not available on this site" in response.content.decode()


def test_import_of_a_list_makes_each(client, user):
    client.force_login(user)
    data = [exported(name="One"), exported(name="Two")]
    client.post(IMPORT, {"json": json.dumps(data)})
    assert set(Assistant.objects.values_list("name", flat=True)) == {"One", "Two"}


def test_import_refusal_shows_the_reason_and_keeps_the_text(client, user):
    client.force_login(user)
    response = client.post(IMPORT, {"json": json.dumps(exported(name=""))})
    assert response.status_code == 400
    page = response.content.decode()
    assert "The assistant has no name." in page and "chatweb.assistant" in page


def test_import_refuses_a_file_over_a_megabyte(client, user):
    client.force_login(user)
    upload = SimpleUploadedFile("big.json", b" " * (1024 * 1024 + 1))
    response = client.post(IMPORT, {"file": upload})
    assert "larger than 1 MB" in response.content.decode()


def test_import_refuses_pasted_text_over_a_megabyte(client, user):
    client.force_login(user)
    response = client.post(IMPORT, {"json": "x" * (1024 * 1024 + 1)})
    assert "larger than 1 MB" in response.content.decode()


def test_import_refuses_what_is_not_json(client, user):
    client.force_login(user)
    response = client.post(IMPORT, {"json": "name: Tax helper"})
    assert "This is not valid JSON" in response.content.decode()
    assert not Assistant.objects.exists()
