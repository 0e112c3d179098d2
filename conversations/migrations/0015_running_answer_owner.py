# Written by hand: a running answer names its user (see RunningAnswer.owner), so a turn
# start counts the user's running answers from the running table alone. Answers
# streaming when this runs get their conversation's owner.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_owners(apps, schema_editor):
    RunningAnswer = apps.get_model("conversations", "RunningAnswer")
    Message = apps.get_model("conversations", "Message")
    owner = Message.objects.filter(pk=OuterRef("message_id")).values("conversation__owner_id")
    RunningAnswer.objects.update(owner_id=Subquery(owner[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0014_running_answers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="runninganswer",
            name="owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="owner",
            ),
        ),
        migrations.RunPython(copy_owners, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="runninganswer",
            name="owner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="owner",
            ),
        ),
    ]
