"""Add the simulator's models to the model catalogue, leaving existing entries alone.

Safe to run on every deploy: a model already in the catalogue (matched by upstream id)
is never touched, so what admins edited stays edited, and a model they deleted comes
back only if they run this again. The first model becomes the default only when the
catalogue was empty.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from conversations.gateway.simulator.catalogue import MODELS, ModelSpec
from conversations.models import ModelChoice
from conversations.tools import all_tools

POSITION_STEP = 10  # gaps leave room to slot a model in between without renumbering


def catalogue_entry(spec: ModelSpec, position: int) -> dict:
    """Return the ModelChoice fields for a simulator model."""
    return {
        "label": spec.label,
        "enabled": True,
        "position": position,
        "supports_reasoning": spec.reasoning,
        "supports_web_search": spec.web_search,
        "supports_images": spec.images,
        "supports_function_tools": spec.function_tools,
        "tools": [tool.name for tool in all_tools()] if spec.function_tools else [],
        "reasoning_efforts": ",".join(spec.reasoning_efforts),
        "default_reasoning_effort": spec.default_effort or "",
        "max_output_tokens": spec.max_output_tokens,
        "price_input": spec.input_price,
        "price_cached_input": spec.cached_input_price,
        "price_output": spec.output_price,
    }


class Command(BaseCommand):
    help = "Add the simulator's models to the model catalogue (existing entries stay as they are)."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            was_empty = not ModelChoice.objects.exists()
            created = []
            for index, spec in enumerate(MODELS, start=1):
                model, is_new = ModelChoice.objects.get_or_create(
                    upstream_id=spec.name, defaults=catalogue_entry(spec, index * POSITION_STEP)
                )
                if is_new:
                    created.append(model)
            if was_empty and created:
                created[0].is_default = True
                created[0].save(update_fields=["is_default"])
        if created:
            names = ", ".join(model.upstream_id for model in created)
            self.stdout.write(self.style.SUCCESS(f"Added to the catalogue: {names}"))
        else:
            self.stdout.write("The catalogue already has every simulator model.")
