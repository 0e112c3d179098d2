"""Add the gateway's models to the model catalogue, leaving existing entries alone.

With OPENAI_API_KEY set the models come from the gateway's own list (`GET /models`),
with every capability off: the list says nothing more. Without a key they are the
embedded simulator's, with their capabilities and prices (as are the simulator's
models when a key points at a standalone simulator, as the benchmarks do).

Safe to run on every deploy: a model already in the catalogue (matched by upstream id)
is never touched, so what admins edited stays edited, and a model they deleted comes
back only if they run this again. The first model becomes the default only when the
catalogue was empty. A gateway without a model list never fails the deploy: the
command says how to add models by hand and exits successfully.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.catalogue import gateway_models
from conversations.catalogue.upstream import using_simulator
from conversations.gateway.errors import AuthenticationError, GatewayError, NotFoundError
from conversations.gateway.simulator.catalogue import MODELS, ModelSpec
from conversations.models import ModelChoice
from conversations.tools import all_tools

HOW_TO_ADD = (
    'Add models in the admin: Models → Add, with the gateway\'s model id as "upstream model id".'
)


def catalogue_entry(spec: ModelSpec, position: int) -> dict:
    """Return the ModelChoice fields for a simulator model."""
    return {
        "label": spec.label,
        "enabled": True,
        "position": position,
        "supports_reasoning": spec.reasoning,
        "supports_web_search": spec.web_search,
        "supports_images": spec.images,
        "supports_files": spec.files,
        "supports_function_tools": spec.function_tools,
        "tools": [tool.name for tool in all_tools()] if spec.function_tools else [],
        "reasoning_efforts": ",".join(spec.reasoning_efforts),
        "default_reasoning_effort": spec.default_effort or "",
        "max_output_tokens": spec.max_output_tokens,
        "context_window": spec.context_window,
        "price_input": spec.input_price,
        "price_cached_input": spec.cached_input_price,
        "price_output": spec.output_price,
    }


def shown_url(url: str) -> str:
    """Return `url` without any user:password part, fit for a deploy log."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.username else url


def list_failure(error: GatewayError) -> str:
    """Return one line saying why the gateway's model list could not be read."""
    where = shown_url(settings.OPENAI_BASE_URL)
    if isinstance(error, NotFoundError) or error.status_code in (404, 405):
        return f"The gateway at {where} gave no model list ({error})."
    if isinstance(error, AuthenticationError):
        return f"The gateway at {where} refused the API key when asked for its models ({error})."
    return f"Could not read the model list of the gateway at {where} ({error})."


class Command(BaseCommand):
    help = (
        "Add the gateway's models (or, without OPENAI_API_KEY, the simulator's) to the "
        "model catalogue; existing entries stay as they are."
    )

    def handle(self, *args, **options) -> None:
        if using_simulator():
            self.seed_simulator()
        else:
            self.seed_from_gateway()

    def seed_simulator(self) -> None:
        added = gateway_models.add_models(
            (spec.name, catalogue_entry(spec, index * gateway_models.POSITION_STEP))
            for index, spec in enumerate(MODELS, start=1)
        )
        if added:
            self.report_added(added)
        else:
            self.stdout.write("The catalogue already has every simulator model.")

    def seed_from_gateway(self) -> None:
        try:
            listed = gateway_models.gateway_model_ids()
        except GatewayError as error:
            # A deploy must not fail because the gateway cannot list its models.
            self.stderr.write(self.style.WARNING(f"{list_failure(error)} {HOW_TO_ADD}"))
            return
        simulator_models = {spec.name: catalogue_entry(spec, position=0) for spec in MODELS}
        seeded = gateway_models.add_gateway_models(listed, described=simulator_models)
        for shown, problem in seeded.skipped:
            self.stdout.write(f"Skipped the gateway's model {shown}: {problem}.")
        if seeded.added:
            self.report_added(seeded.added)
        elif not listed or len(seeded.skipped) == len(listed):
            self.stderr.write(
                self.style.WARNING(f"The gateway listed no model to add. {HOW_TO_ADD}")
            )
        else:
            self.stdout.write("The catalogue already has every model the gateway lists.")
        known = set(listed)
        unlisted = [
            upstream_id
            for upstream_id in ModelChoice.objects.values_list("upstream_id", flat=True)
            if upstream_id not in known
        ]
        if unlisted:
            self.stdout.write(
                "In the catalogue but not in the gateway's list: "
                f"{', '.join(unlisted)} (Admin → Models → Check against the gateway marks them)."
            )

    def report_added(self, added: list[ModelChoice]) -> None:
        names = ", ".join(model.upstream_id for model in added)
        self.stdout.write(self.style.SUCCESS(f"Added to the catalogue: {names}"))
