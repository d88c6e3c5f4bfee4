"""Where the pipeline listens beyond loopback (Kubernetes, compose), POST /query needs a token it is given."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipelines.settings import PipelineSettings
from pipelines.web import query_refusal

ROOT = Path(__file__).resolve().parents[2]


def k8s_pipeline_env() -> tuple[dict, dict]:
    docs = [d for f in (ROOT / "infra" / "k8s").glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d["kind"] == "Secret"}
    sts = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "gpuwatch-pipeline")
    env = {}
    for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        env[e["name"]] = secrets[ref["name"]][ref["key"]] if ref else e["value"]
    return env, secrets


def settings_from(env: dict) -> PipelineSettings:
    fields = {k[len("GPUWATCH_"):].lower(): v for k, v in env.items() if k.startswith("GPUWATCH_")}
    return PipelineSettings(_env_file=None, **fields)


def test_the_k8s_pipeline_answers_queries_only_with_its_token():
    env, _ = k8s_pipeline_env()
    settings = settings_from(env)
    assert settings.web_host == "0.0.0.0"
    assert query_refusal(settings, None)
    assert query_refusal(settings, "Bearer guess")
    assert query_refusal(settings, f"Bearer {settings.query_token.get_secret_value()}") is None
    assert settings.query_dsn().startswith("https://analyst:")


def test_the_compose_pipeline_answers_queries_only_with_its_token():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    raw = compose["services"]["pipeline"]["environment"]
    env = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in raw.items()}  # compose's defaults
    settings = settings_from(env)
    assert query_refusal(settings, None)
    assert query_refusal(settings, f"Bearer {settings.query_token.get_secret_value()}") is None
    assert settings.query_dsn().startswith("http://analyst:")


def test_without_a_token_queries_answer_on_loopback_only():
    assert query_refusal(PipelineSettings(_env_file=None, web_host="127.0.0.1"), None) is None
    assert "GPUWATCH_QUERY_TOKEN" in query_refusal(PipelineSettings(_env_file=None, web_host="0.0.0.0"), None)
