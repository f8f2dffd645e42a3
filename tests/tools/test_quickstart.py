"""The README's first command, tools/quickstart.py: DSNet-tiny learns the embedded digits."""
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_quickstart_reaches_90_percent_held_out_top1(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'quickstart.py')],
                            cwd=tmp_path, capture_output=True, text=True, timeout=1800,
                            env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    top1 = float(re.search(r'^held-out top-1: ([\d.]+)% \(360 images', output, re.M).group(1))
    assert top1 >= 90, output[-3000:]
    checkpoint = re.search(r'^checkpoint: (.+)$', output, re.M).group(1)
    assert os.path.isfile(checkpoint) and (tmp_path / 'data' / 'digits' / 'meta').is_dir()
