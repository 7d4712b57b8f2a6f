"""A models directory with a full-size RVC voice, for benchmarking the voice stage end to end.

Writes, with random weights in the real architectures and file formats (the architecture, not
the values, sets the cost)::

    DIR/hubert_base/config.json, model.safetensors   HuBERT base (ContentVec layout), HF layout
    DIR/voices/NAME/NAME.pth                          RVC voice as RVC saves it (fp16, weight_g/v)
    DIR/voices/NAME/added_IVF…_Flat_…_NAME_v2.index   faiss index like RVC's

    python -m benchmarks.rvc_models /tmp/rvc-bench --version v2 --sr 40k --name bench
    python -m benchmarks run --rvc-models /tmp/rvc-bench --rvc-voice bench ...

Pitch needs no file on the CPU (parselmouth, the CPU default); ``rmvpe.pt`` is not written.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import HubertConfig, HubertModel

from benchmarks.rvc_rtf import write_index, write_voice

log = logging.getLogger(__name__)


def write_content_model(directory: Path) -> Path:
    """HuBERT base with RVC's ``final_proj`` (768 → 256), Hugging Face layout, random weights."""
    torch.manual_seed(0)
    config = HubertConfig()  # hubert-base: 12 layers, 768 wide, the fairseq feature extractor
    config.classifier_proj_size = 256
    config.architectures = ["HubertModelWithFinalProj"]
    model = HubertModel(config).eval()
    proj = torch.nn.Linear(config.hidden_size, 256)
    directory.mkdir(parents=True, exist_ok=True)
    config.to_json_file(str(directory / "config.json"))
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    weights.update({f"final_proj.{k}": v.detach().contiguous() for k, v in proj.state_dict().items()})
    save_file(weights, str(directory / "model.safetensors"))
    return directory


def write_models(root: Path, *, version: str = "v2", sr: str = "40k", name: str = "bench") -> Path:
    write_content_model(root / "hubert_base")
    voice_dir = root / "voices" / name
    voice_dir.mkdir(parents=True, exist_ok=True)
    write_voice(voice_dir / f"{name}.pth", version, sr)
    dim = 768 if version == "v2" else 256
    write_index(voice_dir / f"added_IVF_Flat_nprobe_1_{name}_{version}.index", dim)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", type=Path)
    ap.add_argument("--version", choices=["v1", "v2"], default="v2")
    ap.add_argument("--sr", choices=["32k", "40k", "48k"], default="40k")
    ap.add_argument("--name", default="bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_models(args.directory, version=args.version, sr=args.sr, name=args.name)
    log.info("wrote %s (voice %r, %s %s)", args.directory, args.name, args.version, args.sr)


if __name__ == "__main__":
    main()
