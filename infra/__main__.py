"""Entry point the Pulumi CLI runs (``Pulumi.yaml``: ``main: infra/``).

The repository root is put on ``sys.path`` so ``import infra`` works whether the
project is installed in the virtualenv (``uv sync``) or run from a bare checkout.
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra.program import main  # noqa: E402

main()
