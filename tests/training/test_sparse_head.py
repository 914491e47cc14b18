"""The sparse MLM head: the same loss and gradients as BertForMaskedLM, and a standard folder when saved."""

import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from pretrain_studio.training.sparse_head import SparseHeadBertForMaskedLM, with_sparse_head


def tiny_pair():
    torch.manual_seed(0)
    dense = BertForMaskedLM(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=128, max_position_embeddings=64)).eval()
    return dense, with_sparse_head(dense).eval()


def test_loss_and_gradients_match_the_dense_head():
    dense, sparse = tiny_pair()
    assert isinstance(sparse, SparseHeadBertForMaskedLM)
    ids = torch.randint(5, 300, (3, 20))
    labels = torch.full_like(ids, -100)
    labels[:, ::4] = ids[:, ::4]
    dense_out, sparse_out = dense(input_ids=ids, labels=labels), sparse(input_ids=ids, labels=labels)
    assert torch.allclose(dense_out.loss, sparse_out.loss, atol=1e-5)
    assert sparse_out.logits.shape == (int((labels != -100).sum()), 300)  # only the scored rows
    dense_out.loss.backward()
    sparse_out.loss.backward()
    for (name, a), (_, b) in zip(dense.named_parameters(), sparse.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_inference_is_the_standard_dense_output():
    dense, sparse = tiny_pair()
    ids = torch.randint(5, 300, (2, 12))
    assert torch.allclose(dense(input_ids=ids).logits, sparse(input_ids=ids).logits, atol=1e-6)


def test_saved_folder_is_a_plain_bert_for_masked_lm(tmp_path):
    _, sparse = tiny_pair()
    sparse.to_standard().save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(loaded) is BertForMaskedLM and loaded.config.architectures == ["BertForMaskedLM"]
    ids = torch.randint(5, 300, (1, 10))
    assert torch.allclose(loaded.eval()(input_ids=ids).logits, sparse(input_ids=ids).logits, atol=1e-6)
