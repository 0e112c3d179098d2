# Written by hand (issue #18 point 6: a running generation's state, its process, its
# quota hold and its heartbeat, lives in its own table; a message row is content only);
# `makemigrations --check` finds nothing left to add.
#
# Answers still streaming when this runs keep their state: each gets its running row,
# with its last write as its heartbeat, so recovery treats it as before.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def move_to_running_answers(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    RunningAnswer = apps.get_model("conversations", "RunningAnswer")
    streaming = Message.objects.filter(status="streaming").only(
        "pk", "worker_channel", "quota_hold", "created_at", "updated_at"
    )
    RunningAnswer.objects.bulk_create(
        RunningAnswer(
            message_id=message.pk,
            worker_channel=message.worker_channel,
            quota_hold=message.quota_hold or {},
            started_at=message.created_at,
            heartbeat_at=message.updated_at,
        )
        for message in streaming.iterator()
    )


def move_back_to_messages(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    RunningAnswer = apps.get_model("conversations", "RunningAnswer")
    for running in RunningAnswer.objects.iterator():
        Message.objects.filter(pk=running.message_id).update(
            worker_channel=running.worker_channel, quota_hold=running.quota_hold
        )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0013_message_rendered_html"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunningAnswer",
            fields=[
                (
                    "message",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="running",
                        serialize=False,
                        to="conversations.message",
                        verbose_name="answer",
                    ),
                ),
                (
                    "worker_channel",
                    models.CharField(blank=True, max_length=200, verbose_name="worker channel"),
                ),
                (
                    "quota_hold",
                    models.JSONField(blank=True, default=dict, verbose_name="quota hold"),
                ),
                (
                    "started_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="started at"
                    ),
                ),
                (
                    "heartbeat_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="heartbeat at"
                    ),
                ),
            ],
            options={
                "verbose_name": "running answer",
                "verbose_name_plural": "running answers",
                "indexes": [models.Index(fields=["heartbeat_at"], name="running_heartbeat")],
            },
        ),
        migrations.RunPython(move_to_running_answers, move_back_to_messages),
        migrations.RemoveField(model_name="message", name="worker_channel"),
        migrations.RemoveField(model_name="message", name="quota_hold"),
    ]
