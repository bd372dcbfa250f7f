#!/usr/bin/env python3
"""Writes sim/src/import/known-prices.json: list prices and context windows of well-known models, taken from
the price map that ships with the pinned LiteLLM (scripts/peers/requirements.txt), so that `routesim import`
can price a config that names common models without `--prices`.

Usage: eval "$(scripts/peers/install.sh)"; $ROUTESIM_PEERS_PYTHON scripts/known_prices.py
"""
import datetime
import json
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import importlib.metadata  # noqa: E402

import litellm  # noqa: E402

# name in the table -> key in LiteLLM's map (the same name unless a dated or regional key holds the price).
MODELS = {
    "gpt-4o": "gpt-4o",
    "gpt-4o-mini": "gpt-4o-mini",
    "gpt-4.1": "gpt-4.1",
    "gpt-4.1-mini": "gpt-4.1-mini",
    "gpt-4.1-nano": "gpt-4.1-nano",
    "gpt-4-turbo": "gpt-4-turbo",
    "gpt-3.5-turbo": "gpt-3.5-turbo",
    "gpt-5": "gpt-5",
    "gpt-5-mini": "gpt-5-mini",
    "gpt-5-nano": "gpt-5-nano",
    "o3": "o3",
    "o3-mini": "o3-mini",
    "o4-mini": "o4-mini",
    "claude-sonnet-4": "anthropic.claude-sonnet-4-20250514-v1:0",
    "claude-sonnet-4-5": "claude-sonnet-4-5",
    "claude-opus-4": "anthropic.claude-opus-4-20250514-v1:0",
    "claude-opus-4-1": "anthropic.claude-opus-4-1-20250805-v1:0",
    "claude-haiku-4-5": "claude-haiku-4-5",
    "claude-3-7-sonnet": "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "claude-3-5-sonnet": "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "claude-3-5-haiku": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "gemini-2.5-pro": "gemini-2.5-pro",
    "gemini-2.5-flash": "gemini-2.5-flash",
    "gemini-2.5-flash-lite": "gemini-2.5-flash-lite",
    "mistral-large-latest": "mistral/mistral-large-latest",
    "mistral-small-latest": "mistral/mistral-small-latest",
    "deepseek-chat": "deepseek/deepseek-chat",
}

def main():
    path = os.path.join(os.path.dirname(litellm.__file__), "model_prices_and_context_window_backup.json")
    with open(path) as f:
        prices = json.load(f)
    out = {
        "_source": f"LiteLLM {importlib.metadata.version('litellm')} model_prices_and_context_window_backup.json",
        "_date": datetime.date.today().isoformat(),
    }
    for name, key in MODELS.items():
        e = prices.get(key)
        if not e or e.get("input_cost_per_token") is None:
            sys.exit(f"no price for {key} in {path}")
        out[name] = {k: e[k] for k in ("input_cost_per_token", "output_cost_per_token", "max_input_tokens") if k in e}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "sim/src/import/known-prices.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

main()
