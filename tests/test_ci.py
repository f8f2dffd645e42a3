"""CI runs exactly the test command that README.md gives, on both tested stacks."""
import os
import re

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*parts):
    with open(os.path.join(REPO_ROOT, *parts)) as file:
        return file.read()


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r'```bash\n(.*?)\n```', read('README.md'), flags=re.S)
    readme_command = blocks[1]  # the second opening command
    ci_command = read('.ci', 'run').rstrip('\n').splitlines()[-1]
    assert ci_command == readme_command
    assert 'bash tools/install.sh --tests --legacy && .venv-legacy/bin/python -m pytest' in \
        readme_command
