"""`DatasetSpec`: one dataset as a command names it (a path, or a dataset_info.json entry), and the format
reader LLaMA-Factory's settings for it ask for (formatting, columns, tags, ranking, kto_tag, media columns)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ftbench.data.formats import AlpacaFormat, ConversationFormat
from ftbench.data.kinds import MEDIA_KINDS, ColumnChecks, PretrainFormat, RankingAlpaca, RankingConversation

HUB_SOURCES = ("hf_hub", "ms_hub", "om_hub")
KIND_NAMES = {"sft": "SFT", "ranking": "preference (ranking)", "kto": "KTO", "pretrain": "pretraining text"}


@dataclass
class DatasetSpec:
    """Where one dataset's records are and how to read them; from the command line or a dataset_info entry.

    A dataset_info entry gives ``columns`` and ``tags`` in full, as LLaMA-Factory resolves them (a key it
    sets to None is skipped); a path given directly leaves them empty (the format's defaults, or detection).
    """

    path: str  # a file or folder; a hub id for hub entries; the script folder for script_url
    name: str | None = None
    formatting: str | None = None  # None = detect
    columns: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    info_file: str | None = None  # the dataset_info.json that declared it, and the entry's line
    info_line: int | None = None
    kind: str = "sft"  # "sft", "ranking", "kto" or "pretrain"
    split: str = "train"
    num_samples: int | None = None
    media_dir: str | None = None  # where image/video/audio paths are relative to (LLaMA-Factory's media_dir)
    load_from: str = "file"  # "file", "hf_hub", "ms_hub", "om_hub", "script" or "cloud_file"
    subset: str | None = None  # hub and script datasets: the configuration name and data folder
    folder: str | None = None
    path_key: str = "file_name"  # the dataset_info key that gave ``path``

    @property
    def declared(self) -> bool:
        return self.info_file is not None

    @property
    def media_columns(self) -> dict[str, str]:
        """{"images": column, ...} for the media columns the entry maps."""
        return {k: self.columns[k] for k in MEDIA_KINDS if self.columns.get(k)}

    def describe(self) -> str:
        """The kind of data, for messages: 'preference (ranking)', 'KTO', 'pretraining text' or 'SFT', and
        'multimodal' when it has media columns."""
        return ("multimodal " if self.media_columns else "") + KIND_NAMES[self.kind]


def reader_for(spec: DatasetSpec):
    """The format reader a declared or forced format asks for (LLaMA-Factory semantics: no guessing)."""
    fmt = spec.formatting or "alpaca"
    if spec.kind == "pretrain":
        reader = PretrainFormat(spec.columns)
    elif fmt == "alpaca":
        reader = RankingAlpaca(spec.columns) if spec.kind == "ranking" else AlpacaFormat(spec.columns)
    else:
        name = (
            "openai"
            if fmt == "openai" or (fmt == "sharegpt" and spec.tags.get("role_tag") == "role" and not spec.declared)
            else "sharegpt"
        )
        conversation = RankingConversation if spec.kind == "ranking" else ConversationFormat
        reader = conversation(name, spec.columns, spec.tags)
    kto_tag = spec.columns.get("kto_tag")
    if kto_tag or spec.media_columns:
        reader = ColumnChecks(reader, kto_tag=kto_tag, media=spec.media_columns, media_dir=spec.media_dir)
    return reader


def accessed_columns(spec: DatasetSpec) -> list[str]:
    """The mapped columns LLaMA-Factory's converter reads from every row (`example[column]`): a column missing
    from the data stops it with a KeyError."""
    cols = spec.columns
    keys = ["system", "tools", *MEDIA_KINDS, "kto_tag"]
    if (spec.formatting or "alpaca") == "alpaca":
        keys += ["prompt", "query", "history"] + (
            ["chosen", "rejected"] if spec.kind == "ranking" else ["response"] if spec.kind != "pretrain" else []
        )
    else:
        keys += ["messages"] + (["chosen", "rejected"] if spec.kind == "ranking" else [])
    return [cols[k] for k in keys if cols.get(k)]


_NOT_SFT = {
    "ranking": "LLaMA-Factory refuses it too ('The dataset is not applicable in the current training stage.'); "
    "train it with stage: dpo or rm",
    "kto": "in SFT LLaMA-Factory drops every row of it (each has two responses); train it with stage: kto",
    "pretrain": "in SFT LLaMA-Factory drops every row of it (no response); train it with stage: pt",
    "multimodal": "ftbench trains and runs text-only models; use a vision/audio model and template in LLaMA-Factory",
}


def sft_refusal(kind: str, multimodal: bool, what: str) -> str | None:
    """Why an SFT command (train, predict, eval data) cannot use data of this kind, or None if it can; ``what``
    names the data (a dataset_info entry with its location, or a path)."""
    if kind == "sft" and not multimodal:
        return None
    reason = _NOT_SFT["multimodal" if kind == "sft" else kind]
    name = ("multimodal " if multimodal else "") + KIND_NAMES[kind]
    return f"{what} is {name} data and this command does SFT (stage: sft): {reason}; `ftbench validate` checks it"
