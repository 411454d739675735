"""The chat model's tokenizer read straight from its files, without transformers (GUI-free).

Why: importing ``transformers`` imports ``torch``, and the two cost the conversation
process ~700 MB of memory that the CPU (ONNX) chat path never uses. The tokenizer itself
is the Rust ``tokenizers`` library either way; transformers only adds the special-token
bookkeeping and the chat template, both small enough to redo here.

``FileTokenizer(folder)`` offers the part of a transformers tokenizer that voicebot uses
(``encode``, ``decode``, ``apply_chat_template``, ``eos_token_id``, ``all_special_ids``,
``convert_tokens_to_ids``, ``get_vocab``, calling it) and gives the same ids and text as
``AutoTokenizer`` for a folder with a ``tokenizer.json`` (tests/lm/test_lm_tokenizer_file.py
holds the two side by side). It reads:
- ``tokenizer.json``: the vocabulary, normalizer, pre-tokenizer, decoder, added tokens;
- ``tokenizer_config.json``: the named special tokens, ``added_tokens_decoder``,
  ``clean_up_tokenization_spaces`` and maybe the chat template;
- ``special_tokens_map.json`` (older folders): special tokens the config lacks;
- ``chat_template.jinja`` / ``additional_chat_templates/``: the template, which wins over
  the config's, as in transformers.
``generation_config.json`` is not read: transformers' tokenizer does not read it either,
and the ONNX and torch paths must stop a reply on the same tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Tokenizer

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
TEMPLATE_FILE = "chat_template.jinja"
TEMPLATE_DIR = "additional_chat_templates"

# The named special tokens of every transformers tokenizer, in the order it lists them
# (``all_special_ids`` follows this order).
NAMED_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                "mask_token")

# transformers' ``clean_up_tokenization`` (for WordPiece-era models): spaces that the
# tokenizer put before punctuation and English contractions are taken out again.
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
             (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def _token_text(value: Any) -> str | None:
    """A special token as written in the configs: a string or a serialised AddedToken."""
    if isinstance(value, Mapping):
        return value.get("content")
    return value if isinstance(value, str) else None


class FileTokenizer:
    """A model folder's tokenizer, behaving like transformers' ``AutoTokenizer`` for what
    voicebot calls (see the module docstring)."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        self.folder = folder
        self.backend = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        # A tokenizer.json may carry training-time truncation or padding; transformers
        # turns both off for a plain call, and voicebot never wants a prompt cut silently.
        self.backend.no_truncation()
        self.backend.no_padding()
        config = _read_json(folder / CONFIG_FILE)
        self.named_tokens = _named_tokens(config, _read_json(folder / SPECIAL_TOKENS_FILE))
        self.extra_special_tokens = _extra_special_tokens(config)
        self._register_special_tokens(config)
        # Off unless the config asks; what "split_special_tokens" means in transformers:
        # "<|im_end|>" typed by the user is then plain text, not the control token.
        self.backend.encode_special_tokens = bool(config.get("split_special_tokens", False))
        self.clean_up_tokenization_spaces = _cleans_up(config, self.backend)
        self.chat_template = _chat_template(folder, config)

    def _register_special_tokens(self, config: Mapping[str, Any]) -> None:
        """Add the config's special tokens that tokenizer.json lacks, as transformers does
        when it loads: otherwise they would be split into ordinary pieces."""
        known = set(self.backend.get_vocab(with_added_tokens=True))
        missing = []
        added = config.get("added_tokens_decoder") or {}
        for _, token in sorted(added.items(), key=lambda item: int(item[0])):
            fields = {key: value for key, value in token.items() if key != "__type"}
            if fields.get("content") not in known:
                missing.append(AddedToken(**fields))
        for text in self.all_special_tokens:
            if text not in known and all(str(token) != text for token in missing):
                missing.append(AddedToken(text, special=True, normalized=False))
        # In id order, so each gets the id the config gives it; add_tokens keeps each
        # token's own "special" (add_special_tokens would mark them all special).
        self.backend.add_tokens(missing)

    # ----- tokens and ids ---------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids; ``add_special_tokens`` applies tokenizer.json's post-processor (a
        BOS token, say), as transformers does."""
        return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        """``tokenizer(text)["input_ids"]``, the other way voicebot encodes text."""
        return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens)}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        text = self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        if self.clean_up_tokenization_spaces:
            for spaced, joined in _CLEAN_UP:
                text = text.replace(spaced, joined)
        return text

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> Any:
        """The id of a token (or a list of ids); an unknown token maps to the unknown
        token's id, or None when the model has none, like transformers."""
        if isinstance(tokens, str):
            index = self.backend.token_to_id(tokens)
            return index if index is not None else self.unk_token_id
        return [self.convert_tokens_to_ids(token) for token in tokens]

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    # ----- special tokens ---------------------------------------------------------------
    @property
    def special_tokens_map(self) -> dict[str, str]:
        """The named special tokens ({"eos_token": "<|im_end|>", ...}); chat templates
        see each one as a variable."""
        return dict(self.named_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        """Named special tokens, then the extra ones, each once."""
        return list(dict.fromkeys([*self.named_tokens.values(), *self.extra_special_tokens]))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def _named_id(self, name: str) -> int | None:
        token = self.named_tokens.get(name)
        return None if token is None else self.convert_tokens_to_ids(token)

    @property
    def eos_token(self) -> str | None:
        return self.named_tokens.get("eos_token")

    @property
    def bos_token(self) -> str | None:
        return self.named_tokens.get("bos_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._named_id("eos_token")

    @property
    def bos_token_id(self) -> int | None:
        return self._named_id("bos_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._named_id("pad_token")

    @property
    def unk_token_id(self) -> int | None:
        token = self.named_tokens.get("unk_token")
        # Not through convert_tokens_to_ids: that falls back on this very id.
        return None if token is None else self.backend.token_to_id(token)

    # ----- chat template ----------------------------------------------------------------
    @cached_property
    def _template(self) -> Any:
        if not self.chat_template:
            raise ValueError(f"{self.folder} has no chat template")
        return _compile_template(self.chat_template)

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                            add_generation_prompt: bool = False, tokenize: bool = True,
                            return_dict: bool = True, **variables: Any) -> Any:
        """The conversation rendered with the model's template: the text when
        ``tokenize`` is false, else its ids (in ``{"input_ids": ids}`` when
        ``return_dict``). Extra keyword arguments reach the template as variables."""
        if not messages:
            raise ValueError("cannot apply a chat template to an empty conversation")
        text = self._template.render(
            messages=[_plain_message(message) for message in messages], tools=None,
            documents=None, add_generation_prompt=add_generation_prompt,
            **{**self.special_tokens_map, **_plain(variables)})
        if not tokenize:
            return text
        # The template writes the special tokens itself (BOS included), so, as in
        # transformers, the post-processor must not add them a second time.
        ids = self.encode(text, add_special_tokens=False)
        return {"input_ids": ids} if return_dict else ids


# ----- reading the configs ----------------------------------------------------------------
def _named_tokens(config: Mapping[str, Any], legacy: Mapping[str, Any]) -> dict[str, str]:
    """{"bos_token": "<s>", ...}: the standard names, then model-specific ``*_token`` keys
    (an ``image_token``, say), which transformers treats as named special tokens too.
    special_tokens_map.json only fills what tokenizer_config.json leaves out: transformers
    reads it only for folders whose config has no ``added_tokens_decoder``."""
    merged = dict(config)
    if "added_tokens_decoder" not in config:
        merged.update(legacy)
    names = [*NAMED_TOKENS, *(key for key in merged if key.endswith("_token")
                              and key not in NAMED_TOKENS)]
    extra = merged.get("extra_special_tokens")
    tokens = {name: _token_text(merged.get(name)) for name in names}
    if isinstance(extra, Mapping):  # {"image_token": "<image>"}: named ones, too
        tokens.update({name: _token_text(value) for name, value in extra.items()})
    return {name: text for name, text in tokens.items() if text is not None}


def _extra_special_tokens(config: Mapping[str, Any]) -> list[str]:
    """Special tokens without a name (``additional_special_tokens`` before transformers 5)."""
    extra = config.get("extra_special_tokens") or config.get("additional_special_tokens")
    if not isinstance(extra, list):
        return []
    return [text for text in map(_token_text, extra) if text is not None]


def _cleans_up(config: Mapping[str, Any], backend: Any) -> bool:
    """Whether decode takes spaces out before punctuation. transformers 5 ignores the
    setting for BPE models (it would eat real spaces) unless told it really means it."""
    if not config.get("clean_up_tokenization_spaces", False):
        return False
    forced = config.get("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output")
    return type(backend.model).__name__ != "BPE" or bool(forced)


def _chat_template(folder: Path, config: Mapping[str, Any]) -> str | None:
    """The default chat template: chat_template.jinja, else the config's (a string, or a
    list of named templates), the way transformers picks it."""
    if (folder / TEMPLATE_FILE).is_file():
        return (folder / TEMPLATE_FILE).read_text("utf-8")
    templates = config.get("chat_template")
    if isinstance(templates, list):
        templates = {entry["name"]: entry["template"] for entry in templates}
    extra = folder / TEMPLATE_DIR
    if extra.is_dir():  # named templates saved as files win over the config's
        templates = templates if isinstance(templates, dict) else {}
        templates = {**templates, **{path.stem: path.read_text("utf-8")
                                     for path in sorted(extra.glob("*.jinja"))}}
    if isinstance(templates, dict):
        return templates.get("default")
    return templates if isinstance(templates, str) else None


# ----- rendering ----------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A copy in plain JSON types: templates are untrusted code and may only see data, and
    a template that edits a message must not edit the caller's."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    # Subclasses (enums, numpy scalars) may carry methods: their plain value only.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


def _plain_message(message: Mapping[str, Any]) -> dict[str, Any]:
    # Keys set to None are dropped: templates test ``'content' in message``, and some
    # would print "None".
    return {key: value for key, value in _plain(message).items() if value is not None}


def _compile_template(source: str) -> Any:
    """The template compiled in the sandbox and with the helpers that transformers gives
    chat templates, so a model's template renders here exactly as it does there."""
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=[_GenerationTag, jinja2.ext.loopcontrols])
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(source)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    # Jinja's own tojson escapes <, > and & for HTML; templates expect plain JSON.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(format_: str) -> str:
    return datetime.now().strftime(format_)


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}…{% endgeneration %}``: transformers' marker of the assistant's
    text (for training masks). Here it renders its body unchanged; without it the
    templates that use it would not compile."""

    tags = {"generation"}  # noqa: RUF012 (jinja reads it as a class attribute)

    def parse(self, parser: Any) -> Any:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Any) -> str:
        return caller()
