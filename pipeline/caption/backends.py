"""Vision-language captioners of the caption stage: one class per backend, one method.

Every captioner has ``commit`` (the hub commit loaded, None for a local directory) and
``caption(images, request, sampling, seed) -> list[list[str]]``: for each PIL image, the
``request["count"]`` captions generated for the user turn ``request["prompt"]`` (at most
``request["max_new_tokens"]`` new tokens each), greedy or sampled as ``sampling`` says (``do_sample``,
``temperature``, ``top_p``), sampling seeded by ``seed``; ``count`` is at least 1 (the caption stage asks for no
kind of which no caption is wanted).

``hf``
    Any transformers image-text-to-text model (``AutoProcessor`` + ``AutoModelForImageTextToText``): MiniCPM-V 4.x
    natively (``minicpmv4_6``, ``minicpmv4_7``, no remote code), LLaVA, Qwen2/2.5/3-VL, Idefics3, SmolVLM. The prompt
    goes through the processor's chat template, a batch through one left-padded ``generate``; greedy captions do not
    depend on the batch (tested).
``minicpmv_legacy``
    The paper's MiniCPM-Llama3-V-2.5 through its remote-code ``chat(image, msgs, tokenizer, ...)``, one image at a
    time; refused unless the settings allow remote code.
``vllm``
    The same chat-template prompts through vLLM (``LLM.generate`` with the image as multi-modal data), on a GPU
    machine where vLLM is installed.
"""

from __future__ import annotations

import torch
from PIL import Image

from pipeline.llm import from_pretrained, resolve_device, resolve_dtype


def chat_prompt(processor, prompt: str) -> str:
    """The model's chat-template text of one user turn holding an image and ``prompt``, ready for generation."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def generation_kwargs(request: dict, sampling: dict) -> dict:
    """transformers ``generate`` arguments of a caption request: greedy, or sampled with temperature and top-p."""
    kwargs = {"max_new_tokens": request["max_new_tokens"], "do_sample": sampling["do_sample"],
              "num_return_sequences": request["count"]}
    if sampling["do_sample"]:
        kwargs |= {"temperature": sampling["temperature"], "top_p": sampling["top_p"]}
    else:  # a checkpoint's generation_config may ask for sampling settings; greedy ignores them
        kwargs |= {"temperature": None, "top_p": None, "top_k": None}
    return kwargs


def _grouped(texts: list[str], count: int) -> list[list[str]]:
    """``count`` consecutive texts per image, stripped."""
    return [[text.strip() for text in texts[i:i + count]] for i in range(0, len(texts), count)]


class HFCaptioner:
    """Batched captions from a transformers image-text-to-text model and its processor."""

    def __init__(self, model, processor):
        self.model, self.processor = model, processor
        self.commit = getattr(model.config, "_commit_hash", None)  # the hub commit that was loaded, if any
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = processor.tokenizer.pad_token_id

    @classmethod
    def load(cls, model_id: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
             trust_remote_code: bool = False) -> HFCaptioner:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        dev = resolve_device(device)
        processor = from_pretrained(AutoProcessor, model_id, "VLM processor", revision=revision,
                                    trust_remote_code=trust_remote_code)
        model = from_pretrained(AutoModelForImageTextToText, model_id, "VLM", revision=revision,
                                dtype=resolve_dtype(dtype, dev), trust_remote_code=trust_remote_code)
        return cls(model.to(dev).eval(), processor)

    @torch.inference_mode()
    def caption(self, images: list[Image.Image], request: dict, sampling: dict, seed: int) -> list[list[str]]:
        text = chat_prompt(self.processor, request["prompt"])
        # generation appends to the right end of every row: left padding, explicitly (a checkpoint's
        # tokenizer_config.json may say right, which would win otherwise)
        inputs = self.processor(text=[text] * len(images), images=[[image] for image in images], padding=True,
                                padding_side="left", return_tensors="pt")
        inputs = inputs.to(self.model.device, dtype=self.model.dtype)  # floating tensors only take the dtype
        torch.manual_seed(seed)
        out = self.model.generate(**inputs, **generation_kwargs(request, sampling))
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return _grouped(self.processor.batch_decode(new_tokens, skip_special_tokens=True), request["count"])


class LegacyMiniCPMCaptioner:
    """MiniCPM-Llama3-V-2.5 (the paper's captioner) through its remote-code ``chat`` method, image by image."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.commit = getattr(getattr(model, "config", None), "_commit_hash", None)

    @classmethod
    def load(cls, model_id: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
             trust_remote_code: bool = False) -> LegacyMiniCPMCaptioner:
        from transformers import AutoModel, AutoTokenizer

        if not trust_remote_code:
            raise ValueError(f"caption backend minicpmv_legacy runs {model_id!r}'s own code from the hub: set "
                             "caption.trust_remote_code: true to allow it, or use backend hf (MiniCPM-V 4.x is "
                             "native in transformers)")
        dev = resolve_device(device)
        tokenizer = from_pretrained(AutoTokenizer, model_id, "tokenizer", revision=revision, trust_remote_code=True)
        model = from_pretrained(AutoModel, model_id, "VLM", revision=revision, dtype=resolve_dtype(dtype, dev),
                                trust_remote_code=True)
        return cls(model.to(dev).eval(), tokenizer)

    @torch.inference_mode()
    def caption(self, images: list[Image.Image], request: dict, sampling: dict, seed: int) -> list[list[str]]:
        kwargs = {"sampling": sampling["do_sample"], "max_new_tokens": request["max_new_tokens"]}
        if sampling["do_sample"]:
            kwargs |= {"temperature": sampling["temperature"], "top_p": sampling["top_p"]}
        torch.manual_seed(seed)
        msgs = [{"role": "user", "content": request["prompt"]}]
        return [[self.model.chat(image=image, msgs=msgs, tokenizer=self.tokenizer, **kwargs).strip()
                 for _ in range(request["count"])] for image in images]


class VLLMCaptioner:
    """The ``hf`` backend's prompts through vLLM (GPU)."""

    def __init__(self, llm, processor, sampling_params):
        self.llm, self.processor, self.sampling_params = llm, processor, sampling_params
        self.commit = None  # vLLM resolves the revision itself

    @classmethod
    def load(cls, model_id: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
             trust_remote_code: bool = False) -> VLLMCaptioner:
        try:
            import vllm
        except ImportError as err:
            raise RuntimeError("caption backend vllm needs vLLM (pip install vllm, on a CUDA machine); backend hf "
                               "runs the same prompts with transformers") from err
        from transformers import AutoProcessor

        processor = from_pretrained(AutoProcessor, model_id, "VLM processor", revision=revision,
                                    trust_remote_code=trust_remote_code)
        llm = vllm.LLM(model=model_id, revision=revision, trust_remote_code=trust_remote_code,
                       dtype="auto" if dtype == "auto" else dtype, limit_mm_per_prompt={"image": 1})
        return cls(llm, processor, vllm.SamplingParams)

    def caption(self, images: list[Image.Image], request: dict, sampling: dict, seed: int) -> list[list[str]]:
        params = self.sampling_params(n=request["count"], max_tokens=request["max_new_tokens"], seed=seed,
                                      temperature=sampling["temperature"] if sampling["do_sample"] else 0.0,
                                      top_p=sampling["top_p"] if sampling["do_sample"] else 1.0)
        prompt = chat_prompt(self.processor, request["prompt"])
        outputs = self.llm.generate([{"prompt": prompt, "multi_modal_data": {"image": image}} for image in images],
                                    params, use_tqdm=False)
        return [[choice.text.strip() for choice in output.outputs] for output in outputs]


#: Model backends -> their captioner class (``dataset`` needs none).
CAPTIONERS = {"hf": HFCaptioner, "minicpmv_legacy": LegacyMiniCPMCaptioner, "vllm": VLLMCaptioner}
