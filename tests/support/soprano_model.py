"""Build Soprano model folders with random weights, offline, for tests and benchmarks.

A folder holds what ``models pull`` would fetch from ``ekwek/Soprano-1.1-80M``: a Qwen3
``config.json`` (hidden size 512, the decoder's input width; integer ``eos_token_id`` = the id
of ``[STOP]``), ``model.safetensors``, a ``tokenizers`` tokenizer (one token per character,
with the specials ``[PAD] [UNK] [TEXT] [STOP] [START]`` and filler "audio" tokens),
``tokenizer_config.json`` (without it transformers 5 picks a tokenizer class with a pad token
that is not in the vocabulary) and a full-size random ``SopranoDecoder`` state dict.

Kinds:

* ``random``: random LM, except that ``[STOP]`` can never win (its ``lm_head`` row is zero and
  the other logits are scaled up, so some are always far above zero): generation runs to the
  cap, deterministically under greedy decoding, with attention doing real work.
* ``chain``: attention and MLP outputs zeroed, one-hot embeddings, an ``lm_head`` that maps
  ``[START]`` → audio 0 → … → audio K−1 → ``[STOP]``: exactly K audio tokens for any text.
* ``stop_first``: like ``chain`` but ``[START]`` → ``[STOP]``: no audio at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

SPECIALS = ["[PAD]", "[UNK]", "[TEXT]", "[STOP]", "[START]"]
CHARS = " abcdefghijklmnopqrstuvwxyz0123456789.,!?'-$%&*+/:;<>_\""
STOP_ID = SPECIALS.index("[STOP]")
START_ID = SPECIALS.index("[START]")

TINY = dict(
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
    intermediate_size=64,
    vocab_size=128,
    max_position_embeddings=1024,
)
#: Soprano-1.1-80M's backbone shape (research notes; rope_theta 10000, the Qwen3 default here).
FULL = dict(
    num_hidden_layers=17,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=128,
    intermediate_size=2304,
    vocab_size=8192,
    max_position_embeddings=2048,
)


def _vocab(size: int) -> dict[str, int]:
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in CHARS:
        vocab.setdefault(char, len(vocab))
    for i in range(len(vocab), size):
        vocab[f"[{i}]"] = i
    return vocab


def write_tokenizer(folder: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(vocab=_vocab(vocab_size), unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer.add_special_tokens(SPECIALS)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "[STOP]",
        "eos_token": "[STOP]",
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "padding_side": "left",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def write_decoder(path: Path, seed: int = 0) -> None:
    from soprano.vocos.decoder import SopranoDecoder

    torch.manual_seed(seed)
    torch.save(SopranoDecoder().state_dict(), path)


def build_model_dir(
    folder: Path,
    kind: str = "random",
    *,
    size: str = "tiny",
    chain_length: int = 12,
    seed: int = 0,
    decoder: Path | None = None,
) -> Path:
    """Write a Soprano folder; ``decoder`` links an existing ``decoder.pth`` instead of a new one."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = TINY if size == "tiny" else FULL
    write_tokenizer(folder, shape["vocab_size"])
    config = Qwen3Config(
        hidden_size=512,
        bos_token_id=STOP_ID,
        eos_token_id=STOP_ID,
        pad_token_id=0,
        tie_word_embeddings=False,
        rms_norm_eps=1e-6,
        **shape,
    )
    config.architectures = ["Qwen3ForCausalLM"]
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        if kind == "random":
            model.lm_head.weight.normal_(0.0, 2.0)  # logits ~45 apart: greedy has no near-ties
            model.lm_head.weight[STOP_ID] = 0.0
        elif kind in ("chain", "stop_first"):
            vocab = shape["vocab_size"]
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.embed_tokens.weight.zero_()
            model.model.embed_tokens.weight[:, :vocab] = torch.eye(vocab)
            model.lm_head.weight.zero_()
            if kind == "stop_first":
                model.lm_head.weight[STOP_ID, START_ID] = 1.0
            else:
                audio = list(range(vocab - chain_length, vocab))  # the filler "[i]" tokens
                path = [START_ID, *audio, STOP_ID]
                for here, after in zip(path, path[1:]):
                    model.lm_head.weight[after, here] = 1.0
        else:
            raise ValueError(f"unknown kind {kind!r}")
    model.save_pretrained(folder)
    target = folder / "decoder.pth"
    if decoder is None:
        write_decoder(target, seed)
    elif not target.exists():
        os.symlink(Path(decoder).resolve(), target)
    return folder
