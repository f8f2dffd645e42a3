"""mmdsnet.launch: config loading shared by the tools."""
import os

import pytest

from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')


def test_overrides_apply_and_work_dir_defaults_to_config_name():
    cfg = load_config(CONFIG, {'train_cfg.max_epochs': 3, 'model.backbone.with_cp': True})
    assert cfg.train_cfg.max_epochs == 3 and cfg.model.backbone.with_cp is True
    assert cfg.work_dir == os.path.join('work_dirs', 'dsnet_tiny_digits')


def test_misspelled_top_level_key_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match=r"has no 'trian_cfg'; did you mean 'train_cfg'"):
        load_config(CONFIG, {'trian_cfg.max_epochs': 3})


def test_new_top_level_key_unlike_any_existing_one_is_allowed():
    assert load_config(CONFIG, {'find_unused_parameters': True}).find_unused_parameters
