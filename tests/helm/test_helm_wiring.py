"""The rendered objects fit together: Services, selectors, ports, secrets, flags and hooks."""

from __future__ import annotations

import base64
import json
from typing import Any

import helm_python
import pytest

from tests.helm.helm_render import CHART, Rendered, render_chart

Manifest = dict[str, Any]


def _pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def _pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _container(workload: Manifest, name: str) -> Manifest:
    return next(c for c in _pod_spec(workload)["containers"] if c["name"] == name)


def _flag(container: Manifest, flag: str) -> str | None:
    args: list[str] = container.get("args", [])
    return args[args.index(flag) + 1] if flag in args else None


def _model_workloads(rendered: Rendered) -> list[Manifest]:
    return [
        w
        for w in rendered.workloads()
        if w["metadata"]["labels"].get("app.kubernetes.io/component") == "model"
    ]


def _secret_keys(rendered: Rendered) -> dict[str, set[str]]:
    keys = {name: set(data) for name, data in rendered.secret_data().items()}
    for hook in rendered.of_kind("Secret"):
        keys.setdefault(hook["metadata"]["name"], set())
    return keys


def _existing_secret_names(values: dict[str, Any]) -> set[str]:
    names = {
        values.get("auth", {}).get("existingSecret"),
        values.get("database", {}).get("existingSecret"),
        values.get("database", {}).get("passwordSecret", {}).get("name"),
        values.get("webhook", {}).get("existingSecret"),
    }
    return {n for n in names if n}


def test_the_model_service_targets_the_champion_sidecar_data_port(rendered: Rendered) -> None:
    model_services = [
        s
        for s in rendered.of_kind("Service")
        if s["spec"]["selector"].get("driftloop.io/variant") == "champion"
    ]
    assert len(model_services) == len(rendered.values.get("models", {}))
    for service in model_services:
        pods = [
            w
            for w in _model_workloads(rendered)
            if _matches(service["spec"]["selector"], _pod_labels(w))
        ]
        assert len(pods) == 1, f"{service['metadata']['name']} selects {len(pods)} workloads"
        (port,) = service["spec"]["ports"]
        sidecar = _container(pods[0], "sidecar")
        by_name = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
        assert port["targetPort"] in by_name, "the Service port is not a sidecar port"
        assert str(by_name[port["targetPort"]]) == _flag(sidecar, "--port")
        bento_ports = {p["name"] for p in _container(pods[0], "bento")["ports"]}
        assert port["targetPort"] not in bento_ports


def test_the_champion_sidecar_proxies_to_its_own_bento(rendered: Rendered) -> None:
    for workload in _model_workloads(rendered):
        if _pod_labels(workload)["driftloop.io/variant"] != "champion":
            continue
        bento = _container(workload, "bento")
        sidecar = _container(workload, "sidecar")
        assert (
            _flag(sidecar, "--champion") == f"http://127.0.0.1:{bento['ports'][0]['containerPort']}"
        )
        assert _flag(sidecar, "--model") == _pod_labels(workload)["driftloop.io/model"]
        assert _flag(sidecar, "--spool-dir") in {m["mountPath"] for m in sidecar["volumeMounts"]}


def test_a_challenger_gets_its_own_service_and_the_champion_sidecar_its_url(
    rendered: Rendered,
) -> None:
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    challengers = [
        w
        for w in _model_workloads(rendered)
        if _pod_labels(w)["driftloop.io/variant"] == "challenger"
    ]
    for challenger in challengers:
        model = _pod_labels(challenger)["driftloop.io/model"]
        assert [c["name"] for c in _pod_spec(challenger)["containers"]] == ["bento"]
        champion = next(
            w
            for w in _model_workloads(rendered)
            if _pod_labels(w)["driftloop.io/model"] == model
            and _pod_labels(w)["driftloop.io/variant"] == "champion"
        )
        url = _flag(_container(champion, "sidecar"), "--challenger")
        assert url is not None
        host, port = url.removeprefix("http://").split(":")
        service = services[host]
        assert _matches(service["spec"]["selector"], _pod_labels(challenger))
        (service_port,) = service["spec"]["ports"]
        assert service_port["port"] == int(port)
        assert service_port["targetPort"] == "bento"
        mode = _flag(_container(champion, "sidecar"), "--mode")
        assert mode in {"canary", "ab", "shadow"}
    champions = [
        w
        for w in _model_workloads(rendered)
        if _pod_labels(w)["driftloop.io/variant"] == "champion"
    ]
    with_challenger = [w for w in champions if _flag(_container(w, "sidecar"), "--challenger")]
    assert len(with_challenger) == len(challengers)


def test_sidecars_report_to_the_monitor_with_the_ingest_token(rendered: Rendered) -> None:
    monitors = [
        s for s in rendered.of_kind("Service") if s["metadata"]["name"].endswith("-monitor")
    ]
    secrets = rendered.secret_data()
    for workload in _model_workloads(rendered):
        if _pod_labels(workload)["driftloop.io/variant"] != "champion":
            continue
        sidecar = _container(workload, "sidecar")
        url = _flag(sidecar, "--monitor")
        if monitors:
            (monitor,) = monitors
            name, port = monitor["metadata"]["name"], monitor["spec"]["ports"][0]["port"]
            assert url == f"http://{name}.ml.svc:{port}"
        else:
            assert url == rendered.values["modelDefaults"]["sidecar"]["monitorUrl"]
        (token,) = [e for e in sidecar["env"] if e["name"] == "DRIFTLOOP_MONITOR_TOKEN"]
        ref = token["valueFrom"]["secretKeyRef"]
        if ref["name"] in secrets:
            tokens = json.loads(secrets[ref["name"]]["tokens"])
            assert tokens[secrets[ref["name"]][ref["key"]]] == ["ingest"]
        else:
            assert ref["name"] == rendered.values["auth"]["existingSecret"]


def test_every_secret_reference_resolves(rendered: Rendered) -> None:
    keys = _secret_keys(rendered)
    existing = _existing_secret_names(rendered.values)
    for workload in [*rendered.workloads(), *rendered.of_kind("Pod")]:
        spec = workload["spec"] if workload["kind"] == "Pod" else _pod_spec(workload)
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                where = f"{workload['metadata']['name']}/{container['name']}/{env['name']}"
                if ref["name"] in existing:
                    continue
                assert ref["name"] in keys, f"{where}: no Secret {ref['name']}"
                assert ref["key"] in keys[ref["name"]], f"{where}: no key {ref['key']}"


def test_no_secret_reaches_a_config_map_or_a_plain_env_value(rendered: Rendered) -> None:
    secret_values = {v for data in rendered.secret_data().values() for v in data.values()}
    values = rendered.values
    secret_values |= {
        values.get("database", {}).get("url"),
        values.get("database", {}).get("password"),
        values.get("postgresql", {}).get("password"),
        values.get("webhook", {}).get("secret"),
        *values.get("auth", {}).get("extraTokens", {}),
    }
    secret_values = {v for v in secret_values if v}
    config_text = [
        str(value) for cm in rendered.of_kind("ConfigMap") for value in cm.get("data", {}).values()
    ]
    env_values = [
        str(env.get("value", ""))
        for w in rendered.workloads()
        for c in _pod_spec(w)["containers"]
        for env in c.get("env", [])
    ]
    for secret in secret_values:
        assert not any(secret in text for text in config_text), "a secret is in a ConfigMap"
        assert not any(secret in text for text in env_values), "a secret is a plain env value"
    for cm in rendered.of_kind("ConfigMap"):
        for key in cm.get("data", {}):
            assert not any(
                word in key.upper() for word in ("TOKEN", "SECRET", "PASSWORD", "DATABASE_URL")
            )


def test_generated_credentials_are_strong_and_consistent(rendered: Rendered) -> None:
    secret = rendered.secret_data().get("dl-driftloop")
    if secret is None:
        pytest.skip("every credential comes from an existing Secret")
    if "tokens" in secret:
        tokens = json.loads(secret["tokens"])
        for key, scope in (
            ("ingest-token", "ingest"),
            ("feedback-token", "feedback"),
            ("admin-token", "admin"),
        ):
            assert tokens[secret[key]] == [scope]
            given = rendered.values.get("auth", {}).get(key.replace("-token", "Token"))
            assert secret[key] == given if given else len(secret[key]) == 40
        for token, scopes in rendered.values.get("auth", {}).get("extraTokens", {}).items():
            assert tokens[token] == scopes
    if "webhook-secret" in secret:
        assert secret["webhook-secret"].startswith("whsec_")
        assert len(base64.b64decode(secret["webhook-secret"].removeprefix("whsec_"))) >= 24


def test_monitor_gets_database_tokens_and_settings(rendered: Rendered) -> None:
    deployments = [
        d for d in rendered.of_kind("Deployment") if d["metadata"]["name"] == "dl-driftloop-monitor"
    ]
    if not deployments:
        assert rendered.values["monitor"]["enabled"] is False
        return
    (monitor,) = deployments
    container = _container(monitor, "monitor")
    assert container["args"][:3] == ["monitor", "--host", "0.0.0.0"]
    env = {e["name"]: e for e in container["env"]}
    assert {"DRIFTLOOP_DATABASE_URL", "DRIFTLOOP_TOKENS"} <= set(env)
    url = env["DRIFTLOOP_DATABASE_URL"]
    assert "valueFrom" in url or url["value"].startswith("postgresql+psycopg://")
    (config,) = container["envFrom"][:1]
    cm = rendered.get("ConfigMap", config["configMapRef"]["name"])
    settings = rendered.values.get("monitor", {}).get("settings", {})
    assert cm["data"]["DRIFTLOOP_RETENTION_DAYS"] == str(settings.get("retention_days", 30))
    assert {p["name"] for p in container["ports"]} >= {"http"}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_probes_and_policies_name_ports_that_exist(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        for container in _pod_spec(workload)["containers"]:
            names = {p["name"] for p in container.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str):
                    assert port in names, (
                        f"{workload['metadata']['name']}/{container['name']} {probe}"
                    )
    for policy in rendered.of_kind("NetworkPolicy"):
        selected = [
            w
            for w in rendered.workloads()
            if _matches(policy["spec"]["podSelector"]["matchLabels"], _pod_labels(w))
        ]
        ports = {
            p["name"]
            for w in selected
            for c in _pod_spec(w)["containers"]
            for p in c.get("ports", [])
        }
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                assert port["port"] in ports, (
                    f"{policy['metadata']['name']}: no pod port {port['port']}"
                )


def test_disruption_budgets_and_autoscalers_match_their_workloads(rendered: Rendered) -> None:
    by_name = {(w["kind"], w["metadata"]["name"]): w for w in rendered.workloads()}
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        selected = [
            w
            for w in rendered.workloads()
            if _matches(pdb["spec"]["selector"]["matchLabels"], _pod_labels(w))
        ]
        assert len(selected) == 1, pdb["metadata"]["name"]
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        workload = by_name[(target["kind"], target["name"])]
        assert "replicas" not in workload["spec"], "an autoscaled workload must not pin replicas"
        assert hpa["spec"]["metrics"], "an HPA without metrics"
        for container in _pod_spec(workload)["containers"]:
            assert "cpu" in container["resources"]["requests"]


def test_migrations_run_before_the_new_version_serves(rendered: Rendered) -> None:
    jobs = rendered.of_kind("Job")
    values = rendered.values
    if (
        values.get("migrations", {}).get("enabled") is False
        or values.get("monitor", {}).get("enabled") is False
    ):
        assert jobs == []
        return
    (job,) = jobs
    container = _container(job, "migrations")
    assert container["args"] == ["db", "upgrade"]
    env = {e["name"] for e in container["env"]}
    assert "DRIFTLOOP_DATABASE_URL" in env
    annotations = job["metadata"].get("annotations", {})
    bundled = values.get("postgresql", {}).get("enabled", True)
    if bundled:
        # The bundled database only exists once the release's resources do: no hook.
        assert "helm.sh/hook" not in annotations
        assert annotations["argocd.argoproj.io/hook"] == "Sync"
        assert job["metadata"]["name"].endswith("-1")
    else:
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert _pod_spec(job)["serviceAccountName"] != "dl-driftloop", "hook SA would not exist yet"
        for secret in rendered.of_kind("Secret"):
            refs = [
                e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
            ]
            if secret["metadata"]["name"] in refs:
                hook = secret["metadata"].get("annotations", {}).get("helm.sh/hook", "")
                assert "pre-install" in hook, "the hook reads a Secret that is not there yet"
                assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
                    annotations["helm.sh/hook-weight"]
                )


def test_monitoring_objects_carry_the_prometheus_release_label(rendered: Rendered) -> None:
    release = rendered.values.get("metrics", {}).get("prometheusRelease", "kube-prometheus-stack")
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        for obj in rendered.of_kind(kind):
            assert obj["metadata"]["labels"]["release"] == release
    for monitor in rendered.of_kind("ServiceMonitor"):
        services = [
            s
            for s in rendered.of_kind("Service")
            if _matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(services) == 1
        assert monitor["spec"]["endpoints"][0]["port"] in {
            p["name"] for p in services[0]["spec"]["ports"]
        }
    for pod_monitor in rendered.of_kind("PodMonitor"):
        selected = [
            w
            for w in _model_workloads(rendered)
            if _matches(pod_monitor["spec"]["selector"]["matchLabels"], _pod_labels(w))
        ]
        assert selected
        ports = {
            p["name"] for w in selected for c in _pod_spec(w)["containers"] for p in c["ports"]
        }
        assert {e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]} <= ports
    dashboards = rendered.values.get("metrics", {}).get("dashboards", {})
    for cm in rendered.of_kind("ConfigMap"):
        if "dashboard" in cm["metadata"]["name"]:
            assert cm["metadata"]["labels"][
                dashboards.get("label", "grafana_dashboard")
            ] == dashboards.get("labelValue", "1")
            (body,) = cm["data"].values()
            assert json.loads(body)["uid"]


def test_notes_tell_where_things_are(rendered: Rendered) -> None:
    notes = rendered.notes
    if rendered.values.get("monitor", {}).get("enabled", True):
        assert "http://dl-driftloop-monitor.ml.svc:8080" in notes
    for name in rendered.values.get("models", {}):
        assert f"http://dl-driftloop-{name}.ml.svc:" in notes
    assert ("bundled single-instance PostgreSQL" in notes) == rendered.values.get(
        "postgresql", {}
    ).get("enabled", True)


def test_the_readme_install_command_renders() -> None:
    values = helm_python.parse_set_string(
        "models.iris.champion.image.repository=registry.example.com/iris,"
        "models.iris.champion.image.tag=3"
    )
    rendered = render_chart(CHART, values)
    deployment = rendered.get("Deployment", "dl-driftloop-iris")
    assert _container(deployment, "bento")["image"] == "registry.example.com/iris:3"


def test_ingresses_reach_the_monitor_or_the_model_sidecar(rendered: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    for ingress in rendered.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services[backend["name"]]
                (port,) = [
                    p for p in service["spec"]["ports"] if p["port"] == backend["port"]["number"]
                ]
                component = service["metadata"]["labels"]["app.kubernetes.io/component"]
                assert component in {"monitor", "model"}
                assert port["targetPort"] == "http"
                assert service["spec"]["selector"].get("driftloop.io/variant") in {None, "champion"}
