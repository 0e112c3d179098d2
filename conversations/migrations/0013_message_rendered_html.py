# Written by hand (issue #18 point 3: a finished message's sanitised HTML is stored
# with the renderer version that made it, as Zulip's rendered_content and
# rendered_content_version); `makemigrations --check` finds nothing left to add.
# Existing rows start empty: pages render them lazily and store the result.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0012_model_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="rendered_html",
            field=models.TextField(blank=True, verbose_name="rendered HTML"),
        ),
        migrations.AddField(
            model_name="message",
            name="rendered_version",
            field=models.PositiveSmallIntegerField(
                blank=True, null=True, verbose_name="renderer version"
            ),
        ),
    ]
