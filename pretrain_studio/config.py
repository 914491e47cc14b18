"""Job settings: one plain dataclass per job kind, model-size presets, validation, JSON.

A config is what a run *is*: the UI form, the API and the CLI all build a
`PretrainConfig`, `validate()` it (the error names the wrong field), and the
job runner saves it as `runs/<run_id>/config.json`, which
`pretrain-studio run CONFIG.json` replays headless.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .settings_schema import ConfigError, JobConfig as SchemaJobConfig, check_declared, setting, shown
from .settings_schema import field_docs as schema_field_docs
from .auto_defaults import auto_epochs, auto_learning_rate, auto_pretrain_learning_rate  # noqa: F401 (also config's)

# Compact-BERT shapes (Turc et al. 2019, "Well-Read Students Learn Better"):
# name -> (layers, hidden size). Heads = hidden / 64, FFN = 4 x hidden.
MODEL_PRESETS: dict[str, tuple[int, int]] = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
}

# Encoder architectures a model from scratch can have (`architecture`): BERT (Devlin et al. 2019) or ModernBERT
# (Warner et al. 2024: rotary positions, GeGLU feed-forward, pre-norm, no biases, local/global attention).
ARCHITECTURES = ("bert", "modernbert")
# ModernBERT's attention pattern, as ModernBERT-base: every third layer (the first one included) attends globally,
# the others within a window of 128 tokens (64 either side). With max_seq_length <= 64 every layer sees the whole
# sequence; at the default 128 a local layer sees about half of it.
MODERNBERT_ATTENTION = {"global_attn_every_n_layers": 3, "local_attention": 128}

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 where the hardware runs it natively, else fp32
# Trackers the Trainer can also report to -> the Python package each needs.
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio"}
TXT_MODES = ("lines", "paragraphs")
# The Trainer needs a step count; a run bounded by its time budget alone (training/time_budget.py) gets this one
# and ends on time long before it.
UNBOUNDED_STEPS = 10 ** 9
MIN_VOCAB_SIZE = 200  # room for the special tokens and a corpus's single characters, which WordPiece must keep


def preset_shape(name: str, architecture: str = "bert") -> dict:
    """BertConfig (or ModernBertConfig) keyword arguments for a size preset.

    BERT's feed-forward has two matrices of hidden x 4 hidden (8 hidden^2 weights). ModernBERT's GeGLU has three
    of hidden x intermediate (`Wi` holds the value and the gate, 2 x intermediate wide, `Wo` maps back), so the same
    weight count needs intermediate = 8/3 hidden, rounded to a multiple of 64: tiny 320, mini 704, small and
    medium 1344, base 2048. With its bias-free projections and no position embeddings a ModernBERT preset then
    has slightly fewer parameters than the BERT one (tiny 1.43 M vs 1.51 M with 8000 tokens)."""
    layers, hidden = MODEL_PRESETS[name]
    intermediate = 4 * hidden if architecture == "bert" else max(64, 64 * round(8 * hidden / 3 / 64))
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": max(1, hidden // 64),
        "intermediate_size": intermediate,
    }


class JobConfig(SchemaJobConfig):
    """What both job kinds share beyond their fields: trackers, and reading a saved config of this kind."""

    def trackers(self) -> list[str]:
        """The `report_to` trackers as a list (the Trainer's `report_to`)."""
        return [t.strip() for t in getattr(self, "report_to", "").split(",") if t.strip()]

    @classmethod
    def load(cls, path: str | Path) -> "JobConfig":
        cfg = load_config(path)
        if not isinstance(cfg, cls):
            raise ConfigError("kind", f"{path} describes a {cfg.kind} job, not {cls.kind}")
        return cfg


@dataclass
class LaunchSettings(JobConfig):
    """Where a run trains beyond one device: processes per machine and machines, launched through torchrun.
    Both job kinds take these; their fields come first in a config's dict."""

    devices: int = setting(1, minimum=1)
    """Training processes on this machine, one per GPU (or CPU processes). Above 1 the run is launched through
    torchrun and trains with DDP; each process takes `batch_size` sequences per step."""
    nodes: int = setting(1, minimum=1)
    """Machines taking part. Above 1, start the same config on every machine: `pretrain-studio run CONFIG.json
    --node-rank N` (see README, "Several GPUs or machines")."""
    node_rank: int = setting(0, minimum=0)
    """This machine's index among `nodes`. Machine 0 keeps the run in its registry and saves the model."""
    rdzv_endpoint: str = ""
    """host:port of machine 0, where the machines meet (torchrun's master address and port); needed when nodes > 1."""

    def world_size(self) -> int:
        """Training processes in all: devices x nodes."""
        return self.devices * self.nodes

    def effective_batch_size(self) -> int:
        """Examples (or sequences) per optimizer step: per-device batch x processes x gradient accumulation."""
        return self.batch_size * self.world_size() * getattr(self, "gradient_accumulation_steps", 1)

    def validate_launch(self) -> None:
        """The rules shared by both job kinds: where the run trains, and what it reports to."""
        if not (self.device in ("auto", "cpu") or (self.device.startswith("cuda") and _cuda_index_ok(self.device))):
            raise ConfigError("device", f"{self.device!r} is not auto, cpu or cuda:N")
        if self.node_rank >= self.nodes:
            raise ConfigError("node_rank", f"must be below nodes ({self.nodes}); got {self.node_rank}")
        if self.nodes > 1:
            host, sep, port = self.rdzv_endpoint.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ConfigError("rdzv_endpoint", f"{self.rdzv_endpoint!r}: give machine 0's host:port "
                                  "(e.g. 10.0.0.1:29500) when nodes > 1")
        if self.world_size() > 1 and self.device.startswith("cuda:"):
            raise ConfigError("device", f"{self.device} names one GPU, but devices={self.devices}: use auto or "
                              "cuda (each process takes the GPU of its local rank)")
        for tracker in self.trackers():
            if tracker not in TRACKERS:
                raise ConfigError("report_to", f"unknown tracker {tracker!r}; choose from {', '.join(TRACKERS)}")


@dataclass
class PretrainConfig(LaunchSettings):
    """Masked-language-model pretraining (from scratch or continued)."""

    corpus_id: str = ""
    """Registered corpus to train on (see `upload_corpus`)."""
    name: str = ""
    """Display name of the run; empty means one is made from the settings."""
    model_size: str = setting("tiny", searchable=True)
    """Size preset for a model from scratch: tiny, mini, small, medium, base."""
    architecture: str = setting("modernbert", choices=ARCHITECTURES, noun="architecture", searchable=True)
    """Architecture of a model from scratch: modernbert (rotary positions, GeGLU, pre-norm, no biases, global
    attention every third layer and a 128-token window in the others), or bert, at about the same parameter count.
    Continued pretraining keeps the base model's architecture."""
    base_model: str = ""
    """Continue pretraining this model: a completed run id or a local Hugging Face folder. Empty = from scratch."""
    vocab_size: int = setting(8000, minimum=MIN_VOCAB_SIZE,
                              why="the special tokens and the corpus's single characters need room before any word",
                              searchable=True)
    """WordPiece vocabulary size of the tokenizer trained on the corpus (from scratch only)."""
    lowercase: bool = True
    """Lowercase text in the trained tokenizer (from scratch only)."""
    max_steps: int = setting(200, minimum=0)
    """Optimizer steps to train; 0 means train for `num_epochs` instead (or for the time budget alone)."""
    num_epochs: float = setting(1.0, minimum=0)
    """Epochs over the corpus, used when `max_steps` is 0; with a time budget, 0 means no limit but the budget."""
    time_budget_minutes: float = setting(0.0, minimum=0)
    """Train for this many minutes of wall-clock time (0 = off): the learning rate decays with elapsed time and
    reaches 0 exactly at the budget, then a final evaluation runs and the model is saved. max_steps and num_epochs,
    when not 0, are upper bounds: the run ends at whichever comes first (info.ended_by says which). Resume continues
    with what is left."""
    batch_size: int = setting(16, minimum=1, searchable=True)
    """Sequences per device per step."""
    gradient_accumulation_steps: int = setting(1, minimum=1, searchable=True)
    """Micro-batches accumulated into one optimizer step."""
    learning_rate: float = setting(0.0, minimum=0, why="give a rate above 0, or 0 for the measured default",
                                   searchable=True)
    """Peak learning rate (AdamW, linear decay); 0 = the measured default: 1e-3 from scratch at tiny and mini, 5e-4
    at larger sizes, 1e-4 when continuing a pretrained model."""
    warmup_steps: int = setting(20, minimum=0, searchable=True)
    """Linear warm-up steps."""
    weight_decay: float = setting(0.01, minimum=0, searchable=True)
    """AdamW weight decay."""
    mask_probability: float = setting(0.15, above=0, below=1, searchable=True)
    """Share of tokens selected for masking. 0.15 is BERT's; Wettig et al. 2022 found 0.3-0.4 better for base-sized
    and larger models."""
    mask_replace_probability: float = setting(0.8, minimum=0, maximum=1, searchable=True)
    """Share of the selected tokens replaced by [MASK]; the rest are split evenly between a random token and the
    token left as it is. 0.8 is BERT's 80/10/10; Wettig et al. 2022 found 1.0 (always [MASK]) as good."""
    whole_word_mask: bool = setting(False, searchable=True)
    """Mask all sub-tokens of a word together."""
    chinese_whole_word_mask: bool = False
    """Chinese whole-word masking (as Chinese BERT-wwm): words found by the jieba segmenter are masked together
    (other words by their ## pieces). Masked spans follow word boundaries, the masked share of tokens stays
    mask_probability; packing takes longer (jieba); the model and tokenizer are unchanged."""
    max_seq_length: int = setting(128, minimum=8, searchable=True)
    """Tokens per training sequence (texts are concatenated and cut into blocks of this length)."""
    seq_length_warmup: float = setting(0.0, minimum=0, share=True, searchable=True)
    """Share of the run (of the time budget, else of the steps) trained on short sequences first: each block cut
    into 4 pieces of a quarter of max_seq_length, each with its own [CLS] and [SEP]. 0 = off."""
    batch_size_warmup: float = setting(0.0, minimum=0, share=True, searchable=True)
    """Share of the run (of the time budget, else of the steps) over which the batch grows from a quarter of
    batch_size to all of it: more, smaller updates early. 0 = off."""
    eval_fraction: float = setting(0.05, above=0, below=0.5)
    """Share of the corpus held out for evaluation."""
    eval_steps: int = setting(50, minimum=1)
    """Evaluate (eval loss, perplexity, masked-token accuracy) every this many steps."""
    logging_steps: int = setting(10, minimum=1)
    """Log train loss, learning rate and throughput every this many steps."""
    save_steps: int = setting(100, minimum=1)
    """Write a checkpoint every this many steps."""
    seed: int = setting(42, minimum=0)
    """Random seed for the split, masking and initialisation."""
    dropout: float = setting(0.0, minimum=0, below=1, searchable=True)
    """Dropout while pretraining. 0 (as in Cramming, Geiping & Goldstein 2022) trains faster and no worse within a
    few passes over the corpus; use 0.1 for many epochs over a small corpus. The saved model keeps its config's
    dropout (BERT's 0.1 from scratch) for fine-tuning."""
    device: str = "auto"
    """auto, cpu or cuda:N."""
    precision: str = setting("auto", choices=PRECISIONS)
    """auto, fp32, bf16 or fp16. auto = bf16 mixed precision where the hardware runs it natively (GPUs with bf16,
    CPUs with AVX-512 BF16 or AMX), else fp32. fp16 needs CUDA."""
    torch_compile: bool = False
    """Compile the model with torch.compile: faster steps after a one-off compilation of a minute or more."""
    report_to: str = ""
    """Also report to these trackers, comma-separated: tensorboard, mlflow, trackio (when installed)."""
    downstream_datasets: list[str] = setting(default_factory=list)
    """Labelled datasets (ids) to check the model on while it pretrains: at step 0 and every
    downstream_eval_steps, a copy is fine-tuned briefly with one fixed recipe and scored on the validation split,
    beside a linear probe (training pauses meanwhile; the run records for how long)."""
    downstream_eval_steps: int = setting(0, minimum=0)
    """Steps between downstream checks; 0 = five checks spread over the run (plus step 0 and the end)."""

    kind = "pretrain"

    def validate(self) -> "PretrainConfig":
        """Raise ConfigError naming the first wrong field; return self when all is well."""
        if not self.corpus_id:
            raise ConfigError("corpus_id", key="error.choose_corpus")
        check_declared(self)
        if not self.base_model and self.model_size not in MODEL_PRESETS:
            raise ConfigError("model_size", key="error.unknown_choice", noun="preset", value=repr(self.model_size),
                              choices=", ".join(MODEL_PRESETS))
        if self.max_steps == 0 and not self.time_budget_minutes and self.num_epochs <= 0:
            raise ConfigError("num_epochs", key="error.must_be_greater", min="0", got=shown(self.num_epochs), why="")
        if self.chinese_whole_word_mask:
            import importlib.util

            if importlib.util.find_spec("jieba") is None:  # the segmenter that finds the words
                raise ConfigError("chinese_whole_word_mask", "needs the jieba segmenter: pip install jieba")
        if not all(isinstance(d, str) and d.strip() for d in self.downstream_datasets):
            raise ConfigError("downstream_datasets", f"{self.downstream_datasets!r}: give dataset ids")
        self.validate_launch()
        return self

    def effective_learning_rate(self) -> float:
        """The peak rate the run trains at: learning_rate, or for 0 the measured default (auto_pretrain_learning_rate)."""
        return self.learning_rate or auto_pretrain_learning_rate(self.model_size, continued=bool(self.base_model))


# What a fine-tuning run learns: a label per text, or a tag per token (named entities; data/token_labelled.py).
SEQUENCE_TASK, TOKEN_TASK = "sequence_classification", "token_classification"
TASKS = (SEQUENCE_TASK, TOKEN_TASK)
METHODS = ("full", "top_layers", "lora", "adalora", "ia3", "adapter")
PEFT_METHODS = ("lora", "adalora", "ia3")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
EARLY_STOPPING_METRICS = ("eval_f1", "eval_accuracy", "eval_loss")
DEFAULT_TARGET_MODULES = "query,value"  # BERT's names; peft_methods.target_modules_for maps them per architecture
POOLINGS = ("mean", "cls")  # how a classifier pools token states (pooling.py)
HEAD_INITS = ("linear_probe", "random")  # how the classification head starts (training/head_init.py)
@dataclass
class FinetuneConfig(LaunchSettings):
    """Text-classification fine-tuning with full, top-layer or parameter-efficient methods."""

    dataset_id: str = ""
    """Registered labelled dataset (see `upload_dataset`)."""
    task: str = setting("auto", choices=("auto",) + TASKS, noun="task")
    """sequence_classification (a label per text), token_classification (a tag per token: named entities) or auto
    (the task the dataset was uploaded for)."""
    base_model: str = ""
    """Model to fine-tune: a completed run id (pretraining or fine-tuning) or a local Hugging Face folder."""
    method: str = setting("full", choices=METHODS, noun="method", searchable=True)
    """full, top_layers, lora, adalora, ia3 or adapter (bottleneck adapters, Houlsby et al.). full is the default: on
    the compact models pretrained here it learns most (quick start: full 0.958 test accuracy, adapter 0.833, LoRA
    0.792, the linear probe 0.792); the adapter methods save memory and disk on large bases."""
    name: str = ""
    """Display name of the run; empty means one is made from the settings."""
    max_steps: int = setting(0, minimum=0)
    """Optimizer steps to train; 0 means train for `num_epochs` instead."""
    num_epochs: float = setting(0.0, minimum=0, why="give epochs, or 0 for auto")
    """Epochs over the training split, used when `max_steps` is 0; 0 = auto: enough for about 300 steps, at least 3
    and at most 10 epochs (a small dataset needs more passes than 3)."""
    time_budget_minutes: float = setting(0.0, minimum=0)
    """Fine-tune for this many minutes of wall-clock time (0 = off): the learning rate warms up and then decays with
    elapsed time to 0 exactly at the budget; the last step is evaluated and the best checkpoint becomes the model.
    `max_steps`, or `num_epochs` when set, still bound the run (with both 0, only the budget does; `info.ended_by`
    says which ended it). Resume continues with what is left. Not with adalora, whose rank pruning follows steps."""
    batch_size: int = setting(16, minimum=1, searchable=True)
    """Examples per device per step."""
    learning_rate: float = setting(0.0, minimum=0, why="give a rate above 0, or 0 for the method's default",
                                   searchable=True)
    """Peak learning rate; 0 = auto: the method's rate for a BERT-base-sized model (full 5e-5, top_layers 1e-4, lora
    5e-4, adalora 1e-3, ia3 3e-3, adapter 1e-3), scaled up for a narrower base by (768 / hidden size) ** 1.5 with a
    cap per method (tiny: full 7.3e-4)."""
    optimizer: str = setting("adamw", choices=OPTIMIZERS, searchable=True)
    """adamw or sgd (with momentum 0.9)."""
    scheduler: str = setting("linear", choices=SCHEDULERS, searchable=True)
    """Learning-rate schedule: linear, cosine, constant or constant_with_warmup."""
    warmup_steps: float = setting(0.1, minimum=0, searchable=True)
    """Warm-up: whole steps, or a share of all steps when below 1."""
    weight_decay: float = setting(0.01, minimum=0, searchable=True)
    """Weight decay."""
    dropout: float = setting(0.1, minimum=0, below=1, searchable=True)
    """Dropout of the encoder's hidden layers and attention."""
    pooling: str = setting("mean", choices=POOLINGS, searchable=True)
    """How the classifier sees the text: mean (the average of the token states, padding excluded) or cls (BERT's
    [CLS] pooler). An encoder pretrained with MLM alone never trains [CLS] to summarise the text: mean is far better
    from such a model (bench/quality_per_hour.py)."""
    head_init: str = setting("linear_probe", choices=HEAD_INITS, searchable=True)
    """How the classification head starts: linear_probe (LP-FT: a logistic regression fitted on the frozen
    features first, so step 0 already scores like the probe) or random."""
    max_seq_length: int = setting(128, minimum=8, searchable=True)
    """Longer texts are truncated to this many tokens."""
    class_weights: bool = False
    """Weight the loss by inverse class frequency (for imbalanced data)."""
    eval_steps: int = setting(50, minimum=1)
    """Evaluate on the validation split every this many steps."""
    logging_steps: int = setting(10, minimum=1)
    """Log train loss and learning rate every this many steps."""
    early_stopping_patience: int = setting(0, minimum=0)
    """Stop after this many evaluations without improvement of `early_stopping_metric`; 0 = off."""
    early_stopping_metric: str = setting("eval_f1", choices=EARLY_STOPPING_METRICS)
    """eval_f1 (macro; for token classification the entity F1, micro), eval_accuracy (token accuracy for token
    classification) or eval_loss: chooses the best checkpoint, which becomes the final model."""
    seed: int = setting(42, minimum=0)
    """Random seed for initialisation and data order."""
    top_layers: int = setting(2, minimum=1, methods=("top_layers",), searchable=True)
    """top_layers: how many of the top encoder layers to train (embeddings and the layers below stay frozen)."""
    lora_r: int = setting(8, minimum=1, methods=("lora", "adalora"), searchable=True)
    """lora: rank of the update matrices."""
    lora_alpha: int = setting(16, minimum=1, methods=("lora", "adalora"), searchable=True)
    """lora / adalora: scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = setting(0.1, minimum=0, methods=("lora", "adalora"), searchable=True)
    """lora / adalora: dropout on the adapter input."""
    lora_target_modules: str = DEFAULT_TARGET_MODULES
    """lora / adalora / ia3: comma-separated module names to adapt (ia3 also adds the feed-forward output). The
    default, query,value, means Wqkv (the fused attention projection) on a ModernBERT base."""
    adalora_init_r: int = setting(12, minimum=1, methods=("adalora",), searchable=True)
    """adalora: initial rank of every update before pruning."""
    adalora_target_r: int = setting(4, minimum=1, methods=("adalora",), searchable=True)
    """adalora: average rank to prune down to."""
    adalora_tinit: int = setting(0, minimum=0, methods=("adalora",))
    """adalora: steps of warm-up before rank pruning starts; 0 = a tenth of training."""
    adalora_tfinal: int = setting(0, minimum=0, methods=("adalora",))
    """adalora: steps at the end with the final ranks fixed; 0 = a fifth of training."""
    adapter_size: int = setting(64, minimum=1, methods=("adapter",), searchable=True)
    """adapter: bottleneck size of each adapter."""
    label_all_subtokens: bool = False
    """token_classification: train on every sub-token of a word with the word's tag (B- becomes I- after the
    first); off, only a word's first sub-token carries its tag and the rest are left out of the loss. Either way a
    word's prediction is its first sub-token's."""
    group_by_length: bool = True
    """Batch texts of similar length together (within random groups of batches): far less padding, faster steps."""
    device: str = "auto"
    """auto, cpu or cuda:N."""
    precision: str = setting("fp32", choices=PRECISIONS)
    """auto, fp32, bf16 or fp16 (auto: bf16 where the hardware runs it natively, else fp32; fp16 needs CUDA)."""
    report_to: str = ""
    """Also report to these trackers, comma-separated: tensorboard, mlflow, trackio (when installed)."""

    kind = "finetune"

    def effective_learning_rate(self, hidden_size: int | None = None) -> float:
        """The rate the run trains with: the setting, or (0) auto for this method and base width."""
        return self.learning_rate or auto_learning_rate(self.method, hidden_size)

    def effective_epochs(self, train_rows: int) -> float:
        return self.num_epochs or auto_epochs(train_rows, self.effective_batch_size())

    def target_modules(self) -> list[str]:
        return [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]

    def validate(self) -> "FinetuneConfig":
        """Raise ConfigError naming the first wrong field; return self when all is well."""
        if not self.dataset_id:
            raise ConfigError("dataset_id", key="error.choose_dataset")
        if not self.base_model:
            raise ConfigError("base_model", key="error.choose_base_model")
        check_declared(self)
        if self.time_budget_minutes and self.method == "adalora":
            raise ConfigError("time_budget_minutes", "adalora prunes its ranks on a schedule of steps; give max_steps "
                                                     "(or num_epochs) instead of a time budget, or choose lora")
        if 1 < self.warmup_steps != int(self.warmup_steps):
            raise ConfigError("warmup_steps", "give whole steps, or a share of training below 1")
        if self.method in PEFT_METHODS and not self.target_modules():
            raise ConfigError("lora_target_modules", "name at least one module, e.g. query,value")
        if self.method == "adalora" and self.adalora_target_r > self.adalora_init_r:
            raise ConfigError("adalora_target_r", "must not exceed adalora_init_r")
        if self.task == TOKEN_TASK and self.class_weights:
            raise ConfigError("class_weights", "is for text classification; token classification weighs every "
                                               "tag alike")
        if self.task == TOKEN_TASK and self.world_size() > 1:
            raise ConfigError("devices", "token classification trains on one device for now; set devices and "
                                         "nodes to 1")
        self.validate_launch()
        return self


CONFIG_KINDS = {"pretrain": PretrainConfig, "finetune": FinetuneConfig}


def config_from_dict(data: dict) -> JobConfig:
    """The right config class for a saved dict, chosen by its "kind" (pretraining when absent)."""
    kind = (data or {}).get("kind", "pretrain")
    if kind not in CONFIG_KINDS:
        raise ConfigError("kind", f"unknown job kind {kind!r}; expected one of {', '.join(CONFIG_KINDS)}")
    return CONFIG_KINDS[kind].from_dict(data)


def load_config(path: str | Path) -> JobConfig:
    """Read a run's config.json, whichever kind of job it describes."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config", f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError("config", f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path}: expected a JSON object")
    return config_from_dict(data)


def field_docs(cls=PretrainConfig) -> dict[str, str]:
    """Field name -> its one-line docstring, for README and UI help (settings_schema.field_docs)."""
    return schema_field_docs(cls)


# --- helpers ------------------------------------------------------------------


def _cuda_index_ok(device: str) -> bool:
    if device == "cuda":
        return True
    prefix, _, index = device.partition(":")
    return prefix == "cuda" and index.isdigit()
