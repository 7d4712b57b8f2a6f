"""ContentVec/HuBERT weights in either layout, as ``transformers.HubertModel`` keys: fairseq's
``hubert_base.pt`` (keys renamed, architecture read from tensor shapes and the pickled config)
and Hugging Face directories (optional ``hubert.`` prefix, legacy weight-norm names). Used by
:class:`bridge.vc.content.ContentEncoder`."""

from __future__ import annotations

import ast
import re
from typing import Any

import torch

from bridge.vc.base import VoiceError
from bridge.vc.torchfile import plain


# --------------------------------------------------------------------------------------
# fairseq → transformers key conversion

_LAYER_RENAMES = {
    "self_attn.k_proj": "attention.k_proj",
    "self_attn.v_proj": "attention.v_proj",
    "self_attn.q_proj": "attention.q_proj",
    "self_attn.out_proj": "attention.out_proj",
    "self_attn_layer_norm": "layer_norm",
    "fc1": "feed_forward.intermediate_dense",
    "fc2": "feed_forward.output_dense",
    "final_layer_norm": "final_layer_norm",
}
_POS_CONV = "encoder.pos_conv_embed.conv."
#: fairseq keys that carry no inference weights: the label embeddings of HuBERT's
#: pre-training targets. (RVC's legacy ContentVec loads into fairseq's plain HubertModel, so it
#: has no other extra keys; anything unrecognised is reported, not dropped.)
_FAIRSEQ_IGNORED = re.compile(r"^(label_embs_concat|label_embs\..*|final_proj_list\..*)$")


def fairseq_to_hf_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a fairseq HuBERT ``model`` state dict to ``HubertModel`` + ``final_proj`` keys.

    ===========================================  =================================================
    fairseq                                      transformers
    ===========================================  =================================================
    feature_extractor.conv_layers.{i}.0.*        feature_extractor.conv_layers.{i}.conv.*
    feature_extractor.conv_layers.0.2.*          …conv_layers.0.layer_norm.* (GroupNorm, "default")
    feature_extractor.conv_layers.{i}.2.1.*      …conv_layers.{i}.layer_norm.* ("layer_norm" mode)
    layer_norm.*                                 feature_projection.layer_norm.*
    post_extract_proj.*                          feature_projection.projection.*
    encoder.pos_conv.0.weight_g / weight_v       encoder.pos_conv_embed.conv.parametrizations.
                                                 weight.original0 / original1
    encoder.pos_conv.0.bias                      encoder.pos_conv_embed.conv.bias
    encoder.layer_norm.*                         encoder.layer_norm.*
    encoder.layers.{i}.self_attn.{q,k,v,out}_proj  encoder.layers.{i}.attention.{q,k,v,out}_proj
    encoder.layers.{i}.self_attn_layer_norm      encoder.layers.{i}.layer_norm
    encoder.layers.{i}.fc1 / fc2                 …feed_forward.intermediate_dense / output_dense
    encoder.layers.{i}.final_layer_norm          encoder.layers.{i}.final_layer_norm
    mask_emb                                     masked_spec_embed
    final_proj.*                                 final_proj.*
    label_embs_concat                            (dropped)
    ===========================================  =================================================
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        new: str | None = None
        if m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.(.+)", key):
            idx, rest = m.groups()
            if rest.startswith("0."):
                new = f"feature_extractor.conv_layers.{idx}.conv.{rest[2:]}"
            elif rest.startswith("2.1."):
                new = f"feature_extractor.conv_layers.{idx}.layer_norm.{rest[4:]}"
            elif rest.startswith("2."):
                new = f"feature_extractor.conv_layers.{idx}.layer_norm.{rest[2:]}"
        elif key.startswith("layer_norm."):
            new = "feature_projection." + key
        elif key.startswith("post_extract_proj."):
            new = "feature_projection.projection." + key[len("post_extract_proj."):]
        elif key == "encoder.pos_conv.0.weight_g":
            new = _POS_CONV + "parametrizations.weight.original0"
        elif key == "encoder.pos_conv.0.weight_v":
            new = _POS_CONV + "parametrizations.weight.original1"
        elif key == "encoder.pos_conv.0.bias":
            new = _POS_CONV + "bias"
        elif key.startswith("encoder.layer_norm."):
            new = key
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.([a-z_0-9]+)\.(weight|bias)", key):
            idx, module, param = m.groups()
            if module in _LAYER_RENAMES:
                new = f"encoder.layers.{idx}.{_LAYER_RENAMES[module]}.{param}"
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.(self_attn\.(?:q|k|v|out)_proj)\.(weight|bias)", key):
            idx, module, param = m.groups()
            new = f"encoder.layers.{idx}.{_LAYER_RENAMES[module]}.{param}"
        elif key == "mask_emb":
            new = "masked_spec_embed"
        elif key.startswith("final_proj."):
            new = key
        elif _FAIRSEQ_IGNORED.match(key):
            continue
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise VoiceError(
            "not a fairseq HuBERT/ContentVec checkpoint: unrecognised weight(s) "
            + ", ".join(unknown[:8])
            + (f" (+{len(unknown) - 8} more)" if len(unknown) > 8 else "")
        )
    return out


def _parse_conv_layers(spec: Any) -> list[tuple[int, int, int]] | None:
    """fairseq's ``conv_feature_layers`` string, e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"``.

    Evaluated over a tiny AST subset (lists, tuples, ints, ``+``, ``*``): no ``eval``.
    """
    if not isinstance(spec, str):
        return None

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported expression {ast.dump(node)}")

    try:
        layers = ev(ast.parse(spec, mode="eval"))
        return [(int(d), int(k), int(s)) for d, k, s in layers]
    except (SyntaxError, ValueError, TypeError):
        return None


def fairseq_config(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Flat model+task options from ``cfg`` (omegaconf) or ``args`` (argparse), best effort."""
    options: dict[str, Any] = {}
    args = plain(ckpt.get("args"))
    if isinstance(args, dict):
        options.update(args)
    cfg = plain(ckpt.get("cfg"))
    if isinstance(cfg, dict):
        for section in ("task", "model"):
            part = cfg.get(section)
            if isinstance(part, dict):
                options.update({k: v for k, v in part.items() if not isinstance(v, dict)})
    return options


def hubert_config_from_fairseq(sd: dict[str, torch.Tensor], options: dict[str, Any]):
    from transformers import HubertConfig

    conv_ids = sorted(
        int(m.group(1))
        for k in sd
        if (m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k))
    )
    if not conv_ids or "post_extract_proj.weight" not in sd:
        raise VoiceError("not a HuBERT checkpoint: no feature extractor / post_extract_proj weights")
    conv_dim = [sd[f"feature_extractor.conv_layers.{i}.0.weight"].shape[0] for i in conv_ids]
    conv_kernel = [sd[f"feature_extractor.conv_layers.{i}.0.weight"].shape[2] for i in conv_ids]
    layers = _parse_conv_layers(options.get("conv_feature_layers"))
    if layers and [(d, k) for d, k, _ in layers] == list(zip(conv_dim, conv_kernel)):
        conv_stride = [s for _, _, s in layers]
    elif conv_kernel == [10, 3, 3, 3, 3, 2, 2]:
        conv_stride = [5, 2, 2, 2, 2, 2, 2]
    else:
        raise VoiceError(f"cannot tell the conv strides of kernels {conv_kernel} (no usable config)")
    if "feature_extractor.conv_layers.0.2.1.weight" in sd:
        norm = "layer"
    elif "feature_extractor.conv_layers.0.2.weight" in sd:
        norm = "group"
    else:
        raise VoiceError("unsupported HuBERT feature extractor (no normalisation weights)")
    if options.get("layer_norm_first"):
        raise VoiceError("pre-LN (layer_norm_first) HuBERT checkpoints are not supported")

    hidden = sd["post_extract_proj.weight"].shape[0]
    n_layers = 1 + max(
        int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layers\.(\d+)\.", k))
    )
    pos_v = sd["encoder.pos_conv.0.weight_v"]
    heads = options.get("encoder_attention_heads") or (12 if hidden == 768 else max(1, hidden // 64))
    activation = options.get("activation_fn") or "gelu"
    return HubertConfig(
        hidden_size=hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=int(heads),
        intermediate_size=sd["encoder.layers.0.fc1.weight"].shape[0],
        hidden_act=str(activation),
        feat_extract_norm=norm,
        feat_extract_activation="gelu",
        conv_dim=conv_dim,
        conv_kernel=conv_kernel,
        conv_stride=conv_stride,
        conv_bias=f"feature_extractor.conv_layers.{conv_ids[0]}.0.bias" in sd,
        num_conv_pos_embeddings=pos_v.shape[2],
        num_conv_pos_embedding_groups=hidden // pos_v.shape[1],
        feat_proj_layer_norm="layer_norm.weight" in sd,
        do_stable_layer_norm=False,
        mask_time_prob=0.05 if "mask_emb" in sd else 0.0,
        classifier_proj_size=sd["final_proj.weight"].shape[0] if "final_proj.weight" in sd else 256,
    )


def normalise_hf_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("hubert."):
            key = key[len("hubert."):]
        if key.startswith(_POS_CONV):
            key = key.replace(_POS_CONV + "weight_g", _POS_CONV + "parametrizations.weight.original0")
            key = key.replace(_POS_CONV + "weight_v", _POS_CONV + "parametrizations.weight.original1")
        out[key] = value
    return out
