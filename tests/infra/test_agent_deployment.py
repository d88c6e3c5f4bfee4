"""The node agent's deployment files install and run the agent-only distribution, not the pipeline.

infra/docker/Dockerfile.agent builds ``packaging/agent`` (what a GPU node installs), the Kubernetes
DaemonSet runs that image, and the systemd unit runs ``gpuwatch-agent`` from an agent-only venv. Checked
without Docker, Kubernetes or systemd: the files they copy are the ones the distribution reads, the
commands they run parse with the agent's own CLI, and the config they pass loads.
"""

from __future__ import annotations

import json
import shlex
import tomllib

import yaml

from tests.infra.test_deployment_files import AGENT_IMAGE, K8S, ROOT, dockerignore_allows_in, instructions_of

DOCKERFILE = ROOT / "infra/docker/Dockerfile.agent"
IGNORE = ROOT / "infra/docker/Dockerfile.agent.dockerignore"
UNIT = ROOT / "infra/agent/gpuwatch-agent.service"


def test_the_agent_image_installs_only_the_agent_distribution():
    ins = instructions_of(DOCKERFILE)
    runs = " ".join(a for k, a in ins if k == "RUN")
    assert "pip install ./packaging/agent" in runs and "pip install . " not in runs + " "
    copied = []
    for kind, arg in ins:
        if kind == "COPY" and "--from=" not in arg:
            for src in [a for a in shlex.split(arg) if not a.startswith("--")][:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the build context"
                assert dockerignore_allows_in(IGNORE, src.rstrip("/")), f"COPY {src}: excluded by {IGNORE.name}"
                copied.append(src.rstrip("/"))
    dist = tomllib.loads((ROOT / "packaging/agent/pyproject.toml").read_text())
    for pkg, rel in dist["tool"]["setuptools"]["package-dir"].items():
        assert (ROOT / "packaging/agent" / rel).resolve().relative_to(ROOT).as_posix() in copied, pkg
    assert "pipelines" not in copied and not dockerignore_allows_in(IGNORE, "pipelines/app.py")
    assert json.loads(next(a for k, a in ins if k == "ENTRYPOINT")) == ["gpuwatch-agent"]
    assert [a for k, a in ins if k == "USER"][-1].split(":")[0] not in ("0", "root")


def test_the_daemonset_runs_the_agent_image_with_arguments_gpuwatch_agent_takes():
    from agents.cli import build_parser
    from agents.config import load_config_dict

    docs = [d for d in yaml.safe_load_all((K8S / "agent-daemonset.yaml").read_text()) if d]
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert c["image"] == AGENT_IMAGE
    args = build_parser().parse_args(c["args"])
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")["mountPath"]
    assert args.config == f"{mount}/agent.yaml"
    load_config_dict(yaml.safe_load(cm["data"]["agent.yaml"]))


def test_the_systemd_unit_runs_gpuwatch_agent_from_the_agent_only_venv():
    from agents.cli import build_parser
    from agents.config import load_config

    lines = [ln.strip() for ln in UNIT.read_text().splitlines()]
    exec_start = shlex.split(next(ln for ln in lines if ln.startswith("ExecStart=")).split("=", 1)[1])
    assert exec_start[0].endswith("/bin/gpuwatch-agent"), exec_start
    venv = exec_start[0].rsplit("/bin/", 1)[0]
    assert any(f"{venv}/bin/pip install ./packaging/agent" in ln for ln in lines), "the unit says how to install it"
    args = build_parser().parse_args(exec_start[1:])
    assert args.config == "/etc/gpuwatch/agent.yaml"
    load_config(ROOT / "infra/agent/agent.yaml")  # the example config that goes there
