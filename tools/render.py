"""Render each Helm release of a stack for review: ``build/rendered/<stack>/<release>.yaml``.

Usage::

    python -m tools.render --stack prod                 # what `make render STACK=prod` runs
    python -m tools.render --stack dev --source settings --out /tmp/rendered
    python -m tools.render --stack prod --preview-json build/preview-prod.json

For every release the Pulumi program would deploy, this runs the real
``helm template <release> charts/print-service -f <values> --namespace <ns>
--kube-version <cluster version>`` with the values the program computes, and
writes the manifests to ``<out>/<stack>/<release>.yaml`` (stale ``*.yaml``
files of that stack are removed first, so the directory is exactly the set of
releases). The output is deterministic: the same tree renders byte-identical
files (the preview-diff tool diffs two renders).

Where the values come from (``--source``):

- ``preview``: the offline preview (``python -m tools.preview --stack X
  --format json``, the program under Pulumi mocks); each
  ``kubernetes:helm.sh/v3:Release`` resource's ``values``, ``name`` and
  ``namespace`` inputs -- exactly what the program computes;
- ``settings``: ``infra.releases.release_values`` over the stack settings
  (``stack_outputs_from_settings``) and ``environments/<stack>/<service>.yaml``
  -- the same pure function the program calls, without the engine;
- ``auto`` (default): ``preview`` when ``tools/preview.py`` exists, else ``settings``.

``--preview-json FILE`` reads the preview document from FILE (the output of
``make -s preview STACK=<stack> FORMAT=json``) instead of running the preview
again: the preview diff (tools/preview_diff.py) evaluates the program once per
side and hands its document over.

An image the program builds at ``pulumi up`` (infra/images.py) has no digest
before that: the preview shows it as ``[unknown]`` and the settings know
none (only a digest pinned in ``print-platform:images`` is known). Such a
release is rendered with the obvious placeholder digest ``sha256:000...0``;
its file says so in a leading comment and stderr names the service, so chart
changes stay reviewable (the placeholder is the same on both sides of a
preview diff, so it never shows as a change); ``--skip-unconfigured`` skips
it instead.

Exit codes: 0 rendered; 1 a preview, values or helm step failed (the message
names the release and the step); 2 bad arguments.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tools/render.py` as well as `python -m tools.render`
    sys.path.insert(0, str(ROOT))

from infra import releases  # noqa: E402
from tools import install_helm  # noqa: E402

#: The Kubernetes version the chart is rendered and validated for: the GKE
#: clusters' minor version (Capabilities.KubeVersion in the templates).
KUBE_VERSION = "1.33.0"
#: Default output root (relative to the repository root).
DEFAULT_OUT = ROOT / "build" / "rendered"
#: Digest rendered for an image not built yet (the program builds it at `pulumi up`
#: and the preview shows its digest as unknown), so the manifests can still be
#: reviewed and diffed; obviously not a real image.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
#: How the offline preview shows a value computed at `pulumi up` (tools/mock_runtime.py).
UNKNOWN_VALUE = "[unknown]"
#: The Pulumi type token of a Helm release in the preview JSON (docs/seams.md).
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"


class RenderError(RuntimeError):
    """A step of rendering failed; the message names the release and the step."""


@dataclass(frozen=True)
class ReleaseSpec:
    """One release to render: Helm release name, namespace and complete values (JSON-serialisable)."""

    name: str
    namespace: str
    values: dict[str, Any]
    #: True when the image digest is PLACEHOLDER_DIGEST (the image is built at `pulumi up`).
    placeholder: bool = False


def releases_from_settings(stack: str, root: Path = ROOT,
                           placeholder_digest: Optional[str] = None) -> tuple[list[ReleaseSpec], list[str]]:
    """Release specs computed by ``infra.releases.release_values`` from the stack settings.

    Args:
        placeholder_digest: for a service without a pinned digest in the stack
            config (its image is built at ``pulumi up``): None skips it, a
            digest renders it with that digest (``ReleaseSpec.placeholder`` True).

    Returns:
        (specs in deployment order, notes about services skipped or given the placeholder).

    Raises:
        infra.settings.ConfigError / infra.releases.ReleaseValuesError: bad
            stack config or environment values (messages name file and key).
    """
    from infra.settings import load_stack_settings

    from tools.mock_runtime import project_number

    settings = load_stack_settings(stack, root)
    # The project number (IAP audience) is not in the stack config: offline, use the mock
    # runtime's stand-in, so these values equal the offline preview's.
    outputs = releases.stack_outputs_from_settings(settings, project_number(settings.project))
    checksum = releases.chart_checksum()
    specs: list[ReleaseSpec] = []
    notes: list[str] = []
    for service in releases.SERVICES:
        missing = service not in outputs.image_digests
        where = "its image is built by `pulumi up` (no digest pinned in print-platform:images)"
        if missing and placeholder_digest is None:
            notes.append(f"{service}: not rendered: {where}")
            continue
        service_outputs = outputs
        if missing:
            notes.append(f"{service}: {where}: rendered with the placeholder digest {placeholder_digest}")
            service_outputs = replace(outputs, image_digests={**outputs.image_digests, service: placeholder_digest})
        env_values = releases.load_environment_values(stack, service, root)
        values = releases.release_values(service, env_values, service_outputs, checksum)
        specs.append(ReleaseSpec(service, settings.names.namespace, values, placeholder=missing))
    return specs, notes


def run_preview(stack: str, root: Path = ROOT, python: str = sys.executable) -> dict[str, Any]:
    """The offline preview document of ``stack`` (``python -m tools.preview --format json``, the program under mocks).

    Raises:
        RenderError: the preview failed or printed no JSON object.
    """
    cmd = [python, "-m", "tools.preview", "--stack", stack, "--format", "json"]
    if root.resolve() != ROOT:
        cmd += ["--root", str(root)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"preview of {stack!r} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    try:
        document = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RenderError(f"preview of {stack!r} did not print JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RenderError(f"preview of {stack!r} printed a {type(document).__name__}, not a JSON object")
    return document


def load_preview_document(path: Path, stack: str) -> dict[str, Any]:
    """A preview document saved to ``path`` (``--preview-json``), checked to be ``stack``'s.

    Raises:
        RenderError: unreadable, not a JSON object, or the preview of another stack.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RenderError(f"--preview-json {path}: not a readable JSON preview document: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise RenderError(f"--preview-json {path}: not a preview document (a JSON object with a 'resources' list)")
    if document.get("stack") not in (None, stack):
        raise RenderError(f"--preview-json {path}: the preview of stack {document['stack']!r}, not of {stack!r}")
    return document


def releases_from_preview(stack: str, root: Path = ROOT, python: str = sys.executable,
                          document: Optional[dict[str, Any]] = None) -> list[ReleaseSpec]:
    """Release specs read from the offline preview's JSON (the program under mocks).

    Args:
        document: an already computed preview document of ``stack``; None runs the preview.

    Raises:
        RenderError: the preview failed, printed no JSON, or a Release lacks
            a name / namespace / values input.
    """
    if document is None:
        document = run_preview(stack, root, python)
    specs = []
    for resource in document.get("resources", []):
        if resource.get("type") != RELEASE_TYPE:
            continue
        inputs = resource.get("inputs") or {}
        name, namespace, values = inputs.get("name"), inputs.get("namespace"), inputs.get("values")
        if not (isinstance(name, str) and isinstance(namespace, str) and isinstance(values, dict)):
            raise RenderError(f"preview of {stack!r}: Release {resource.get('urn')} lacks a known name, "
                              f"namespace or values input")
        image = values.get("image") if isinstance(values.get("image"), dict) else {}
        if image.get("digest") == UNKNOWN_VALUE:
            # Built at `pulumi up`: render with the marked placeholder (render() says so).
            values = {**values, "image": {**image, "digest": PLACEHOLDER_DIGEST}}
            specs.append(ReleaseSpec(name, namespace, values, placeholder=True))
            continue
        specs.append(ReleaseSpec(name, namespace, values))
    return specs


def helm_template(spec: ReleaseSpec, helm: Path, chart_dir: Path = releases.CHART_DIR,
                  kube_version: str = KUBE_VERSION) -> str:
    """Run ``helm template`` for one release; returns the manifests (multi-document YAML).

    Raises:
        RenderError: helm exited non-zero (its stderr, e.g. a schema violation, is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        values_file = Path(tmp) / "values.json"
        values_file.write_text(json.dumps(spec.values, sort_keys=True, indent=2))
        cmd = [str(helm), "template", spec.name, str(chart_dir), "--namespace", spec.namespace,
               "--kube-version", kube_version, "-f", str(values_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"{spec.name}: helm template failed:\n{proc.stderr.strip()}")
    return proc.stdout


def render(stack: str, out: Path = DEFAULT_OUT, source: str = "auto", root: Path = ROOT,
           helm: Optional[Path] = None, placeholders: bool = True,
           preview_document: Optional[dict[str, Any]] = None) -> tuple[list[Path], list[str]]:
    """Render every release of ``stack`` into ``out/<stack>/<release>.yaml``.

    A release whose image is built at ``pulumi up`` (digest unknown in the
    preview, absent from the settings) is rendered with
    :data:`PLACEHOLDER_DIGEST`, and its file starts with a comment saying so;
    ``placeholders=False`` skips it instead.
    ``preview_document``: the stack's preview document, already computed (the
    ``preview`` source then does not run the preview again).

    Returns:
        (written files, notes about placeholder or skipped services).

    Raises:
        RenderError: a preview or helm step failed, or the preview lacks a
            release the stack config has an image for.
    """
    if source == "auto":
        source = "preview" if preview_document is not None or (ROOT / "tools" / "preview.py").is_file() \
            else "settings"
    if source not in ("preview", "settings"):
        raise RenderError(f"unknown --source {source!r}: expected auto, preview or settings")
    if preview_document is not None and source != "preview":
        raise RenderError("a preview document was given, but the values source is 'settings'")
    # The settings path also validates the environment files and handles services without an image.
    specs, notes = releases_from_settings(stack, root, PLACEHOLDER_DIGEST if placeholders else None)
    if source == "preview":
        from_preview = {spec.name: spec for spec in releases_from_preview(stack, root, document=preview_document)}
        kept = []
        for spec in specs:
            if spec.name not in from_preview:
                raise RenderError(f"{spec.name}: the preview of {stack!r} has no {RELEASE_TYPE} for it")
            chosen = from_preview[spec.name]
            if chosen.placeholder and not placeholders:
                continue
            kept.append(chosen)
        specs = kept
    if not placeholders:
        specs = [spec for spec in specs if not spec.placeholder]
    helm = helm or install_helm.helm_path()
    target = out / stack
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*.yaml"):
        stale.unlink()
    written = []
    for spec in specs:
        path = target / f"{spec.name}.yaml"
        header = ""
        if spec.placeholder:
            header = (f"# {spec.name}: image built by `pulumi up` of stack {stack!r} (digest not known yet);\n"
                      f"# rendered with the placeholder {PLACEHOLDER_DIGEST}.\n")
        path.write_text(header + helm_template(spec, helm))
        written.append(path)
    return written, notes


def main(argv: Optional[list[str]] = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name (dev, prod)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (default build/rendered)")
    parser.add_argument("--source", choices=("auto", "preview", "settings"), default="auto",
                        help="where the release values come from (default: auto)")
    parser.add_argument("--skip-unconfigured", action="store_true",
                        help="skip releases whose image is built at `pulumi up` instead of rendering the placeholder")
    parser.add_argument("--preview-json", type=Path, metavar="FILE",
                        help="read the release values from this offline preview document (the JSON of "
                             "`make -s preview STACK=<stack> FORMAT=json`) instead of running the preview")
    args = parser.parse_args(argv)
    if args.preview_json is not None and args.source == "settings":
        parser.error("--preview-json needs --source preview or auto (it is the preview's document)")
    try:
        document = load_preview_document(args.preview_json, args.stack) if args.preview_json else None
        written, notes = render(args.stack, args.out, args.source, placeholders=not args.skip_unconfigured,
                                preview_document=document)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as one message, exit 1
        print(f"render: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"render: {note}", file=sys.stderr)
    for path in written:
        try:
            shown = path.relative_to(ROOT)
        except ValueError:
            shown = path
        print(f"rendered {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
