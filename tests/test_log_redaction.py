"""No log line of the app prints the gateway key, whatever its format and whoever logs it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.servers import PROJECT_DIR

KEY = "gw.Zx9-odd/Format+Key=2024"  # nothing like "sk-...": only the configured value tells

# Log lines the way the app's modules, Django and Daphne write them, each carrying the key.
LOGGING_SCRIPT = textwrap.dedent(
    """
    import logging, os, django
    django.setup()
    key = os.environ["OPENAI_API_KEY"]
    logging.getLogger("conversations.tools.registry").warning("tool said %s", key)
    logging.getLogger("django.request").error("Internal Server Error: /?k=" + key)
    logging.getLogger("daphne.server").warning("%(key)s", {"key": key})
    logging.getLogger("conversations.pipeline.generation").info("plain %s", key, stack_info=True)
    try:
        raise RuntimeError(f"upstream refused {key}")
    except RuntimeError:
        logging.getLogger("conversations.pipeline.generation").exception("generation failed")
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("debug", ["0", "1"])
def test_no_logger_prints_the_configured_key(debug):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DEBUG": debug,
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }
    result = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == "done", result.stderr
    assert KEY not in result.stderr
    assert "Format+Key" not in result.stderr
    assert result.stderr.count("[redacted]") >= 5
    assert "RuntimeError: upstream refused [redacted]" in result.stderr
