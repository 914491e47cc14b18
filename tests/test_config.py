"""PretrainConfig: validation names the wrong field, JSON round trip, coercion of form values."""

import json
from dataclasses import fields

import pytest

from pretrain_studio.config import MODEL_PRESETS, ConfigError, PretrainConfig, field_docs, preset_shape


def test_defaults_are_valid_once_a_corpus_is_chosen():
    assert PretrainConfig(corpus_id="c").validate().kind == "pretrain"


@pytest.mark.parametrize("field_name, value", [
    ("learning_rate", -1e-4), ("learning_rate", float("nan")), ("batch_size", 0),
    ("vocab_size", 3), ("mask_probability", 1.0), ("eval_fraction", 0.0), ("model_size", "huge"),
    ("precision", "int4"), ("device", "tpu"), ("max_seq_length", 2), ("gradient_accumulation_steps", 0),
    ("dropout", 1.0), ("dropout", -0.1),
])
def test_invalid_setting_is_rejected_naming_the_field(field_name, value):
    cfg = PretrainConfig(corpus_id="c")
    setattr(cfg, field_name, value)
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.field == field_name
    assert str(err.value).startswith(f"{field_name}:")


def test_learning_rate_zero_is_the_measured_default_for_the_size_or_for_continuing():
    assert PretrainConfig(corpus_id="c").validate().effective_learning_rate() == 1e-3  # tiny, from scratch
    assert PretrainConfig(corpus_id="c", model_size="base").effective_learning_rate() == 5e-4
    assert PretrainConfig(corpus_id="c", base_model="run-x").effective_learning_rate() == 1e-4
    assert PretrainConfig(corpus_id="c", base_model="run-x", learning_rate=3e-4).effective_learning_rate() == 3e-4


def test_missing_corpus_is_named():
    with pytest.raises(ConfigError, match="corpus_id"):
        PretrainConfig().validate()


def test_from_dict_coerces_form_values_and_rejects_unknown_keys():
    cfg = PretrainConfig.from_dict({"corpus_id": "c", "max_steps": 50.0, "learning_rate": "0.001",
                                    "whole_word_mask": "true"})
    assert cfg.max_steps == 50 and isinstance(cfg.max_steps, int)
    assert cfg.learning_rate == 0.001 and cfg.whole_word_mask is True
    with pytest.raises(ConfigError, match="max_stepz"):
        PretrainConfig.from_dict({"corpus_id": "c", "max_stepz": 5})
    with pytest.raises(ConfigError, match="batch_size"):
        PretrainConfig.from_dict({"corpus_id": "c", "batch_size": "lots"})
    with pytest.raises(ConfigError, match="max_steps"):
        PretrainConfig.from_dict({"corpus_id": "c", "max_steps": 2.5})


def test_json_round_trip(tmp_path):
    cfg = PretrainConfig(corpus_id="c", model_size="mini", learning_rate=3e-4, whole_word_mask=True)
    cfg.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["kind"] == "pretrain"
    assert PretrainConfig.load(tmp_path / "config.json") == cfg


def test_load_reports_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        PretrainConfig.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PretrainConfig.load(tmp_path / "bad.json")


def test_every_field_has_a_docstring():
    docs = field_docs()
    assert set(docs) == {f.name for f in fields(PretrainConfig)}
    assert all(docs.values())


def test_presets_follow_compact_bert_shapes():
    assert MODEL_PRESETS["mini"] == (4, 256) and MODEL_PRESETS["base"] == (12, 768)
    shape = preset_shape("small")
    assert shape == {"num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 2048}
