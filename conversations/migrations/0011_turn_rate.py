# Written by hand (issue #17: a per-user turn rate, and the row that makes the
# concurrency cap atomic); `makemigrations --check` finds nothing left to add.

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def turns_per_minute():
    return models.PositiveIntegerField(
        blank=True,
        help_text="Empty: fall back to the next level, then to the site's setting.",
        null=True,
        validators=[django.core.validators.MinValueValidator(1)],
        verbose_name="messages per minute",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0010_gateway_compatibility"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(model_name="quota", name="turns_per_minute", field=turns_per_minute()),
        migrations.AddField(
            model_name="groupquota", name="turns_per_minute", field=turns_per_minute()
        ),
        migrations.AddField(
            model_name="defaultquota", name="turns_per_minute", field=turns_per_minute()
        ),
        migrations.CreateModel(
            name="TurnGate",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="turn_gate",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
                (
                    "recent_starts",
                    models.JSONField(default=list, verbose_name="recent turn starts"),
                ),
            ],
            options={
                "verbose_name": "turn gate",
                "verbose_name_plural": "turn gates",
            },
        ),
    ]
