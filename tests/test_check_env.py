"""``python -m mmdsnet.check_env`` and the import-time check: what is found, what is missing."""
import importlib.metadata
import subprocess
import sys

import pytest

from mmdsnet import requirements

REQUIRED = [distribution for distribution, _ in requirements.REQUIRED]


def test_check_env_reports_this_environment(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'mmdsnet.check_env'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ''  # no warning from running a module the package imported
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()
            if line.startswith('  ') and len(line.split()) >= 3}
    for distribution in REQUIRED:
        assert rows[distribution][0] == importlib.metadata.version(distribution), distribution
    assert rows['torch'][1] == '>=2.1' and rows['mmcv'][1] == '>=2.0.0,<2.2.0'
    assert "mmcv's compiled ops: they load and compute" in result.stdout
    assert result.stdout.rstrip().endswith("Everything mmdsnet needs is installed and mmcv's "
                                           'ops work.')


def test_missing_and_too_old_packages_are_named_with_their_fix(monkeypatch):
    versions = {'torch': '2.0.1', 'mmdet': '3.2.0'}
    monkeypatch.setattr(requirements, 'installed_version',
                        lambda name: versions.get(name) or importlib.metadata.version(name))
    find_spec = requirements.importlib.util.find_spec
    monkeypatch.setattr(requirements.importlib.util, 'find_spec',
                        lambda name: None if name == 'mmcv' else find_spec(name))
    problems = requirements.stack_problems()
    assert len(problems) == 3, problems
    torch_problem, mmcv_problem, mmdet_problem = problems
    assert torch_problem.startswith('torch 2.0.1 is older than the 2.1 mmdsnet needs. Fix: ')
    assert mmcv_problem.startswith('mmcv is not installed. Fix: mmcv 2.1.0')
    assert 'mim install mmcv==2.1.0' in mmcv_problem
    assert mmdet_problem == ('mmdet 3.2.0 is installed, but mmdsnet needs mmdet>=3.3.0,<3.4. '
                             'Fix: pip install "mmdet>=3.3.0,<3.4".')
    with pytest.raises(ImportError, match='mmdsnet cannot run in this environment:\n  - torch'):
        requirements.require_importable()


def test_import_names_every_missing_package_before_failing_on_one(run_python):
    result = run_python("import sys\n"
                        "sys.modules['mmcv'] = sys.modules['mmdet'] = None  # not installed\n"
                        'import mmdsnet\n')
    assert result.returncode != 0
    last_lines = result.stderr.strip().splitlines()[-4:]
    assert last_lines[0] == 'ImportError: mmdsnet cannot run in this environment:'
    assert last_lines[1].startswith('  - mmcv is not installed. Fix: mmcv 2.1.0')
    assert last_lines[2] == '  - mmdet is not installed. Fix: pip install "mmdet>=3.3.0,<3.4".'


def test_check_env_says_when_mmcv_ops_do_not_load(run_python):
    result = run_python('import sys\n'
                        'from mmdsnet.check_env import main\n'
                        "sys.modules['mmcv.ops'] = None  # as with mmcv-lite or a broken build\n"
                        'sys.exit(main())\n')
    assert result.returncode == 1
    assert "mmcv's compiled ops: ModuleNotFoundError: import of mmcv.ops halted" in result.stdout
    assert "mmdsnet cannot run here until these are fixed:\n  - mmcv's compiled ops do not " \
           'work (ModuleNotFoundError' in result.stdout


def test_check_env_names_what_stops_the_segmentation_configs(run_python):
    # mmsegmentation 1.2.2 imports ftfy and regex without declaring them: a plain
    # `pip install mmsegmentation` leaves every segmentation config unbuildable.
    result = run_python('import sys\n'
                        "sys.modules['ftfy'] = None  # not installed\n"
                        'from mmdsnet.check_env import main\n'
                        'sys.exit(main())\n')
    assert result.returncode == 0, result.stdout + result.stderr  # optional: not a failure
    version = importlib.metadata.version('mmsegmentation')
    assert f'  mmsegmentation  {version}' in result.stdout
    assert (f'Segmentation configs cannot run: mmsegmentation {version} does not import its '
            "models (ModuleNotFoundError: import of ftfy halted; None in sys.modules). Fix: "
            'pip install "mmsegmentation>=1.2.2,<1.3" "ftfy" "regex".') in result.stdout


def test_check_env_reports_an_installed_segmentation_stack_as_usable():
    from mmdsnet.check_env import segmentation_status
    assert segmentation_status() == (True, importlib.metadata.version('mmsegmentation'))
