"""Entry point the Pulumi CLI runs for the bootstrap project (``infra/bootstrap/Pulumi.yaml``).

The repository root is put on ``sys.path`` so ``import infra`` works from a bare checkout.
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra.bootstrap.program import main  # noqa: E402

main()
