# Written by hand (issue #21 point 3): a user's custom instructions, and a switch per
# conversation to leave them out. Existing conversations use them, as new ones do.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0015_running_answer_owner"),
    ]

    operations = [
        migrations.AddField(
            model_name="userpreference",
            name="about_me",
            field=models.TextField(
                blank=True, max_length=1500, verbose_name="what chatweb should know about you"
            ),
        ),
        migrations.AddField(
            model_name="userpreference",
            name="answer_style",
            field=models.TextField(
                blank=True, max_length=1500, verbose_name="how chatweb should answer"
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="custom_instructions",
            field=models.BooleanField(default=True, verbose_name="use my custom instructions"),
        ),
    ]
