"""A crafted weight file handed to any of our tools raises a clear error and runs nothing."""
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')


def tool(*parts):
    return os.path.join(REPO_ROOT, 'tools', *parts)


@pytest.mark.parametrize('command', [
    lambda ckpt, tmp: [tool('deploy', 'export_onnx.py'), CONFIG, ckpt, str(tmp / 'out.onnx')],
    lambda ckpt, tmp: [tool('demo', 'image_demo.py'), tool('..', 'README.md'), CONFIG, ckpt],
    lambda ckpt, tmp: [tool('model_converters', 'dsnet2mmdsnet.py'), ckpt, str(tmp / 'out.pth')],
], ids=['export_onnx', 'image_demo', 'dsnet2mmdsnet'])
def test_tool_refuses_crafted_checkpoint(command, crafted_pth, marker, tmp_path):
    result = subprocess.run([sys.executable, *command(crafted_pth, tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert 'UnsafeCheckpointError' in last_line and 'crafted.pth' in last_line
    assert 'posix.system' in last_line
    assert not marker.exists(), 'the crafted pickle ran its code'
