"""The deployment files, checked without Docker or Kubernetes.

docker-compose.yml, infra/docker/Dockerfile, the ClickHouse and Grafana configuration and
infra/k8s/*.yaml must agree with each other and with the code: the files they mount
exist, the settings they pass are settings gpuwatch reads, the commands they run parse,
and every dashboard query runs against the real DDL (in chDB, in a subprocess).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra/docker/Dockerfile"
K8S = ROOT / "infra/k8s"
GRAFANA = ROOT / "infra/grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RUNNER = Path(__file__).with_name("dashboard_sql_runner.py")
IMAGE = "registry.example.com/gpuwatch:0.1.0"
AGENT_IMAGE = "registry.example.com/gpuwatch-agent:0.1.0"
GPUWATCH_SERVICES = {"pipeline", "notify", "agent-sim", "agent"}


# ---------------------------------------------------------------- helpers

def interpolate(value):
    """Compose's ``${VAR:-default}`` / ``${VAR}`` / ``$$`` with an empty environment: what a fresh checkout gets."""
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        if op in (":?", "?"):
            raise AssertionError(f"${{{name}}} is required; the stack must start with no .env")
        return arg if op in (":-", "-") else ""
    return re.sub(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}", sub, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


def service_env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(interpolate(v)) for k, v in env.items()}


def bind_mounts(svc: dict) -> list[tuple[str, str]]:
    """(host path, container path) of each bind mount; named volumes are left out."""
    out = []
    for v in svc.get("volumes") or []:
        src, dst = (v["source"], v["target"]) if isinstance(v, dict) else v.split(":")[:2]
        if src.startswith((".", "/")):
            out.append((src, dst))
    return out


def host_path_for(svc: dict, container_path: str) -> Path:
    for src, dst in bind_mounts(svc):
        if container_path == dst or container_path.startswith(dst.rstrip("/") + "/"):
            return (ROOT / src / container_path[len(dst):].lstrip("/")).resolve()
    raise AssertionError(f"{container_path} is not bind-mounted")


def settings_fields(cls) -> set[str]:
    return {f"GPUWATCH_{name.upper()}" for name in cls.model_fields}


def ddl_tables() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "schemas/clickhouse").glob("*.sql")))
    return set(re.findall(r"CREATE\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+IF\s+NOT\s+EXISTS\s+\{db\}\.(\w+)", text))


def k8s_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def pod_specs(docs) -> list[tuple[str, dict, dict]]:
    """(workload name, pod template metadata, pod spec) of every Deployment, StatefulSet and DaemonSet."""
    return [(d["metadata"]["name"], d["spec"]["template"]["metadata"], d["spec"]["template"]["spec"])
            for _, d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


# ---------------------------------------------------------------- docker-compose.yml

def test_compose_has_the_stack(compose):
    assert {"kafka", "clickhouse", "grafana", "pipeline", "notify", "agent-sim"} <= set(compose["services"])
    assert compose["services"]["agent"]["profiles"] == ["gpu"], "the real agent needs GPUs: opt in with --profile gpu"


def test_every_service_restarts_and_waits_on_conditions(compose):
    services = compose["services"]
    for name, svc in services.items():
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: no restart policy"
        deps = svc.get("depends_on", {})
        if name not in ("kafka", "clickhouse", "clickhouse-keeper"):
            assert deps, f"{name}: starts before what it needs"
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on undefined service {dep}"
            assert dep != name
            cond = spec.get("condition")
            assert cond in ("service_started", "service_healthy", "service_completed_successfully"), (name, dep)
            if cond == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
    # The agents publish to topics only the pipeline creates (broker auto-creation is off).
    for name in ("agent-sim", "agent"):
        assert services[name]["depends_on"]["pipeline"]["condition"] == "service_healthy"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_files_the_compose_file_references_exist(compose):
    volumes = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        if "build" in svc:
            ctx = ROOT / svc["build"]["context"]
            assert ctx.is_dir(), name
            assert (ctx / svc["build"].get("dockerfile", "Dockerfile")).is_file(), name
        env_files = svc.get("env_file") or []
        for f in [env_files] if isinstance(env_files, str) else env_files:
            assert (ROOT / (f["path"] if isinstance(f, dict) else f)).is_file(), f"{name}: env_file {f}"
        for src, _ in bind_mounts(svc):
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: bind mount {src} does not exist"
        for v in svc.get("volumes") or []:
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if not src.startswith((".", "/")):
                assert src in volumes, f"{name}: named volume {src} is not declared"
    for section in ("configs", "secrets"):
        for key, spec in (compose.get(section) or {}).items():
            if "file" in spec:
                assert (ROOT / spec["file"]).is_file(), f"{section}.{key}: {spec['file']}"


def test_published_host_ports_do_not_collide(compose):
    seen = {}
    for name, svc in compose["services"].items():
        for p in svc.get("ports") or []:
            parts = str(p["published"] if isinstance(p, dict) else p).split("/")[0].split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", f"{name}: {p} is published beyond this host"
            host = parts[-2]   # ip:host:container -> host port
            assert host not in seen, f"{name} and {seen[host]} both publish port {host}"
            seen[host] = name


def test_images_are_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image", "")
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), f"{name}: unpinned image {image!r}"
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", compose["services"]["kafka"]["image"])
    assert re.fullmatch(r"clickhouse/clickhouse-server:\d+\.\d+[\d.]*", compose["services"]["clickhouse"]["image"])
    plugins = compose["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    assert re.search(r"\bgrafana-clickhouse-datasource \d+\.\d+\.\d+\b", plugins), "pin the datasource plugin"


def test_kafka_is_a_single_kraft_node_clients_can_reach(compose):
    kafka = compose["services"]["kafka"]
    env = service_env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "CLUSTER_ID must be a base64 UUID"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == "1", key
    protocols = dict(x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {m[0]: int(m[1]) for m in re.findall(r"(\w+)://[^:,]*:(\d+)", env["KAFKA_LISTENERS"])}
    advertised = dict(re.findall(r"(\w+)://([^,]+)", env["KAFKA_ADVERTISED_LISTENERS"]))
    assert set(listeners) <= set(protocols) and env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    voter_id, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert voter_id == env["KAFKA_NODE_ID"]
    assert int(voter.split(":")[1]) == listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]]
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name in GPUWATCH_SERVICES:
        bootstrap = service_env(compose["services"][name])["GPUWATCH_KAFKA_BOOTSTRAP"]
        assert bootstrap in advertised.values() and bootstrap.split(":")[0] in ("kafka", kafka.get("hostname")), name


def test_gpuwatch_services_pass_only_settings_gpuwatch_reads(compose):
    from agents.config import AgentConfig
    from pipelines.notify.settings import NotifySettings
    from pipelines.settings import CommonSettings, PipelineSettings

    classes = {"pipeline": PipelineSettings, "notify": NotifySettings, "agent-sim": CommonSettings,
               "agent": CommonSettings}
    for name, cls in classes.items():
        svc = compose["services"][name]
        # The real node agent runs the agent-only image, as on every GPU node; the rest the full one.
        image, dockerfile = ((AGENT_IMAGE, "infra/docker/Dockerfile.agent") if name == "agent"
                             else (IMAGE, "infra/docker/Dockerfile"))
        assert svc["image"] == image and svc["build"]["dockerfile"] == dockerfile, name
        env = {k: v for k, v in service_env(svc).items() if k.startswith("GPUWATCH_")}
        agent_keys = {k for k in env if k.startswith("GPUWATCH_AGENT_")}
        unknown = set(env) - agent_keys - settings_fields(cls)
        assert not unknown, f"{name}: gpuwatch ignores {sorted(unknown)} (typo?)"
        for k in agent_keys:
            assert k[len("GPUWATCH_AGENT_"):].split("__")[0].lower() in AgentConfig.model_fields, f"{name}: {k}"
        cls(_env_file=None, **{k[len("GPUWATCH_"):].lower(): v for k, v in env.items() if k not in agent_keys})


def test_pipeline_writes_to_the_compose_clickhouse_as_a_defined_user(compose):
    from pipelines.settings import PipelineSettings

    services = compose["services"]
    pipeline = PipelineSettings(_env_file=None, **{k[9:].lower(): v for k, v in service_env(services["pipeline"]).items()
                                                   if k.startswith("GPUWATCH_")})
    m = re.fullmatch(r"http://(\w+):([^@]+)@clickhouse:8123", pipeline.dsn())
    assert m, pipeline.dsn()
    users = ET.parse(ROOT / "infra/clickhouse/users.d/gpuwatch.xml").getroot().find("users")
    pw_var = users.find(m.group(1)).find("password").get("from_env")
    assert service_env(services["clickhouse"])[pw_var] == m.group(2), "pipeline and server disagree on the password"
    assert pipeline.web_host == "0.0.0.0"
    assert f"{pipeline.web_port}/healthz" in " ".join(services["pipeline"]["healthcheck"]["test"])
    assert any(str(p).endswith(f":{pipeline.web_port}") for p in services["pipeline"]["ports"])


def test_clickhouse_config_and_users(compose):
    ET.parse(ROOT / "infra/clickhouse/config.d/gpuwatch.xml")
    root = ET.parse(ROOT / "infra/clickhouse/users.d/gpuwatch.xml").getroot()
    users, profiles = root.find("users"), root.find("profiles")
    assert {u.tag for u in users} >= {"gpuwatch", "analyst"}
    analyst = users.find("analyst")
    assert profiles.find(analyst.findtext("profile")).findtext("readonly") in ("1", "2")
    assert [q.text for q in analyst.find("grants")] == ["GRANT SELECT ON gpuwatch.*"]
    default = users.find("default")
    assert default is not None and {ip.text for ip in default.find("networks")} <= {"::1", "127.0.0.1"}, \
        "the password-less default user must not be reachable from the network"
    env = service_env(compose["services"]["clickhouse"])
    for user in users:
        if user.tag == "default":
            continue
        var = user.find("password").get("from_env")
        assert env.get(var), f"user {user.tag}: the server gets no {var}, so the password would be empty"


def test_commands_parse_and_their_files_load(compose):
    from agents.config import load_config
    from agents.simulator import Fault, SimulatedCluster
    from pipelines.cli import build_parser
    from pipelines.notify.config import load_config as load_notify_config

    from agents.cli import build_parser as build_agent_parser

    parsers = {name: build_parser() for name in GPUWATCH_SERVICES}
    parsers["agent"] = build_agent_parser()  # the agent-only image's entrypoint is `gpuwatch-agent`
    services = compose["services"]
    args = {name: parsers[name].parse_args([str(a) for a in services[name]["command"]]) for name in GPUWATCH_SERVICES}
    sim = args["agent-sim"]
    assert sim.simulate >= 1 and sim.realtime and sim.fault, "agent-sim: a realtime simulated cluster with a fault"
    SimulatedCluster(nodes=sim.simulate, gpus=sim.gpus, faults=[Fault.parse(f) for f in sim.fault])
    load_notify_config(host_path_for(services["notify"], args["notify"].config))
    load_config(host_path_for(services["agent"], args["agent"].config))


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list[tuple[str, str]]:
    return instructions_of(DOCKERFILE)


def instructions_of(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in map(str.strip, text.splitlines()) if line and not line.startswith("#")]


def dockerignore_allows(rel: str) -> bool:
    return dockerignore_allows_in(ROOT / "infra/docker/Dockerfile.dockerignore", rel)


def dockerignore_allows_in(ignore_file: Path, rel: str) -> bool:
    """Docker's rules, simplified: the last matching pattern wins; a pattern matching a folder covers its content."""
    allowed = True
    for pattern in ignore_file.read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate, pattern = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
        parts = rel.split("/")
        if any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            allowed = negate
    return allowed


def test_dockerfile_builds_the_project_as_a_non_root_user():
    ins = dockerfile_instructions()
    args = dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], a.split()[0]) for k, a in ins if k == "FROM"]
    assert bases and all(b == "python:3.11-slim" for b in bases)
    assert any(k == "RUN" and re.search(r"pip install \.(\s|$)", a) for k, a in ins)
    user = [a for k, a in ins if k == "USER"][-1].split(":")[0]
    assert user not in ("0", "root")
    assert json.loads(next(a for k, a in ins if k == "ENTRYPOINT")) == ["gpuwatch"]


def test_dockerfile_copies_what_pip_install_needs():
    copied = []
    for kind, arg in dockerfile_instructions():
        if kind != "COPY" or "--from=" in arg:
            continue
        srcs = [a for a in shlex.split(arg) if not a.startswith("--")][:-1]
        for src in srcs:
            assert (ROOT / src).exists(), f"COPY {src}: not in the build context"
            assert dockerignore_allows(src.rstrip("/")), f"COPY {src}: excluded by Dockerfile.dockerignore"
            copied.append(src.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["readme"] in copied
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        for pkg in ROOT.glob(pattern.rstrip("*") + "*/__init__.py"):
            top = pkg.parent.relative_to(ROOT).as_posix()
            assert any(c == top or c.startswith(top + "/") for c in copied), f"package {top} is not copied"
    assert not dockerignore_allows(".venv/bin/python") and not dockerignore_allows("var/clickhouse")


# ---------------------------------------------------------------- Kubernetes

def test_k8s_manifests_are_consistent(compose):
    docs = k8s_docs()
    assert {"namespace.yaml", "pipeline.yaml", "notify.yaml", "configmap.yaml", "secret.example.yaml",
            "agent-daemonset.yaml"} <= {f for f, _ in docs}
    namespaces = [d["metadata"]["name"] for _, d in docs if d["kind"] == "Namespace"]
    assert namespaces == ["gpuwatch"]
    objects = {}
    for file, d in docs:
        assert d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), file
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "gpuwatch", f"{file}: {d['kind']} {d['metadata']['name']}"
        objects[(d["kind"], d["metadata"]["name"])] = d
    workloads = pod_specs(docs)
    assert {w for w, _, _ in workloads} == {"gpuwatch-agent", "gpuwatch-pipeline", "gpuwatch-notify"}
    for name, _, spec in workloads:
        for c in spec["containers"]:
            # The node agent runs the agent-only image (tests/infra/test_agent_deployment.py); the rest the full one.
            assert c["image"] == (AGENT_IMAGE if name == "gpuwatch-agent" else IMAGE), name
            assert IMAGE == compose["services"]["pipeline"]["image"]
            for ref in c.get("envFrom", []):
                assert ("ConfigMap", ref["configMapRef"]["name"]) in objects, name
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef") or e.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    kind = "Secret" if "secretKeyRef" in e["valueFrom"] else "ConfigMap"
                    obj = objects.get((kind, ref["name"]))
                    assert obj and ref["key"] in (obj.get("stringData") or obj.get("data")), f"{name}: {e['name']}"
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in c:
                    assert c[probe]["httpGet"]["port"] in ports, f"{name}: {probe}"
        for v in spec.get("volumes", []):
            if "configMap" in v:
                assert ("ConfigMap", v["configMap"]["name"]) in objects, name
            if "persistentVolumeClaim" in v:
                assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in objects, name
    for (kind, name), svc in objects.items():
        if kind != "Service":
            continue
        pods = [(m, s) for _, m, s in workloads if svc["spec"]["selector"].items() <= m["labels"].items()]
        assert pods, f"Service {name} selects no pods"
        port_names = {p["name"] for _, s in pods for c in s["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names, name
    sts = objects[("StatefulSet", "gpuwatch-pipeline")]
    assert objects[("Service", sts["spec"]["serviceName"])]["spec"]["clusterIP"] == "None"


def test_k8s_workloads_pass_only_settings_gpuwatch_reads(tmp_path, monkeypatch):
    from agents.config import load_config_dict
    from pipelines.notify.config import load_config
    from pipelines.notify.settings import NotifySettings
    from pipelines.settings import PipelineSettings

    docs = k8s_docs()
    objects = {(d["kind"], d["metadata"]["name"]): d for _, d in docs}
    shared = set(objects[("ConfigMap", "gpuwatch-config")]["data"])
    pods = {name: spec for name, _, spec in pod_specs(docs)}
    for name, cls in (("gpuwatch-pipeline", PipelineSettings), ("gpuwatch-notify", NotifySettings)):
        c = pods[name]["containers"][0]
        env = {e["name"] for e in c.get("env", [])} | shared
        unknown = {k for k in env if k.startswith("GPUWATCH_")} - settings_fields(cls) - {
            "GPUWATCH_ONCALL_WEBHOOK", "GPUWATCH_ONCALL_WEBHOOK_KEY"}
        assert not unknown, f"{name}: gpuwatch ignores {sorted(unknown)}"
    readiness = pods["gpuwatch-pipeline"]["containers"][0]["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/healthz"
    # The routing file's ${VARS} must all come from the notify container's environment.
    routing = objects[("ConfigMap", "gpuwatch-notify-routing")]["data"]["notify.yaml"]
    notify_env = {e["name"] for e in pods["gpuwatch-notify"]["containers"][0]["env"]}
    assert set(re.findall(r"\$\{(\w+)\}", routing)) <= notify_env
    for var in notify_env:
        monkeypatch.setenv(var, "https://hooks.example/x")
    (tmp_path / "notify.yaml").write_text(routing)
    load_config(tmp_path / "notify.yaml")
    load_config_dict(yaml.safe_load(objects[("ConfigMap", "gpuwatch-agent")]["data"]["agent.yaml"]))


# ---------------------------------------------------------------- Grafana

def grafana_targets() -> list[tuple[str, dict, dict]]:
    """(dashboard file, panel, target) of every query, template variables included as pseudo-panels."""
    out = []
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        for p in d["panels"]:
            for t in p.get("targets", []):
                out.append((path.name, p, t))
        for v in d.get("templating", {}).get("list", []):
            if v["type"] == "query":
                out.append((path.name, {"id": f"var-{v['name']}", "title": f"${v['name']}"},
                            {"refId": "var", "rawSql": v["query"], "format": 1, "datasource": v["datasource"]}))
    return out


def test_grafana_provisioning_matches_the_compose_mounts(compose):
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/clickhouse.yaml").read_text())["datasources"][0]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["uid"]
    assert (ds["jsonData"]["host"], ds["jsonData"]["port"]) == ("clickhouse", 8123)
    users = ET.parse(ROOT / "infra/clickhouse/users.d/gpuwatch.xml").getroot().find("users")
    pw_var = users.find(ds["jsonData"]["username"]).find("password").get("from_env")
    assert ds["secureJsonData"]["password"].strip("${}") == pw_var
    grafana = compose["services"]["grafana"]
    assert pw_var in service_env(grafana)
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yaml").read_text())["providers"][0]
    assert host_path_for(grafana, provider["options"]["path"]) == (GRAFANA / "dashboards").resolve()
    assert host_path_for(grafana, "/etc/grafana/provisioning") == (GRAFANA / "provisioning").resolve()
    assert host_path_for(grafana, service_env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).is_file()


def test_dashboards_parse_and_read_only_real_tables():
    ds_uid = yaml.safe_load((GRAFANA / "provisioning/datasources/clickhouse.yaml").read_text())["datasources"][0]["uid"]
    dashboards = {json.loads(p.read_text())["title"]: json.loads(p.read_text()) for p in DASHBOARDS}
    assert {"GPU fleet", "Alerts", "Node", "Job", "Logs"} <= set(dashboards)
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    assert {"node", "gpu"} <= {v["name"] for v in dashboards["GPU fleet"]["templating"]["list"]}
    tables, read = ddl_tables(), set()
    for file, panel, t in grafana_targets():
        where = f"{file}: {panel['title']}"
        assert t["datasource"]["uid"] == ds_uid, where
        refs = re.findall(r"\b(\w+)\.(\w+)\b(?!\s*\()", re.sub(r"'[^']*'", "''", t["rawSql"]))
        named = {tbl for db, tbl in refs if db == "gpuwatch"}
        assert named, f"{where}: reads no gpuwatch table"
        assert named <= tables, f"{where}: no such table {sorted(named - tables)}"
        read |= named
    assert {"metrics_raw", "features_1m", "alerts", "notification_attempts"} <= read


#: What a template variable stands for when the SQL runs outside Grafana.
SAMPLE_VALUES = {"node": "'node-0'", "gpu": "0, 1", "severity": "'critical', 'warning', 'info'", "job": "'job-a'",
                 "alertname": "'GpuTemperatureHigh', 'GpuEccSingleBitStorm'"}


def expand_macros(sql: str) -> str:
    """The grafana-clickhouse-datasource macros the dashboards use, as the plugin would expand them."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - INTERVAL 1 HOUR", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)", sql)
    sql = sql.replace("$__interval_s", "60")
    assert "$__" not in sql, f"expand this macro in the test too: {sql}"
    sql = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: SAMPLE_VALUES[m.group(1) or m.group(2)], sql)
    return sql


def test_dashboard_sql_runs_against_the_ddl_in_chdb(tmp_path):
    queries, meta = [], {}
    for file, panel, t in grafana_targets():
        qid = f"{file}#{panel['id']}/{t['refId']}"
        queries.append({"id": qid, "sql": expand_macros(t["rawSql"])})
        meta[qid] = (panel["title"], t)
    # The users' GRANTs, parsed by the same ClickHouse: a misspelt privilege fails here, not at server start.
    users = ET.parse(ROOT / "infra/clickhouse/users.d/gpuwatch.xml").getroot().find("users")
    for user in users:
        for i, grant in enumerate(user.findall("grants/query")):
            qid = f"users.d/gpuwatch.xml#{user.tag}/{i}"
            queries.append({"id": qid, "sql": f"EXPLAIN AST {grant.text} TO probe_user"})
            meta[qid] = (f"grant of {user.tag}", {"format": 1})
    proc = subprocess.run([sys.executable, str(RUNNER), str(tmp_path / "chdb")], input=json.dumps(queries),
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    failed = {f"{qid} ({meta[qid][0]})": r["error"] for qid, r in results.items() if r["error"]}
    assert not failed, json.dumps(failed, indent=2)
    by_title = {meta[qid][0]: r for qid, r in results.items()}
    for qid, r in results.items():
        if meta[qid][1]["format"] == 0:   # time series need a time column first
            assert r["types"][0].startswith("DateTime"), f"{meta[qid][0]}: first column is {r['types'][0]}"
    # A user looking at "Currently firing" sees the firing alert, not the one that resolved.
    firing = by_title["Currently firing"]
    assert [row[firing["columns"].index("alert")] for row in firing["rows"]] == ["GpuTemperatureHigh"]
    assert by_title["Firing now"]["rows"] == [[1]]
    assert by_title["GPU temperature"]["rows"], "the sample's temperatures do not show"
    assert sorted(r[0] for r in by_title["$gpu"]["rows"]) == [0, 1]
    # The node, job and logs dashboards show the sample too.
    for title in ("Node GPU temperature", "Node alerts", "Node events and errors", "Loss", "Throughput per node",
                  "Job alerts", "Log lines by level", "Busiest templates", "Recent errors", "$job"):
        assert by_title[title]["rows"], f"{title}: no rows for the sample"
    assert by_title["Busiest templates"]["rows"][0][2] == "step <NUM> loss <NUM>"
    outcomes = by_title["Delivery by receiver"]
    assert outcomes["rows"][0][outcomes["columns"].index("retried")] == 1
