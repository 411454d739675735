"""GGUF chat model -> transformers safetensors folder (done once, through the cache).

transformers loads a GGUF by de-quantising every tensor, which takes 10-30 s for a
135M-parameter model on a small CPU; the same weights saved as safetensors load in well
under a second. The converted folder has config, generation config, tokenizer (with the
chat template) and ``model.safetensors``, so ``AutoModelForCausalLM.from_pretrained(dir)``
and ``AutoTokenizer.from_pretrained(dir)`` load it with no GGUF support at all.
"""

from __future__ import annotations

import copy
from pathlib import Path

# Bump when the output format changes: existing caches are then rebuilt.
CONVERTER_VERSION = "1"
CONVERSION_NAME = "safetensors"


def gguf_to_safetensors(gguf_file: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers shows its own progress bars here; on a first start they are the only
    # sign of progress during this half-minute, so they are left on.
    gguf_file = Path(gguf_file)
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                     dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained (it is flagged as quantized even
    # though its weights are de-quantized), so copy the weights into a plain model built
    # from the same config, minus the GGUF quantisation entry.
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # float32: what CPU inference runs in; the loader may still pick another dtype.
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
