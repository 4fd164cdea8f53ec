"""The top-level layout the design card fixes, and the CI entry point's contract."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_design_card_layout_exists():
    for name in ["infra", "apps", "charts", "environments", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "tests"]:
        assert (ROOT / name).exists(), f"{name} missing from the project root"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
