"""Style is part of the test suite: flake8 and isort, with setup.cfg's settings, over the package,
the tools, the tests and the configs. A failure shows the tools' own report (isort's as a diff)."""
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED = ('mmdsnet', 'tools', 'tests', 'configs')


@pytest.mark.parametrize('command', [['flake8'], ['isort', '--check-only', '--diff']],
                         ids=['flake8', 'isort'])
def test_style(command):
    # Both tools read their settings from setup.cfg in the folder they run in.
    result = subprocess.run([sys.executable, '-m', *command, *CHECKED], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, (f'{" ".join(command)} reports (tools/install.sh --tests '
                                    f'installs it):\n{report}')
