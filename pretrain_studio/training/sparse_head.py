"""BERT MLM with the prediction head computed only where it is scored.

The MLM loss only looks at the ~15% masked positions, yet `BertForMaskedLM`
projects every position onto the whole vocabulary; for compact BERTs that
projection is most of the compute. This subclass gathers the masked positions
first and runs the head on those alone. The loss is the same number (mean
cross-entropy over masked positions); `logits` then holds one row per masked
position instead of one per token. Saving goes through `to_standard()`, so
the folder a run leaves behind is a plain `BertForMaskedLM`.

ModernBERT has the same idea built in (`ModernBertForMaskedLM.sparse_prediction`: with labels, the head runs on
the scored positions only and `logits` has one row per masked position, in the same row-major order), so for it
`with_sparse_head` just switches that on, on the model object: its config keeps `sparse_prediction` as it was,
and the saved folder is a plain ModernBERT whose logits have the usual shape.
"""

from __future__ import annotations

import torch
from torch.nn.functional import cross_entropy
from transformers import BertForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput


class SparseHeadBertForMaskedLM(BertForMaskedLM):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if labels is None:  # inference (fill-mask): the standard dense path
            return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids, **kwargs)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        scored = labels != -100
        logits = self.cls(hidden[scored])  # (masked positions, vocabulary)
        total = cross_entropy(logits.float(), labels[scored], reduction="sum")
        # As transformers' own models do: with gradient accumulation the Trainer passes the number of scored
        # tokens in the whole accumulated batch, so the loss is their mean across micro-batches.
        count = kwargs.get("num_items_in_batch")
        if count is None:
            count = scored.sum()
        loss = total / torch.as_tensor(count, device=total.device).clamp(min=1)
        return MaskedLMOutput(loss=loss, logits=logits)

    def to_standard(self) -> BertForMaskedLM:
        """The same weights in a plain BertForMaskedLM, for saving."""
        model = BertForMaskedLM(self.config)
        model.load_state_dict(self.state_dict())
        model.config.architectures = ["BertForMaskedLM"]
        return model


def with_sparse_head(model: torch.nn.Module) -> torch.nn.Module:
    """Swap a BertForMaskedLM for the sparse-head version (same weights); switch on a ModernBertForMaskedLM's
    own sparse prediction (for training only: the config is left as it is); other architectures are left as
    they are."""
    if getattr(getattr(model, "config", None), "model_type", "") == "modernbert" and hasattr(model, "sparse_prediction"):
        model.sparse_prediction = True
        return model
    if type(model) is not BertForMaskedLM:
        return model
    sparse = SparseHeadBertForMaskedLM(model.config)
    sparse.load_state_dict(model.state_dict())
    return sparse
