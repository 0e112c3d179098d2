# Written by hand (issue #20 point 4: which models each group may use, and each
# group's default model); `makemigrations --check` finds nothing left to add.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("conversations", "0011_turn_rate"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelchoice",
            name="groups",
            field=models.ManyToManyField(
                blank=True,
                help_text="Only members of these groups may use this model. Empty: everyone may.",
                related_name="usable_models",
                to="auth.group",
                verbose_name="groups",
            ),
        ),
        migrations.AddField(
            model_name="modelchoice",
            name="default_for_groups",
            field=models.ManyToManyField(
                blank=True,
                help_text=(
                    "Members of these groups start new conversations on this model. A member "
                    "of several groups with defaults gets the one highest in the list of "
                    "models (lowest position, then label)."
                ),
                related_name="default_models",
                to="auth.group",
                verbose_name="default for groups",
            ),
        ),
    ]
