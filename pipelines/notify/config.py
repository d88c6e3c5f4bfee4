"""The notifier's YAML: Alertmanager's ``route``, ``receivers`` and ``inhibit_rules``.

A file written for Alertmanager mostly works as is::

    global:
      external_url: https://gpuwatch.example
    route:
      receiver: oncall
      group_by: [alertname, node]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      routes:
        - matchers: ['severity="critical"']
          receiver: pager
          continue: true
    inhibit_rules:
      - source_matchers: ['alertname="NodeDown"']
        target_matchers: ['severity=~"warning|info"']
        equal: [node]
    receivers:
      - name: oncall
        webhook_configs: [{url: "https://hooks.example/x", hmac_secret: "${HOOK_KEY}"}]
      - name: pager
        pagerduty_configs: [{routing_key: "${PD_KEY}"}]

``${VAR}`` in a string is replaced with the environment variable, so secrets
need not live in the file. Errors name the offending key and never echo values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from pipelines.notify.durations import format_duration, parse_duration
from pipelines.notify.matchers import Matcher, MatcherError, parse_matchers


class ConfigError(ValueError):
    """The configuration is wrong; the text says where and how to fix it."""


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """Readable one-line reasons that never include the offending value (it may be a secret)."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: Shortest group_interval / repeat_interval: 0 re-sent every group on every pass of the notifier (about a
#: thousand notifications a second); Alertmanager refuses 0 too.
MIN_INTERVAL_S = 0.1
#: Longest of the three waits: a year (a typo like 99999999999999999999y is not a setting).
MAX_WAIT_S = 366 * 86400.0


def _bounded(name: str, seconds: float) -> float:
    if seconds > MAX_WAIT_S:
        raise ValueError(f"{name} of {format_duration(seconds)} is longer than a year")
    if name != "group_wait" and seconds < MIN_INTERVAL_S:
        raise ValueError(f"{name} must be at least {MIN_INTERVAL_S * 1000:.0f}ms: shorter re-sends every group "
                         "on every pass and floods its receivers")
    return seconds


def _opt_duration(v: Any, info: ValidationInfo) -> float | None:
    return None if v is None else _bounded(info.field_name, parse_duration(v))


def _duration(v: Any, info: ValidationInfo) -> float:
    return _bounded(info.field_name, parse_duration(v))


class RouteConfig(_Strict):
    receiver: str | None = None
    group_by: list[str] | None = None
    matchers: list[str] = Field(default_factory=list)
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    continue_: bool = Field(default=False, alias="continue")
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    routes: list["RouteConfig"] = Field(default_factory=list)

    _dur = field_validator("group_wait", "group_interval", "repeat_interval", mode="before")(_opt_duration)

    @field_validator("matchers", mode="before")
    @classmethod
    def _one_string(cls, v: Any) -> Any:
        return [str(m) for m in parse_matchers(v)] if isinstance(v, str) else v

    def all_matchers(self) -> list[Matcher]:
        out = parse_matchers(self.matchers)
        out += [Matcher.create(k, "=", v) for k, v in self.match.items()]
        out += [Matcher.create(k, "=~", v) for k, v in self.match_re.items()]
        return out


class InhibitRuleConfig(_Strict):
    source_matchers: list[str] = Field(default_factory=list)
    target_matchers: list[str] = Field(default_factory=list)
    source_match: dict[str, str] = Field(default_factory=dict)
    target_match: dict[str, str] = Field(default_factory=dict)
    source_match_re: dict[str, str] = Field(default_factory=dict)
    target_match_re: dict[str, str] = Field(default_factory=dict)
    equal: list[str] = Field(default_factory=list)

    def sources(self) -> list[Matcher]:
        return (parse_matchers(self.source_matchers) + [Matcher.create(k, "=", v) for k, v in self.source_match.items()]
                + [Matcher.create(k, "=~", v) for k, v in self.source_match_re.items()])

    def targets(self) -> list[Matcher]:
        return (parse_matchers(self.target_matchers) + [Matcher.create(k, "=", v) for k, v in self.target_match.items()]
                + [Matcher.create(k, "=~", v) for k, v in self.target_match_re.items()])


class GlobalConfig(_Strict):
    external_url: str = ""
    #: Defaults applied to every route that does not set its own.
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0

    _dur = field_validator("group_wait", "group_interval", "repeat_interval", mode="before")(_duration)


class ReceiverSpec(BaseModel):
    """A named receiver and its validated integrations, ``kind -> [config, ...]``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    name: str
    integrations: list[tuple[str, Any]]


class NotifyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    global_: GlobalConfig = GlobalConfig()
    route: RouteConfig
    receivers: list[ReceiverSpec]
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)

    def describe(self) -> str:
        lines = [f"receivers: {', '.join(r.name for r in self.receivers)}"]

        def walk(r: RouteConfig, depth: int, inherited: dict) -> None:
            opts = {k: getattr(r, k) if getattr(r, k) is not None else inherited[k] for k in inherited}
            ms = ", ".join(str(m) for m in r.all_matchers()) or "*"
            lines.append("  " * depth + f"- {{{ms}}} -> {opts['receiver']} group_by={opts['group_by']} "
                         f"wait={format_duration(opts['group_wait'])} "
                         f"interval={format_duration(opts['group_interval'])} "
                         f"repeat={format_duration(opts['repeat_interval'])}"
                         + (" continue" if r.continue_ else ""))
            for child in r.routes:
                walk(child, depth + 1, opts)

        g = self.global_
        walk(self.route, 0, {"receiver": self.route.receiver, "group_by": self.route.group_by or [],
                             "group_wait": g.group_wait, "group_interval": g.group_interval,
                             "repeat_interval": g.repeat_interval})
        lines.append(f"inhibit_rules: {len(self.inhibit_rules)}")
        return "\n".join(lines)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(obj: Any, path: str = "") -> Any:
    if isinstance(obj, str):
        def sub(m: re.Match) -> str:
            if m.group(1) not in os.environ:
                raise ConfigError(f"{path or 'config'}: environment variable {m.group(1)} is not set")
            return os.environ[m.group(1)]
        return _ENV.sub(sub, obj)
    if isinstance(obj, list):
        return [_expand_env(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    return obj


def parse_config(doc: dict) -> NotifyConfig:
    """Validate a config document (already loaded from YAML).

    Every problem is found in one pass and reported together, one a line, so
    a config is fixed in one edit rather than one run per mistake.
    """
    from pipelines.notify.receivers import PLUGINS

    if not isinstance(doc, dict):
        raise ConfigError("the notify config must be a YAML mapping with route and receivers")
    problems: list[str] = []
    unknown = set(doc) - {"global", "route", "receivers", "inhibit_rules", "templates"}
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}; expected global, route, receivers, "
                        "inhibit_rules")
    doc = _expand_env(doc)

    def checked(where: str, make):
        try:
            return make()
        except ValidationError as e:
            problems.append(describe_validation_error(e, where))
        except (ConfigError, MatcherError, ValueError) as e:
            problems.append(f"{where}: {e}" if where else str(e))
        return None

    glob = checked("global", lambda: GlobalConfig.model_validate(doc.get("global") or {}))
    route = checked("route", lambda: RouteConfig.model_validate(doc.get("route") or {}))
    rules = [checked(f"inhibit_rules[{k}]", lambda r=r: InhibitRuleConfig.model_validate(r))
             for k, r in enumerate(doc.get("inhibit_rules") or [])]
    receivers: list[ReceiverSpec] = []
    for i, rdoc in enumerate(doc.get("receivers") or []):
        if not isinstance(rdoc, dict) or not rdoc.get("name"):
            problems.append(f"receivers[{i}]: every receiver needs a name")
            continue
        name = str(rdoc["name"])
        integrations: list[tuple[str, Any]] = []
        for key, items in rdoc.items():
            if key == "name":
                continue
            kind = key.removesuffix("_configs")
            if not key.endswith("_configs") or kind not in PLUGINS:
                problems.append(f"receivers[{i}] ({name}): unknown key {key!r}; known: "
                                f"{', '.join(sorted(k + '_configs' for k in PLUGINS))}")
                continue
            for j, item in enumerate(items or []):
                made = checked(f"receivers[{i}] ({name}).{key}[{j}]",
                               lambda item=item, kind=kind: PLUGINS[kind].config_model.model_validate(item or {}))
                if made is not None:
                    integrations.append((kind, made))
        receivers.append(ReceiverSpec(name=name, integrations=integrations))
    names = [r.name for r in receivers]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        problems.append(f"receiver names must be unique; repeated: {sorted(dupes)}")
    if route is not None:
        if not route.receiver:
            problems.append("route: the top-level route needs a receiver (the default for unmatched alerts)")
        elif checked("route", route.all_matchers):
            problems.append("route: the top-level route must not have matchers (it catches every alert)")

        def check(r: RouteConfig, where: str) -> None:
            if where != "route":
                checked(where, r.all_matchers)
            if r.receiver and r.receiver not in names:
                problems.append(f"{where}: receiver {r.receiver!r} is not defined under receivers "
                                f"(defined: {', '.join(names) or 'none'})")
            for k, child in enumerate(r.routes):
                check(child, f"{where}.routes[{k}]")

        check(route, "route")
    for k, rule in enumerate(rules):
        if rule is None:
            continue
        if not checked(f"inhibit_rules[{k}]", rule.targets):
            if not problems or not problems[-1].startswith(f"inhibit_rules[{k}]"):
                problems.append(f"inhibit_rules[{k}]: target_matchers are required (else it mutes everything)")
        checked(f"inhibit_rules[{k}]", rule.sources)
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems))
    return NotifyConfig(global_=glob, route=route, receivers=receivers, inhibit_rules=rules)


def load_config(path: str | Path) -> NotifyConfig:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read notify config {p}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"notify config {p} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                          f"{e.start})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"notify config {p} is not valid YAML: {e}") from None
    try:
        return parse_config(doc)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply (a YAML alias that contains itself?)") from None


def quick_config(webhooks: list[str], secret: SecretStr | str | None = None, group_wait: str | None = None,
                 group_interval: str | None = None, external_url: str = "") -> NotifyConfig:
    """The zero-config demo: every incident to the webhooks and the log, at once, grouped by node and
    GPU (one fault is one notification, whatever its other labels); updates of an incident are sent
    too, as the same incident."""
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    hooks = [{"url": u, "send_updates": True, **({"hmac_secret": key} if key else {})} for u in webhooks]
    return parse_config({
        "global": {"external_url": external_url},
        "route": {"receiver": "default", "group_by": ["node", "gpu"],
                  "group_wait": group_wait if group_wait is not None else "0s",
                  "group_interval": group_interval if group_interval is not None else "1s",
                  "repeat_interval": "4h"},
        "receivers": [{"name": "default", "webhook_configs": hooks, "log_configs": [{}]}],
    })
