"""A tiny randomly initialised Llama (hidden size 64) with the word-level tokenizer of
scripts/gpu_proof.py, for the peer tier's CPU runs of LLaMA-Factory; optionally a LoRA adapter
of it made by PEFT. Run as a program (in the peer tier's forkserver):

  python -m harness.tiny_llama OUT --layers N [--adapter DIR]"""

import argparse
import sys
from pathlib import Path


def build(out: Path, layers: int, adapter: Path | None = None) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import gpu_proof

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=30100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=30004,
        eos_token_id=30005,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    gpu_proof.build_tokenizer(out, n_words=30000)
    if adapter is not None:
        from peft import LoraConfig, get_peft_model

        get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], lora_alpha=16)).save_pretrained(adapter)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tiny_llama", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--adapter", type=Path)
    args = parser.parse_args(argv)
    build(args.out, args.layers, args.adapter)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
