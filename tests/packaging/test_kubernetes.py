"""The Kubernetes manifests and the Helm chart: the chart renders (with helm_render.py, as
Debian has no helm), the plain manifests in packaging/kubernetes/ are exactly what it renders
with its defaults, and every object is checked field by field against the Kubernetes API's own
field names, types and required fields, from Debian's python3-kubernetes (the OpenAPI models
of Kubernetes 1.22; autoscaling/v2 is checked against v2beta2, whose fields it kept). Then what
ties the objects together: selectors, ports and probes, the Secret's keys against the config's
${NAME} references, and the ConfigMap's sluice.yaml through `sluice --check` when the daemon is
built (SLUICE_BIN).

  /usr/bin/python3 tests/packaging/test_kubernetes.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml
from kubernetes.client import Configuration
from kubernetes.client import models

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import helm_render  # noqa: E402

SOURCE_DIR = Path(os.environ.get("SOURCE_DIR") or HERE.parent.parent)
CHART = SOURCE_DIR / "packaging" / "helm" / "sluice"
MANIFESTS = SOURCE_DIR / "packaging" / "kubernetes"

# apiVersion/kind -> the model that describes it.
MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object,
              "datetime": str, "date": str}


def required_fields(cls) -> set[str]:
    """The attributes whose setter refuses None: the API's required fields."""
    inst = cls.__new__(cls)
    config = Configuration()
    config.client_side_validation = True
    inst.local_vars_configuration = config
    required = set()
    for attr in cls.openapi_types:
        try:
            setattr(inst, attr, None)
        except ValueError:
            required.add(cls.attribute_map[attr])
    return required


def check_object(value, type_name: str, path: str, problems: list[str]) -> None:
    if type_name.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            check_object(item, type_name[5:-1], f"{path}[{i}]", problems)
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping")
            return
        inner = type_name[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            check_object(v, inner, f"{path}.{k}", problems)
        return
    if type_name in PRIMITIVES:
        expected = PRIMITIVES[type_name]
        if value is None or (expected is int and isinstance(value, bool)) or \
                not isinstance(value, expected):
            problems.append(f"{path}: expected {type_name}, got {value!r}")
        return
    cls = getattr(models, type_name)
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a {type_name} mapping")
        return
    by_field = {field: attr for attr, field in cls.attribute_map.items()}
    for key, item in value.items():
        if key not in by_field:
            problems.append(f"{path}.{key}: not a field of {type_name}")
            continue
        check_object(item, cls.openapi_types[by_field[key]], f"{path}.{key}", problems)
    for field in sorted(required_fields(cls) - set(value)):
        problems.append(f"{path}: {type_name} needs {field}")


def validate(doc: dict) -> list[str]:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in MODELS:
        return [f"{key}: not a kind these manifests should hold"]
    problems: list[str] = []
    check_object(doc, MODELS[key], doc["kind"], problems)
    return problems


def load_manifests() -> dict[str, list[dict]]:
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
            for p in sorted(MANIFESTS.glob("*.yaml")) if p.name != "kustomization.yaml"}


def by_kind(docs: list[dict]) -> dict[str, dict]:
    out = {}
    for d in docs:
        assert d["kind"] not in out, d["kind"]
        out[d["kind"]] = d
    return out


class Chart(unittest.TestCase):
    def setUp(self):
        self.defaults = by_kind(helm_render.render_chart(CHART).documents())
        self.with_hpa = by_kind(
            helm_render.render_chart(CHART, ["autoscaling.enabled=true"]).documents())

    def test_validator_catches_mistakes(self):
        bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
               "spec": {"replicas": "3", "selector": {}, "template": {"spec": {
                   "containers": [{"name": "c", "imagePullPolicy": "IfNotPresent",
                                   "readinessProbe": {"httpGet": {"path": "/readyz"}},
                                   "livenessprobe": {}}]}}}}
        problems = validate(bad)
        for expected in ("Deployment.spec.replicas: expected int",
                         "containers[0].livenessprobe: not a field of V1Container",
                         "httpGet: V1HTTPGetAction needs port"):
            self.assertTrue(any(expected in p for p in problems), (expected, problems))

    def test_every_object_matches_the_api(self):
        for variant in (self.defaults, self.with_hpa):
            for doc in variant.values():
                self.assertEqual(validate(doc), [], doc["kind"])

    def test_plain_manifests_are_the_chart_rendered(self):
        manifests = load_manifests()
        plain = by_kind([d for name, docs in manifests.items() if name != "hpa-example.yaml"
                         for d in docs])
        self.assertEqual(plain, self.defaults,
                         "packaging/kubernetes/ differs from the chart: render it again")
        self.assertEqual(by_kind(manifests["hpa-example.yaml"]),
                         {"HorizontalPodAutoscaler": self.with_hpa["HorizontalPodAutoscaler"]})
        kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
        self.assertEqual(sorted(kustomization["resources"]),
                         sorted(n for n in manifests if n != "hpa-example.yaml"))
        for doc in manifests["hpa-example.yaml"] + [d for docs in manifests.values() for d in docs]:
            self.assertEqual(validate(doc), [])

    def test_objects_fit_together(self):
        d = self.defaults
        deploy = d["Deployment"]
        spec = deploy["spec"]
        pod = spec["template"]["spec"]
        selector = spec["selector"]["matchLabels"]
        labels = spec["template"]["metadata"]["labels"]
        self.assertGreaterEqual(spec["replicas"], 2, "several replicas")
        self.assertLessEqual(selector.items(), labels.items())
        self.assertEqual(d["Service"]["spec"]["selector"], selector)
        self.assertEqual(d["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], selector)
        self.assertEqual(d["Service"]["spec"]["sessionAffinity"], "ClientIP")
        hpa = self.with_hpa["HorizontalPodAutoscaler"]["spec"]
        self.assertEqual(hpa["scaleTargetRef"]["name"], deploy["metadata"]["name"])
        self.assertNotIn("replicas", self.with_hpa["Deployment"]["spec"])

        (container,) = pod["containers"]
        config = yaml.safe_load(d["ConfigMap"]["data"]["sluice.yaml"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(ports, {"postgres": config["listen"]["port"],
                                 "metrics": config["listen"]["metrics_port"]})
        self.assertEqual(config["listen"]["host"], "0.0.0.0")
        self.assertEqual(container["readinessProbe"]["httpGet"],
                         {"path": "/readyz", "port": "metrics"})
        self.assertEqual(container["livenessProbe"]["httpGet"],
                         {"path": "/healthz", "port": "metrics"})
        stop = container["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(stop[0], "sleep")
        self.assertLess(int(stop[1]), pod["terminationGracePeriodSeconds"])
        # Non-root, read-only, the config from /etc/sluice.
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(container["args"], ["-c", "/etc/sluice/sluice.yaml"])
        (mount,) = container["volumeMounts"]
        self.assertEqual(mount["mountPath"], "/etc/sluice")
        (volume,) = pod["volumes"]
        self.assertEqual(volume["configMap"]["name"], d["ConfigMap"]["metadata"]["name"])
        # Every ${NAME} in the config is a key of the Secret the container reads.
        self.assertEqual(container["envFrom"], [{"secretRef": {"name":
                                                               d["Secret"]["metadata"]["name"]}}])
        text = d["ConfigMap"]["data"]["sluice.yaml"]
        self.assertEqual(set(re.findall(r"\$\{(\w+)\}", text)),
                         set(d["Secret"]["stringData"]))
        self.assertTrue(all(v == "" for v in d["Secret"]["stringData"].values()),
                        "the chart ships no password")

    def test_configmap_passes_sluice_check(self):
        binary = os.environ.get("SLUICE_BIN") or str(SOURCE_DIR / "build" / "sluice")
        if not os.access(binary, os.X_OK):
            self.skipTest(f"{binary} not built")
        d = self.defaults
        env = {"PATH": "/usr/bin:/bin"}
        env.update({k: f"pw-{k.lower()}" for k in d["Secret"]["stringData"]})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sluice.yaml"
            path.write_text(d["ConfigMap"]["data"]["sluice.yaml"])
            r = subprocess.run([binary, "--check", "-c", str(path)], env=env, timeout=30,
                               capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_values_change_the_output(self):
        r = helm_render.render_chart(CHART, ["replicaCount=5", "config.listen.port=7000",
                                             "secret.create=false", "secret.name=mine"],
                                     release="pg")
        d = by_kind(r.documents())
        self.assertNotIn("Secret", d)
        self.assertEqual(d["Deployment"]["metadata"]["name"], "pg")
        self.assertEqual(d["Deployment"]["spec"]["replicas"], 5)
        self.assertEqual(d["Service"]["spec"]["ports"][0]["port"], 7000)
        (container,) = d["Deployment"]["spec"]["template"]["spec"]["containers"]
        self.assertEqual(container["envFrom"][0]["secretRef"]["name"], "mine")

    def test_renderer_refuses_what_it_does_not_know(self):
        with self.assertRaises(helm_render.TemplateError):
            helm_render.parse(helm_render.tokenize("{{ with .Values }}x{{ end }}", "t"), "t", {})
        renderer = helm_render.render_chart(CHART)
        with self.assertRaises(helm_render.TemplateError):
            renderer.pipeline(".Values.image | sha256sum", renderer.root, {})


if __name__ == "__main__":
    unittest.main(verbosity=2)
