"""tools/analysis/docs_numbers.py: the measured tables of README.md and docs/ are what the JSON
under docs/benchmarks/ renders to, a stale block is named, and no doc points at an issue."""
import re

import pytest
from tool_scripts import REPO_ROOT, load_tool

# "issue 21", "Issue #21", "issues #19"; not the verb ("the host issues 1,314 copies").
ISSUE = re.compile(r'\b[Ii]ssue\s*#?\d+|\b[Ii]ssues\s*#\d+')
DOCS = [REPO_ROOT / 'README.md', *sorted((REPO_ROOT / 'docs').glob('*.md'))]


@pytest.fixture(scope='module')
def docs_numbers():
    return load_tool('docs_numbers', 'analysis')


def test_every_generated_block_matches_its_json(docs_numbers, capsys):
    status = docs_numbers.main(['--check'])

    assert status == 0, (capsys.readouterr().out + '\nrun .venv/bin/python '
                         'tools/analysis/docs_numbers.py and commit the docs it rewrites')
    text = ''.join(path.read_text() for path in DOCS)
    assert set(re.findall(r'docs_numbers\.py: (\w+) from', text)) == set(docs_numbers.BLOCKS)


def test_check_names_the_file_line_and_json_of_an_edited_number(docs_numbers, tmp_path, capsys):
    doc = tmp_path / 'benchmarks.md'
    text = (REPO_ROOT / 'docs' / 'benchmarks.md').read_text()
    assert text.count('| DSNet-S | 5,977 |') == 1
    doc.write_text(text.replace('| DSNet-S | 5,977 |', '| DSNet-S | 5,976 |'))
    marker = next(number for number, line in enumerate(text.splitlines(), 1)
                  if 'docs_numbers.py: cpu_dense from' in line)

    assert docs_numbers.main(['--check', str(doc)]) == 1
    out = capsys.readouterr().out
    assert (f'{doc}:{marker}: block cpu_dense differs from docs/benchmarks/cpu/dense_cpu.json'
            in out)
    assert 'in the file: | DSNet-S | 5,976 |' in out and 'from JSON:   | DSNet-S | 5,977 |' in out
    assert '1 block(s) differ' in out

    # Without --check the block is written anew, and the copy is the repository's again.
    assert docs_numbers.main([str(doc)]) == 0
    assert doc.read_text() == text


def test_docs_name_no_issue_numbers():
    found = [f'{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}' for path in DOCS
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if ISSUE.search(line)]
    assert not found, 'issue references in the docs:\n' + '\n'.join(found)


def test_readme_states_the_segmentation_quickstart_as_measured(docs_numbers):
    """README's one sentence of measured figures (too short for a generated block)."""
    first_run = docs_numbers.load('cpu/quickstart_seg.json')['runs']['run1']
    readme = ' '.join((REPO_ROOT / 'README.md').read_text().split())
    assert (f"{docs_numbers.num(first_run['wall_s'] / 60, 1)} minutes on 2 shared cores, "
            f"held-out mIoU {docs_numbers.num(first_run['val_mIoU'], 1)}%") in readme
