"""Lower layers never import higher ones (issue 13, item 2): importing a
package loads none of the packages above it (docs/architecture.md)."""
import subprocess
import sys

import pytest

from tests.utils import REPO_ROOT

#: Each package and the packages it may load (besides registry, version).
ALLOWED = {
    'mmunseg.utils': {'mmunseg.utils'},
    'mmunseg.models': {'mmunseg.utils', 'mmunseg.models'},
    'mmunseg.datasets':
    {'mmunseg.utils', 'mmunseg.models', 'mmunseg.datasets'},
    'mmunseg.defenses':
    {'mmunseg.utils', 'mmunseg.models', 'mmunseg.defenses'},
}


@pytest.mark.parametrize('package', sorted(ALLOWED))
def test_a_package_loads_no_higher_layer(package):
    # A fresh interpreter: this one has every package loaded already.
    code = (f'import sys, {package}; print(*sorted({{".".join(m.split(".")'
            '[:2]) for m in sys.modules if m.startswith("mmunseg.")}))')
    loaded = subprocess.run([sys.executable, '-c', code],
                            cwd=REPO_ROOT,
                            check=True,
                            capture_output=True,
                            text=True).stdout.split()
    extra = set(loaded) - ALLOWED[package] - {
        'mmunseg.registry', 'mmunseg.version'
    }
    assert not extra, f'{package} imports {sorted(extra)}'
