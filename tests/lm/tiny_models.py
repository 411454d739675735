"""A tiny random Llama-style model for the ONNX export tests (decoder and scorer)."""

from __future__ import annotations


def tiny_random_model(model_type: str, seed: int):
    """A 2-layer random Llama-style model (grouped-query attention, untied head); Qwen2's
    q/k/v biases get random values too (its init leaves them at zero)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        model_type, vocab_size=128, hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    if model_type == "qwen2":
        assert model.model.layers[0].self_attn.q_proj.bias is not None
        with torch.no_grad():
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj,
                             layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.5)
    return model
