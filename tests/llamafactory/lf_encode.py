"""Run with LLaMA-Factory's own Python: encode conversations with LLaMA-Factory's template and dataset processors,
for tests/test_templates.py to compare with ftbench's encoding. Reads a JSON request on stdin, writes JSON on stdout.

request: {"tokenizer": path, "cutoff_len": int,
          "cases": [{"template": name, "default_system": str|null, "enable_thinking": bool|null}, ...],
          "conversations": [{"system": str, "messages": [{"role", "content"}, ...]}, ...]}
answer (the last line of stdout): per case, per conversation
         {"train_ids", "train_labels", "prompt_ids", "label_ids", "prompt", "label"}
"""

import json
import sys

from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
from llamafactory.data.processor.unsupervised import UnsupervisedDatasetProcessor
from llamafactory.data.template import get_template_and_fix_tokenizer
from llamafactory.hparams import DataArguments
from transformers import AutoTokenizer


def encode(tokenizer_path, name, default_system, enable_thinking, cutoff_len, conversations):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)  # fresh: LLaMA-Factory's template edits it
    data_args = DataArguments(
        template=name, default_system=default_system, enable_thinking=enable_thinking, cutoff_len=cutoff_len
    )
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    train = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
    predict = UnsupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
    out = []
    for conv in conversations:
        prompt, response = conv["messages"][:-1], conv["messages"][-1:]
        ids, labels = train._encode_data_example(prompt, response, conv["system"], "", [], [], [])
        prompt_ids, label_ids = predict._encode_data_example(prompt, response, conv["system"], "", [], [], [])
        out.append(
            {
                "train_ids": ids,
                "train_labels": labels,
                "prompt_ids": prompt_ids,
                "label_ids": label_ids,
                "prompt": tokenizer.decode(prompt_ids, skip_special_tokens=False),
                "label": tokenizer.decode(label_ids, skip_special_tokens=True),
            }
        )
    return out


request = json.load(sys.stdin)
answers = [
    encode(
        request["tokenizer"],
        case["template"],
        case["default_system"],
        case["enable_thinking"],
        request["cutoff_len"],
        request["conversations"],
    )
    for case in request["cases"]
]
print(json.dumps(answers))
