"""The simulator's models: a plain list the app's seed command imports.

Each entry says what the model can do (so the simulator can reject what a real gateway
would reject, e.g. `reasoning` on a non-reasoning model) and carries the labels, limits
and prices the app's model catalogue needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["MODELS", "ModelSpec", "find_model"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One simulated model. Prices are US dollars per million tokens."""

    name: str
    label: str
    description: str
    snapshot: str  # the dated name reported back in responses, like real gateways do
    reasoning: bool = False
    reasoning_efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    raw_reasoning: bool = False  # streams reasoning_text, as open-weight models do
    web_search: bool = False
    images: bool = False
    files: bool = False  # reads `input_file` parts (PDFs and text files)
    function_tools: bool = False
    max_output_tokens: int = 4096
    context_window: int = 128_000
    speed: float = 1.0  # multiplies the simulator's tokens-per-second pace
    input_price: Decimal = Decimal("0")
    cached_input_price: Decimal = Decimal("0")
    output_price: Decimal = Decimal("0")


MODELS: list[ModelSpec] = [
    ModelSpec(
        name="sim-chat",
        label="Sim Chat",
        description="General chat model with web search, image and file input and function tools.",
        snapshot="sim-chat-2025-06-01",
        web_search=True,
        images=True,
        files=True,
        function_tools=True,
        max_output_tokens=8192,
        input_price=Decimal("2.00"),
        cached_input_price=Decimal("0.50"),
        output_price=Decimal("8.00"),
    ),
    ModelSpec(
        name="sim-reasoner",
        label="Sim Reasoner",
        description="Reasoning model (efforts low, medium, high) with summaries, tools and files.",
        snapshot="sim-reasoner-2025-08-07",
        reasoning=True,
        reasoning_efforts=("low", "medium", "high"),
        default_effort="medium",
        web_search=True,
        images=True,
        files=True,
        function_tools=True,
        max_output_tokens=32_768,
        context_window=200_000,
        input_price=Decimal("1.25"),
        cached_input_price=Decimal("0.125"),
        output_price=Decimal("10.00"),
    ),
    ModelSpec(
        name="sim-mini",
        label="Sim Mini",
        description="Small, fast, text-only model.",
        snapshot="sim-mini-2025-04-14",
        max_output_tokens=4096,
        speed=2.0,
        input_price=Decimal("0.10"),
        cached_input_price=Decimal("0.025"),
        output_price=Decimal("0.40"),
    ),
    ModelSpec(
        name="sim-oss",
        label="Sim OSS",
        description="Open-weight style reasoner that streams its raw reasoning text.",
        snapshot="sim-oss-20b",
        reasoning=True,
        reasoning_efforts=("low", "medium", "high"),
        default_effort="medium",
        raw_reasoning=True,
        function_tools=True,
        max_output_tokens=16_384,
        input_price=Decimal("0.05"),
        cached_input_price=Decimal("0.05"),
        output_price=Decimal("0.20"),
    ),
]


def find_model(name: str) -> ModelSpec | None:
    """Return the model called `name`, or None."""
    return next((model for model in MODELS if model.name == name), None)
