"""Fault modes: parse the fault spec a request carries, and build the HTTP error faults.

A spec is a comma-separated list of `name` or `name:argument` tokens, carried by the model
name (`sim-chat+fault=429`) and/or the `X-Simulator-Fault` header; both are combined.
See FAULTS.md next to this file for the full list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .http import ApiError

__all__ = ["HTTP_FAULTS", "STREAM_FAULTS", "Faults", "http_fault_error", "split_model_name"]

FAULT_MARKER = "+fault="
HTTP_FAULTS = ("400", "401", "403", "404", "429", "quota", "500", "502", "503", "504")
STREAM_FAULTS = ("failed", "error", "error-flat", "incomplete", "cut", "malformed", "stall")
DEFAULT_RETRY_AFTER = 1.0
DEFAULT_DELAY = 1.0
DEFAULT_SLOW_PACE = 4.0


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults one request asked for; an empty spec means none."""

    spec: str = ""
    http_error: str | None = None
    retry_after: float = DEFAULT_RETRY_AFTER
    stream_fault: str | None = None
    delay: float | None = None
    pace: float | None = None
    hang: bool = False
    relay: bool = False  # answer as a stateless relay to chat completions (relay.py)
    # `relay:late`: a relay that sends no `response.created`, so the previous_response_id
    # it did not continue from shows only in the final response, after the text.
    relay_late: bool = False
    # `tools-forever`: call the offered function tool again instead of using its output,
    # as a model stuck in a loop does (quotas and round limits must still hold).
    tools_forever: bool = False
    times: int | None = None

    @classmethod
    def parse(cls, spec: str, *, source: str = "X-Simulator-Fault") -> Faults:
        """Return the faults in `spec`; raise a 400 `ApiError` naming `source` if unreadable."""
        spec = ",".join(token.strip() for token in spec.split(",") if token.strip())
        values: dict[str, object] = {"spec": spec}
        for token in spec.split(",") if spec else []:
            name, _, argument = token.partition(":")
            name = name.strip().lower()
            argument = argument.strip()
            if name in HTTP_FAULTS:
                values["http_error"] = name
                if name == "429" and argument:
                    values["retry_after"] = _number(argument, token, source)
            elif name in STREAM_FAULTS:
                values["stream_fault"] = name
            elif name == "delay":
                values["delay"] = _number(argument, token, source) if argument else DEFAULT_DELAY
            elif name == "slow":
                values["pace"] = _number(argument, token, source) if argument else DEFAULT_SLOW_PACE
            elif name == "hang":
                values["hang"] = True
            elif name == "relay":
                values["relay"] = True
                if argument == "late":
                    values["relay_late"] = True
                elif argument:
                    raise _unknown(token, source)
            elif name == "tools-forever":
                values["tools_forever"] = True
            elif name == "times":
                values["times"] = int(_number(argument, token, source))
            elif name != "tag":
                raise _unknown(token, source)
        return cls(**values)  # type: ignore[arg-type]

    def combined(self, other: Faults) -> Faults:
        """Return the faults of both specs (used for model suffix + header)."""
        if not other.spec:
            return self
        if not self.spec:
            return other
        return Faults.parse(f"{self.spec},{other.spec}")


def split_model_name(model: str) -> tuple[str, str]:
    """Split `sim-chat+fault=429` into (`sim-chat`, `429`)."""
    name, marker, spec = model.partition(FAULT_MARKER)
    return name, spec if marker else ""


def http_fault_error(fault: str, model: str, *, retry_after: float, masked_key: str) -> ApiError:
    """Return the error reply a real gateway sends for the HTTP fault `fault`."""
    if fault == "400":
        return ApiError(
            400,
            "Unknown parameter: 'simulated_bad_parameter'.",
            param="simulated_bad_parameter",
            code="unknown_parameter",
        )
    if fault == "401":
        return ApiError(
            401,
            f"Incorrect API key provided: {masked_key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    if fault == "403":
        return ApiError(
            403,
            f"Project `proj_simulator` does not have access to model `{model}`.",
            code="model_not_allowed",
        )
    if fault == "404":
        return model_not_found(model)
    if fault == "429":
        return ApiError(
            429,
            f"Rate limit reached for {model} in organization org-simulator on requests per min "
            f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after:g}s. "
            "Visit https://platform.openai.com/account/rate-limits to learn more.",
            error_type="requests",
            code="rate_limit_exceeded",
            headers=[
                ("retry-after", str(max(1, math.ceil(retry_after)))),
                ("retry-after-ms", str(round(retry_after * 1000))),
                ("x-ratelimit-limit-requests", "3"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", f"{retry_after:g}s"),
            ],
        )
    if fault == "quota":
        return ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            error_type="insufficient_quota",
            code="insufficient_quota",
        )
    if fault == "502":
        # Load balancers in front of gateways answer with HTML, not JSON.
        html = (
            b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
        )
        return ApiError(502, "Bad gateway", raw_body=html, content_type="text/html")
    if fault == "504":
        return ApiError(
            504,
            "upstream request timeout",
            raw_body=b"upstream request timeout",
            content_type="text/plain",
        )
    if fault == "503":
        return ApiError(
            503,
            "The engine is currently overloaded, please try again later.",
            error_type="server_error",
        )
    return ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        error_type="server_error",
    )


def model_not_found(model: str) -> ApiError:
    """Return the 404 for a model the gateway does not have."""
    return ApiError(
        404,
        f"The model '{model}' does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _number(argument: str, token: str, source: str) -> float:
    try:
        value = float(argument)
    except ValueError:
        raise _unknown(token, source) from None
    if not math.isfinite(value) or value < 0:
        raise _unknown(token, source)
    return value


def _unknown(token: str, source: str) -> ApiError:
    return ApiError(
        400,
        f"Unknown simulator fault '{token}'. See conversations/gateway/simulator/FAULTS.md.",
        param=source,
        code="invalid_value",
    )
